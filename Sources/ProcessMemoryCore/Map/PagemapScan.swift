import CProcessMemory
import Glibc

/// The populated (present or swapped) runs of a range, found by the kernel with the `PAGEMAP_SCAN`
/// ioctl on `/proc/PID/pagemap` (Linux 6.7+) instead of reading one 8-byte entry per page.
///
/// On a dense gigabyte the entry-per-page `pread(2)` pass copies 2 MiB of entries out of the kernel
/// and costs 12–16 ms; the ioctl returns one run per stretch of populated pages. `nil` means the
/// kernel lacks the ioctl (`ENOTTY`, `EINVAL`) or it failed: callers then read the entries.
enum PagemapScan {
    /// `PAGE_IS_PRESENT` and `PAGE_IS_SWAPPED` in linux/fs.h.
    static let present: UInt64 = 1 << 3
    static let swapped: UInt64 = 1 << 4
    /// Runs returned per ioctl (24 bytes each); the walk resumes from `walk_end` when they fill.
    static let runsPerCall = 512

    /// The runs of `range` (page-aligned) whose pages are present or swapped, merged and in address
    /// order; nil when the ioctl is unavailable or fails.
    static func populatedRuns(_ pagemap: CInt, in range: Range<UInt64>) -> [Range<UInt64>]? {
        guard pagemap >= 0, !range.isEmpty else { return pagemap >= 0 ? [] : nil }
        var runs: [Range<UInt64>] = []
        return withUnsafeTemporaryAllocation(of: CProcessMemory_page_region.self, capacity: runsPerCall) { vector -> [Range<UInt64>]? in
            guard let base = vector.baseAddress else { return nil }
            var start = range.lowerBound
            while start < range.upperBound {
                var argument = CProcessMemory_pm_scan_arg()
                argument.size = UInt64(MemoryLayout<CProcessMemory_pm_scan_arg>.size)
                argument.start = start
                argument.end = range.upperBound
                argument.vec = UInt64(UInt(bitPattern: base))
                argument.vec_len = UInt64(runsPerCall)
                argument.category_anyof_mask = present | swapped
                argument.return_mask = present | swapped
                guard case .success(let filled) = Sys.pagemapScan(pagemap, &argument),
                      filled >= 0, filled <= runsPerCall else { return nil }
                for index in 0..<filled {
                    let run = base[index].start..<base[index].end
                    // Present and swapped runs that touch are one populated run.
                    if let last = runs.last, last.upperBound == run.lowerBound {
                        runs[runs.count - 1] = last.lowerBound..<run.upperBound
                    } else {
                        runs.append(run)
                    }
                }
                // The kernel says where it stopped; it never goes backwards or past the end.
                guard argument.walk_end > start, argument.walk_end <= range.upperBound else {
                    return argument.walk_end == range.upperBound ? runs : nil
                }
                start = argument.walk_end
            }
            return runs
        }
    }
}
