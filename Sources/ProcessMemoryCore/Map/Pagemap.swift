import Glibc
import SystemPackage

/// Which pages of a range are populated, from `/proc/PID/pagemap` (bit 63: present in RAM, bit 62:
/// swapped), read through the handle's `/proc/PID` descriptor.
///
/// A scan that skips ranges with neither bit never faults in memory the target never touched, and a
/// dump leaves never-populated anonymous pages as holes in its files (they read as zeros, as they
/// would in the process). Without `CAP_SYS_ADMIN` the kernel still reports these two bits (it hides
/// only the frame numbers), so this works for any reader that may read the process.
package final class Pagemap {
    private let fd: FileDescriptor
    private var entries: [UInt64] = []
    /// Pagemap entries read per `pread(2)`: 512 KiB, whatever the range's size.
    private static let batch = 65_536

    /// Opens the pagemap; nil when it cannot be opened.
    package init?(handle: ProcessHandle) {
        guard case .success(let fd)? = try? handle.openProcFile("pagemap") else { return nil }
        self.fd = fd
    }

    deinit { fd.closeQuietly() }

    /// Whether any page of `count` bytes at `address` is present or swapped (true when unknown).
    ///
    /// One `pread(2)` of 8 bytes per page.
    package func anyResident(_ address: UInt64, count: Int) -> Bool {
        let page = AddressSpace.pageSize
        let first = address / page
        let pages = Int((address + UInt64(count) + page - 1) / page - first)
        guard let read = read(firstPage: first, pages: pages), read == pages else { return true }
        for index in 0..<pages where entries[index] & (3 << 62) != 0 { return true }
        return false
    }

    /// The runs of pages in `range` (page-aligned) that are present or swapped, in address order;
    /// nil when the pagemap cannot be read, in which case every page must be taken as populated.
    ///
    /// One `PAGEMAP_SCAN` ioctl per 512 runs (Linux 6.7+), else one `pread(2)` per 65,536 pages.
    package func populatedRuns(in range: Range<UInt64>) -> [Range<UInt64>]? {
        scannedRuns(in: range) ?? runsFromEntries(in: range)
    }

    /// The parts of `range` that none of `runs` (in address order) covers: the unpopulated pages
    /// between the populated runs.
    package static func gaps(between runs: [Range<UInt64>], in range: Range<UInt64>) -> [Range<UInt64>] {
        var gaps: [Range<UInt64>] = []
        var position = range.lowerBound
        for run in runs {
            if run.lowerBound > position { gaps.append(position..<min(run.lowerBound, range.upperBound)) }
            position = max(position, run.upperBound)
        }
        if position < range.upperBound { gaps.append(position..<range.upperBound) }
        return gaps
    }

    /// ``populatedRuns(in:)`` by the `PAGEMAP_SCAN` ioctl only; nil when the kernel lacks it.
    package func scannedRuns(in range: Range<UInt64>) -> [Range<UInt64>]? {
        let page = AddressSpace.pageSize
        let aligned = (range.lowerBound / page * page)..<((range.upperBound + page - 1) / page * page)
        return PagemapScan.populatedRuns(fd.rawValue, in: aligned)?.compactMap { run in
            let start = max(run.lowerBound, range.lowerBound), end = min(run.upperBound, range.upperBound)
            return start < end ? start..<end : nil
        }
    }

    /// ``populatedRuns(in:)`` from the 8-byte entries, one `pread(2)` per 65,536 pages.
    package func runsFromEntries(in range: Range<UInt64>) -> [Range<UInt64>]? {
        let page = AddressSpace.pageSize
        var runs: [Range<UInt64>] = []
        var runStart: UInt64?
        var pageIndex = range.lowerBound / page
        let endPage = (range.upperBound + page - 1) / page
        while pageIndex < endPage {
            let want = Int(min(UInt64(Self.batch), endPage - pageIndex))
            guard let got = read(firstPage: pageIndex, pages: want), got == want else { return nil }
            for index in 0..<want {
                let address = (pageIndex + UInt64(index)) * page
                if entries[index] & (3 << 62) != 0 {
                    if runStart == nil { runStart = max(address, range.lowerBound) }
                } else if let start = runStart {
                    runs.append(start..<address)
                    runStart = nil
                }
            }
            pageIndex += UInt64(want)
        }
        if let start = runStart { runs.append(start..<min(range.upperBound, endPage * page)) }
        return runs
    }

    /// Reads `pages` entries from `firstPage` into `entries`; the count read, or nil on failure.
    private func read(firstPage: UInt64, pages: Int) -> Int? {
        if entries.count < pages { entries = [UInt64](repeating: 0, count: pages) }
        let result = entries.withUnsafeMutableBytes { raw -> Result<Int, Errno> in
            guard let base = raw.baseAddress else { return .success(0) }
            return fd.pread(base, pages * 8, at: firstPage * 8)
        }
        guard case .success(let bytes) = result else { return nil }
        return bytes / 8
    }
}
