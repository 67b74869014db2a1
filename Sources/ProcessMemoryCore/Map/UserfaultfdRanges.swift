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

    /// The first address of `count` bytes at `address` that a `process_vm_readv(2)` could wait on
    /// forever (an unpopulated page of a range registered with userfaultfd), and why; nil when
    /// there is none or the handle cannot be used. One `pread(2)` of `/proc/PID/pagemap`, plus a
    /// read of `/proc/PID/smaps` only when a page is not populated.
    package func userfaultfdHazard(at address: UInt64, count: Int) -> (address: UInt64, reason: String)? {
        let found = try? box.use(pid: pid) { (fds) throws(ProcessMemoryError) -> (address: UInt64, reason: String)? in
            UserfaultfdGuard.hazard(fds, address: address, count: count)
        }
        return found ?? nil
    }

    /// The error recorded for a skipped userfaultfd range.
    package func userfaultfdSkip(start: UInt64, reason: String) -> ProcessMemoryError {
        ProcessMemoryError(.notSupported, pid: pid, address: start, message: reason)
    }
}

/// Keeps protect-mode reads (`process_vm_readv(2)`) from waiting forever on userfaultfd (issue 16).
///
/// `process_vm_readv` faults in a missing page of a userfaultfd-registered range and then waits,
/// killable only by SIGKILL, for the target's handler (measured on Linux 6.x: a pending SIGUSR1 with
/// a handler does not end the wait). `/proc/PID/mem` instead fails such a page with `EIO`. So before
/// a protect-mode read, one `PAGEMAP_SCAN` ioctl on `/proc/PID/pagemap` (Linux 6.7+; before it, one
/// `pread(2)` of the 8-byte entries) tells whether every page is populated (present or swapped):
/// such a page raises no userfault on read, and the read goes ahead as before. Only when some page is not populated is `/proc/PID/smaps` read, and the read is cut at
/// the first unpopulated page of a range with `VmFlags` `um` or `ui`.
///
/// A page the target unmaps (`MADV_DONTNEED`) between the check and the read can still make the
/// read wait; only a target that races us on purpose does that, and SIGKILL still ends it.
enum UserfaultfdGuard {
    /// Pagemap bit 63 (present) or 62 (swapped).
    static let populated: UInt64 = 3 << 62

    /// The first address of `[address, address + count)` that a `process_vm_readv` could wait on
    /// forever, and why; nil when there is none.
    static func hazard(_ fds: HandleDescriptors, address: UInt64, count: Int) -> (address: UInt64, reason: String)? {
        guard count > 0 else { return nil }
        let page = AddressSpace.pageSize
        let end = address &+ UInt64(count)
        guard end > address else { return nil }
        let firstPage = address / page
        let pageCount = Int((end - 1) / page - firstPage + 1)
        var unpopulated: [Range<UInt64>] = []
        let pages = (firstPage * page)..<((firstPage + UInt64(pageCount)) * page)
        if fds.pagemap >= 0, let runs = PagemapScan.populatedRuns(fds.pagemap, in: pages) {
            // One ioctl: the pages between the populated runs.
            unpopulated = Pagemap.gaps(between: runs, in: pages)
            guard !unpopulated.isEmpty else { return nil }
        } else if fds.pagemap >= 0, let found = unpopulatedPages(fds.pagemap, firstPage: firstPage, count: pageCount) {
            guard !found.isEmpty else { return nil }
            unpopulated = found.map { ($0 * page)..<(($0 + 1) * page) }
        } else {
            unpopulated = [pages]
        }
        guard case .success(let bytes) = Sys.readFile(fds.procDir, "smaps", limit: 1 << 30) else { return nil }
        let registered = SmapsParser.parse(bytes).compactMap { detail -> (Range<UInt64>, [String])? in
            // A write-protect registration (`uw`) does not fault reads.
            let flags = detail.vmFlags.filter { $0 == "um" || $0 == "ui" }
            return flags.isEmpty ? nil : (detail.region.start..<detail.region.end, detail.vmFlags.filter { ProcessHandle.userfaultfdFlags.contains($0) })
        }
        guard !registered.isEmpty else { return nil }
        for gap in unpopulated {
            if let entry = registered.first(where: { $0.0.overlaps(gap) }) {
                return (max(gap.lowerBound, entry.0.lowerBound, address), ProcessHandle.userfaultfdReason(entry.1))
            }
        }
        return nil
    }

    /// The page numbers among `count` pages from `firstPage` that are neither present nor swapped;
    /// nil when pagemap cannot be read (for example after an exec).
    private static func unpopulatedPages(_ pagemap: CInt, firstPage: UInt64, count: Int) -> [UInt64]? {
        var result: [UInt64] = []
        let batch = 32_768  // 256 KiB of entries per pread(2)
        var done = 0
        return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: batch) { entries -> [UInt64]? in
            guard let base = entries.baseAddress else { return nil }
            while done < count {
                let want = min(batch, count - done)
                guard case .success(let got) = Sys.pread(pagemap, base, want * 8, at: (firstPage + UInt64(done)) * 8),
                      got == want * 8 else { return nil }
                for index in 0..<want where entries[index] & populated == 0 {
                    result.append(firstPage + UInt64(done + index))
                }
                done += want
            }
            return result
        }
    }
}
