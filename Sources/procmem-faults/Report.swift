import Glibc
import ProcessMemory

// Counting and reporting: each case fills a Tally; the case's child process prints it as one
// `@@result` line; the runner collects those lines and prints the summary table.

/// The counts of one case. Thread-safe: readers and drivers of a race both record into it.
final class Tally: @unchecked Sendable {
    var tries = 0
    var passed = 0
    var misreads = 0
    var bytesLost = 0
    var notes: [String: Int] = [:]
    var skipped: String?
    private var lock = pthread_mutex_t()

    init() { pthread_mutex_init(&lock, nil) }

    private func locked<R>(_ body: () -> R) -> R {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return body()
    }

    func note(_ text: String) { locked { notes[text, default: 0] += 1 } }
    func misread(_ count: Int = 1, _ text: String) { locked { misreads += count; notes["MISREAD " + text, default: 0] += 1 } }
    func lost(_ count: Int, _ text: String) { locked { bytesLost += max(count, 1); notes["LOST " + text, default: 0] += 1 } }

    /// Records one try; `failure` nil means it passed.
    func record(_ failure: String?) {
        locked {
            tries += 1
            if let failure { notes["FAIL " + failure, default: 0] += 1 } else { passed += 1 }
        }
    }

    /// A whole try: the body returns a failure text or nil; misreads/lost recorded during it fail it too.
    func attempt(_ body: () throws -> String?) {
        let before = locked { (misreads, bytesLost) }
        var failure: String?
        do { failure = try body() } catch { failure = "harness: \(error)" }
        let after = locked { (misreads, bytesLost) }
        if failure == nil && (after.0 != before.0 || after.1 != before.1) { failure = "misread or lost bytes" }
        record(failure)
    }

    var notesText: String {
        if let skipped { return "skipped: " + skipped }
        return notes.sorted { $0.key < $1.key }.map { $0.value > 1 ? "\($0.key) x\($0.value)" : $0.key }
            .joined(separator: "; ")
    }

    /// The line a case's child process prints for the runner.
    var resultLine: String {
        let clean = notesText.replacingTabsAndNewlines()
        return "@@result\t\(tries)\t\(passed)\t\(misreads)\t\(bytesLost)\t\(clean)"
    }
}

extension String {
    func replacingTabsAndNewlines() -> String {
        String(map { $0 == "\t" || $0 == "\n" ? " " : $0 })
    }
}

/// One row of the summary table.
struct CaseRow {
    var name: String
    var tries = 0
    var passed = 0
    var crashes = 0
    var misreads = 0
    var bytesLost = 0
    var notes = ""
    var seconds = 0.0
    var skipped = false

    var failed: Bool { !skipped && (crashes > 0 || misreads > 0 || bytesLost > 0 || passed < tries || tries == 0) }

    static func parse(name: String, line: Substring) -> CaseRow? {
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
        guard fields.count >= 6, fields[0] == "@@result", let tries = Int(fields[1]), let passed = Int(fields[2]),
              let misreads = Int(fields[3]), let lost = Int(fields[4]) else { return nil }
        var row = CaseRow(name: name, tries: tries, passed: passed, misreads: misreads, bytesLost: lost,
                          notes: String(fields[5]))
        row.skipped = row.notes.hasPrefix("skipped:")
        return row
    }
}

func printTable(_ rows: [CaseRow]) {
    let header = ["case", "tries", "passed", "crashes", "misreads", "bytes lost", "secs", "notes"]
    let cells = rows.map { r in
        [r.name, "\(r.tries)", "\(r.passed)", "\(r.crashes)", "\(r.misreads)", "\(r.bytesLost)",
         String(format1(r.seconds)), r.notes.count > 140 ? String(r.notes.prefix(137)) + "..." : r.notes]
    }
    var widths = header.map(\.count)
    for row in cells { for (i, cell) in row.enumerated() where i < 7 { widths[i] = max(widths[i], cell.count) } }
    func line(_ row: [String]) -> String {
        row.enumerated().map { i, cell in
            if i == 7 { return cell }
            let pad = String(repeating: " ", count: max(widths[i] - cell.count, 0))
            return i == 0 ? cell + pad : pad + cell
        }.joined(separator: " | ")
    }
    print(line(header))
    print(widths.prefix(7).map { String(repeating: "-", count: $0) }.joined(separator: "-|-") + "-|------")
    for row in cells { print(line(row)) }
}

func format1(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}

/// Counts a byte array's bytes equal to `value`.
func countBytes(_ bytes: UnsafeRawBufferPointer, equalTo value: UInt8) -> Int {
    var n = 0
    for b in bytes where b == value { n += 1 }
    return n
}

/// The index of the first byte that is not `value`, or nil.
func firstMismatch(_ bytes: UnsafeRawBufferPointer, _ value: UInt8) -> Int? {
    let words = bytes.count / 8
    let pattern = UInt64(value) &* 0x0101_0101_0101_0101
    if let base = bytes.baseAddress {
        for w in 0..<words where base.loadUnaligned(fromByteOffset: w * 8, as: UInt64.self) != pattern {
            for i in (w * 8)..<(w * 8 + 8) where bytes[i] != value { return i }
        }
    }
    for i in (words * 8)..<bytes.count where bytes[i] != value { return i }
    return nil
}

/// The library error code, when `error` is a ProcessMemoryError.
func errorCode(_ error: any Error) -> ProcessMemoryError.Code? {
    if let e = error as? ProcessMemoryError { return e.code }
    return nil
}

extension Optional where Wrapped == ProcessMemoryError.Code {
    var isLifecycle: Bool { self?.isLifecycle ?? false }
}

extension ProcessMemoryError.Code {
    var isLifecycle: Bool { self == .badState || self == .execed }
}
