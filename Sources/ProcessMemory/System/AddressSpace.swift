import Glibc

/// Facts about this machine's address space that the library checks before any system call.
enum AddressSpace {
    /// The page size, from sysconf(3).
    static let pageSize: UInt64 = {
        let value = sysconf(Int32(_SC_PAGESIZE))
        return value > 0 ? UInt64(value) : 4096
    }()

    /// One past the highest user-space address: 2^47 with 4-level paging, 2^56 with 5-level paging
    /// (`la57` in /proc/cpuinfo). pread(2) on /proc/PID/mem rejects offsets at or above 2^63, so the
    /// library rejects everything above this limit before any call.
    static let userLimit: UInt64 = {
        #if arch(x86_64)
        if case .success(let bytes) = Sys.readFile(AT_FDCWD, "/proc/cpuinfo", limit: 1 << 20),
           String(decoding: bytes, as: UTF8.self).contains(" la57") {
            return 1 << 56
        }
        return 1 << 47
        #else
        return 1 << 48
        #endif
    }()

    /// The legacy `[vsyscall]` page on x86_64, which lives above the user address space.
    static let vsyscallRange: Range<UInt64> = 0xffff_ffff_ff60_0000..<0xffff_ffff_ff60_1000

    /// The largest transfer one read or write call is given; the kernel silently caps a call at
    /// `MAX_RW_COUNT` (2 GiB − 4 KiB), so larger requests are split.
    static let maxChunk = 1 << 30

    static func pageStart(_ address: UInt64) -> UInt64 { address & ~(pageSize - 1) }
}
