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

    /// Writes `text` to `path` (mode 0600), replacing an older file atomically and never through
    /// a link (``OutputFiles/write(_:to:)``).
    static func write(_ text: String, to path: String, pid: Int32) throws {
        do throws(ProcessMemoryError) {
            try OutputFiles.write(Array(text.utf8), to: path)
        } catch {
            var reported = error
            reported.pid = pid
            reported.message = "\(path) cannot be written: \(error.message)"
            throw ErrorReporting.fail(reported)
        }
    }
}
