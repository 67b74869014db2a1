import Foundation
import Glibc

/// A progress line on stderr for long work (scans, dumps): bytes done and total, rate, time left.
///
/// It draws only when stderr is a terminal, at most ten times a second, and erases itself when
/// finished, so piped and scripted runs stay quiet.
final class ProgressReporter {
    private let label: String
    private let total: UInt64
    private let enabled: Bool
    private let start = Date()
    private var done: UInt64 = 0
    private var lastDraw = Date.distantPast

    /// `total` is the expected number of bytes; 0 when unknown.
    init(label: String, total: UInt64, enabled: Bool = isatty(STDERR_FILENO) == 1) {
        self.label = label
        self.total = total
        self.enabled = enabled
    }

    /// Records `bytes` more bytes done and redraws if a tenth of a second has passed.
    func advance(by bytes: UInt64) {
        done &+= bytes
        guard enabled, Date().timeIntervalSince(lastDraw) >= 0.1 else { return }
        draw()
    }

    /// Erases the progress line.
    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
    }

    private func draw() {
        lastDraw = Date()
        let elapsed = max(lastDraw.timeIntervalSince(start), 0.001)
        let rate = Double(done) / elapsed
        var line = "\r\u{1B}[2K\(label): \(Self.bytes(Double(done)))"
        if total > 0 {
            let percent = min(100, Double(done) / Double(total) * 100)
            line += " / \(Self.bytes(Double(total))) (\(Int(percent))%)"
        }
        line += ", \(Self.bytes(rate))/s"
        if total > done, rate > 0 {
            line += ", \(Int((Double(total - done) / rate).rounded(.up)))s left"
        }
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// 1.5 GiB, 320.0 MiB, 12 KiB, 100 B.
    static func bytes(_ value: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var amount = value
        var unit = 0
        while amount >= 1024 && unit < units.count - 1 {
            amount /= 1024
            unit += 1
        }
        return unit == 0 ? "\(Int(amount)) \(units[0])" : String(format: "%.1f %@", amount, units[unit])
    }
}
