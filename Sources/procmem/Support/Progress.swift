import Foundation
import Glibc

/// A progress line on stderr for long work (scans, rescans, snapshot comparisons, pointer scans,
/// dumps): done / total with the percentage, the rate and the time left.
///
/// It draws only when stderr is a terminal (or with `--progress`), at most ten times a second,
/// and erases itself when finished, so piped and scripted runs stay quiet.
final class ProgressReporter {
    /// What the counts are: bytes (shown as KiB, MiB…) or items such as matches.
    enum Unit: Equatable {
        case bytes
        case items(String)
    }

    private let label: String
    private let unit: Unit
    private let enabled: Bool
    private let start = Date()
    private var total: UInt64
    private var done: UInt64 = 0
    private var lastDraw = Date.distantPast

    /// `total` is the expected amount of work; 0 when not known yet (``update(done:total:)`` may
    /// give it later).
    init(label: String, total: UInt64, unit: Unit = .bytes, enabled: Bool = isatty(STDERR_FILENO) == 1) {
        self.label = label
        self.total = total
        self.unit = unit
        self.enabled = enabled
    }

    /// A reporter drawn when stderr is a terminal, or always when `forced` (`--progress`).
    convenience init(label: String, total: UInt64 = 0, unit: Unit = .bytes, forced: Bool) {
        if forced {
            self.init(label: label, total: total, unit: unit, enabled: true)
        } else {
            self.init(label: label, total: total, unit: unit)
        }
    }

    /// Records `amount` more done and redraws if a tenth of a second has passed.
    func advance(by amount: UInt64) {
        update(done: done &+ amount, total: total)
    }

    /// Records how much is done out of `total` (0: keep the total known so far) and redraws if a
    /// tenth of a second has passed.
    func update(done: UInt64, total: UInt64) {
        self.done = done
        if total > 0 { self.total = total }
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
        let text = Self.line(label: label, done: done, total: total, elapsed: lastDraw.timeIntervalSince(start), unit: unit)
        FileHandle.standardError.write(Data(("\r\u{1B}[2K" + text).utf8))
    }

    /// The text of the line: `scan: 320.0 MiB / 1.5 GiB (20%), 800.0 MiB/s, 2s left`, or for
    /// items `rescan: 4096 / 10000 matches (40%), 2048 matches/s, 3s left`. Without a total only
    /// the amount done and the rate.
    static func line(label: String, done: UInt64, total: UInt64, elapsed: Double, unit: Unit = .bytes) -> String {
        let seconds = max(elapsed, 0.001)
        let rate = Double(done) / seconds
        func amount(_ value: Double) -> String {
            switch unit {
            case .bytes: return bytes(value)
            case .items: return String(Int(value))
            }
        }
        let noun: String
        if case .items(let name) = unit { noun = " " + name } else { noun = "" }
        var line = "\(label): \(amount(Double(done)))"
        if total > 0 {
            let percent = min(100, Double(done) / Double(total) * 100)
            line += " / \(amount(Double(total)))\(noun) (\(Int(percent))%)"
        } else {
            line += noun
        }
        line += ", \(amount(rate))\(noun)/s"
        if total > done, rate > 0 {
            line += ", " + duration((Double(total - done) / rate).rounded(.up)) + " left"
        }
        return line
    }

    /// 45s, 3m 05s, 2h 01m.
    static func duration(_ seconds: Double) -> String {
        let whole = Int(min(seconds, 359_999))
        if whole < 60 { return "\(whole)s" }
        if whole < 3600 { return "\(whole / 60)m " + String(format: "%02ds", whole % 60) }
        return "\(whole / 3600)h " + String(format: "%02dm", (whole % 3600) / 60)
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
