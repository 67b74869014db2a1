import Glibc
import ProcessMemory

/// Unbuffered writes to stdout and stderr (no shared C `FILE`s, which Swift 6 cannot use safely).
enum Output {
    /// Writes `text` to stdout.
    static func out(_ text: String) { write(1, Array(text.utf8)) }

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
    static func error(_ text: String) { write(2, Array("procmem: \(text)\n".utf8)) }

    /// write(2) until done (``OutputFiles/writeAll(_:_:)``); gives up on an error (a closed pipe
    /// ends the process with SIGPIPE, as for any filter).
    private static func write(_ fd: Int32, _ bytes: [UInt8]) {
        OutputFiles.writeAll(fd, bytes)
    }
}
