import Glibc
import SystemPackage
import ProcessMemoryCore

/// Which pages of a range are resident, from `/proc/PID/pagemap` (bit 63: present in RAM, bit 62:
/// swapped): a scan that skips ranges with neither never faults in memory the target never touched
/// (huge sparse mappings, MAP_NORESERVE arenas).
///
/// Without `CAP_SYS_ADMIN` the kernel still reports the present and swapped bits (it hides only the
/// frame numbers), so this works for any reader that may read the process.
final class ResidencyFilter {
    private let fd: FileDescriptor
    private var entries: [UInt64] = []

    /// Opens the pagemap through the handle's `/proc/PID` descriptor; nil when it cannot be opened.
    init?(handle: ProcessHandle) {
        guard case .success(let fd)? = try? handle.openProcFile("pagemap") else { return nil }
        self.fd = fd
    }

    deinit { fd.closeQuietly() }

    /// Whether any page of `count` bytes at `address` is present or swapped (true when unknown).
    ///
    /// One `pread(2)` of 8 bytes per page.
    func anyResident(_ address: UInt64, count: Int) -> Bool {
        let page = AddressSpace.pageSize
        let first = address / page
        let pages = Int((address + UInt64(count) + page - 1) / page - first)
        if entries.count < pages { entries = [UInt64](repeating: 0, count: pages) }
        let result = entries.withUnsafeMutableBytes { raw -> Result<Int, Errno> in
            guard let base = raw.baseAddress else { return .success(0) }
            return fd.pread(base, pages * 8, at: first * 8)
        }
        guard case .success(let bytes) = result, bytes == pages * 8 else { return true }
        for index in 0..<pages where entries[index] & (3 << 62) != 0 { return true }
        return false
    }
}
