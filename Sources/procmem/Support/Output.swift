import Glibc
import ProcessMemory
import Synchronization

/// Unbuffered writes to stdout and stderr (no shared C `FILE`s, which Swift 6 cannot use safely).
enum Output {
    /// Writes `text` to stdout, or to the capture while one is running (see ``capturing(_:)``).
    static func out(_ text: String) {
        if capture(text, error: false) { return }
        write(1, Array(text.utf8))
    }

    /// Lines written while ``capturing(_:)`` runs, stdout's and stderr's apart.
    struct Captured: Sendable {
        var output: [String] = []
        var errors: [String] = []
    }

    /// The capture ``capturing(_:)`` fills, nil when output goes to the terminal.
    private static let captured = Mutex<Captured?>(nil)

    /// Runs `body` with stdout and stderr lines (`procmem: ` left off) kept instead of written:
    /// `session --json` prints them inside each command's JSON object.
    static func capturing<T>(_ body: () throws -> T) rethrows -> (T, Captured) {
        captured.withLock { $0 = Captured() }
        defer { captured.withLock { $0 = nil } }
        let value = try body()
        return (value, captured.withLock { $0 ?? Captured() })
    }

    /// Appends `text`'s lines to the running capture; false when none runs.
    private static func capture(_ text: String, error: Bool) -> Bool {
        captured.withLock { capture in
            guard capture != nil else { return false }
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if lines.last == "" { lines.removeLast() }
            if error { capture?.errors += lines } else { capture?.output += lines }
            return true
        }
    }

    /// Writes `text` and a newline to stdout.
    static func line(_ text: String) { out(text + "\n") }

    /// Writes `lines` to stdout, one per line, in batches.
    static func lines(_ lines: [String]) {
        var batch = ""
        for line in lines {
            batch += line
            batch += "\n"
            if batch.utf8.count >= 1 << 16 {
                out(batch)
                batch = ""
            }
        }
        if !batch.isEmpty { out(batch) }
    }

    /// Writes raw bytes to stdout.
    static func bytes(_ bytes: [UInt8]) { write(1, bytes) }

    /// Writes `procmem: ` + `text` + newline to stderr.
    static func error(_ text: String) {
        if capture(text, error: true) { return }
        write(2, Array("procmem: \(text)\n".utf8))
    }

    /// write(2) until done (``OutputFiles/writeAll(_:_:)``); gives up on an error (a closed pipe
    /// ends the process with SIGPIPE, as for any filter).
    private static func write(_ fd: Int32, _ bytes: [UInt8]) {
        OutputFiles.writeAll(fd, bytes)
    }
}
