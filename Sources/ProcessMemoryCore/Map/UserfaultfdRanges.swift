import Glibc
import SystemPackage

/// Ranges registered with userfaultfd(2), which no region walk may read (issue 16).
///
/// A read of such a range with `process_vm_readv(2)` waits in the kernel for the target's own fault
/// handler; when that handler is stopped (every stop method stops it) or absent, it waits forever
/// (measured on Linux 6.x: `procmem read --mode protect` never returned; `/proc/PID/mem` gives
/// `EIO`). `/proc/PID/smaps` marks them in `VmFlags`: `um` (missing pages), `uw` (write-protect),
/// `ui` (minor faults).
extension ProcessHandle {
    /// The `VmFlags` that mark a userfaultfd registration.
    package static let userfaultfdFlags: Set<String> = ["um", "uw", "ui"]

    /// The regions registered with userfaultfd, by start address, with why they are not read;
    /// empty when `/proc/PID/smaps` cannot be read (nothing is then known to be registered).
    package func userfaultfdRegions() -> [UInt64: (end: UInt64, reason: String)] {
        guard let details = try? regionDetails() else { return [:] }
        return Self.userfaultfdRegions(in: details)
    }

    /// The same from `/proc/PID/smaps` already read (``regionDetails()``): one pass over smaps,
    /// which walks every page table of the process, serves a dump's other needs too.
    package static func userfaultfdRegions(in details: [RegionDetails]) -> [UInt64: (end: UInt64, reason: String)] {
        var result: [UInt64: (end: UInt64, reason: String)] = [:]
        for detail in details {
            let flags = detail.vmFlags.filter { Self.userfaultfdFlags.contains($0) }
            guard !flags.isEmpty else { continue }
            result[detail.region.start] = (detail.region.end, Self.userfaultfdReason(flags))
        }
        return result
    }

    package static func userfaultfdReason(_ flags: [String]) -> String {
        "registered with userfaultfd (VmFlags \(flags.joined(separator: " "))): a read would wait for the process's own fault handler, which may be stopped or absent, forever; not read"
    }

    /// The error recorded for a skipped userfaultfd range.
    package func userfaultfdSkip(start: UInt64, reason: String) -> ProcessMemoryError {
        ProcessMemoryError(.notSupported, pid: pid, address: start, message: reason)
    }
}
