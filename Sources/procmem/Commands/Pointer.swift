import ArgumentParser
import Foundation
import Glibc
import ProcessMemory

/// `procmem pointer resolve|scan`: follow a pointer chain, or find chains from static data to an address.
struct Pointer: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Resolve pointer chains, scan for them, and narrow a saved list down.",
        discussion: """
            A chain is `BASE -> +OFF -> +OFF …`: start at BASE (an ADDRESS: 0x hex, decimal, or \
            REGION+OFFSET such as libfoo.so+0x1234), then for each `-> OFF` read the pointer at the \
            current address (8 bytes little endian; --pointer-size 4 and --endian big for other \
            layouts) and add OFF (+0x10, -8, 16). `libfoo.so+0x1234 -> +0x10 -> +0x8` reads \
            two pointers and ends at the second one plus 8. Cheat Engine's workflow: `scan` for many \
            candidate chains and --save them, restart the target, find the value's new address, then \
            `rescan` the saved list to keep the chains that still lead there; repeat.
            """,
        subcommands: [Resolve.self, Scan.self, Rescan.self]
    )

    /// The pointer format for `--pointer-size` and `--endian`.
    static func format(size: Int, endian: ScanByteOrder) throws -> PointerFormat {
        guard let width = PointerFormat.Width(rawValue: size) else { throw ValidationError("--pointer-size must be 4 or 8, not \(size)") }
        return PointerFormat(width: width, byteOrder: endian)
    }

    /// Writes `text` to `path` (created or truncated, mode 0644).
    static func write(_ text: String, to path: String, pid: Int32) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let code = errno
            throw ErrorReporting.fail(ProcessMemoryError(.io, pid: pid, message: "\(path) cannot be written: \(String(cString: strerror(code)))"))
        }
        defer { close(fd) }
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let code = errno
                throw ErrorReporting.fail(ProcessMemoryError(.io, pid: pid, message: "\(path) cannot be written: \(String(cString: strerror(code)))"))
            }
            bytes = bytes.dropFirst(count)
        }
    }
}
