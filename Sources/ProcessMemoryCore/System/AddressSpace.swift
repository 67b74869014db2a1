import Glibc

/// Facts about this machine's address space that the library checks before any system call.
package enum AddressSpace {
    /// The page size, from sysconf(3).
    package static let pageSize: UInt64 = {
        let value = sysconf(Int32(_SC_PAGESIZE))
        return value > 0 ? UInt64(value) : 4096
    }()

    /// One past the highest user-space address: 2^47 with 4-level paging, 2^56 with 5-level paging
    /// (`la57` in /proc/cpuinfo). pread(2) on /proc/PID/mem rejects offsets at or above 2^63, so the
    /// library rejects everything above this limit before any call.
    package static let userLimit: UInt64 = {
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
    package static let vsyscallRange: Range<UInt64> = 0xffff_ffff_ff60_0000..<0xffff_ffff_ff60_1000

    /// The largest transfer one read or write call is given; the kernel silently caps a call at
    /// `MAX_RW_COUNT` (2 GiB − 4 KiB), so larger requests are split.
    package static let maxChunk = 1 << 30

    /// Whether `/proc/PID/mem` may write pages the target mapped read-only (`FOLL_FORCE`), as a
    /// debugger needs. Kernels built with `PROC_MEM_FORCE_PTRACE`/`NO_FORCE` or booted with
    /// `proc_mem.force_override=never` refuse; this probes once with a write into a read-only page of
    /// our own through `/proc/self/mem`.
    package static let forcedWritesAllowed: Bool = {
        let size = Int(pageSize)
        guard let page = mmap(nil, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), page != MAP_FAILED else {
            return true
        }
        defer { munmap(page, size) }
        guard case .success(let fd) = Sys.openat(AT_FDCWD, "/proc/self/mem", O_RDWR) else { return false }
        defer { Sys.close(fd) }
        var byte: UInt8 = 0x5a
        let address = UInt64(UInt(bitPattern: page))
        if case .success(1) = Sys.pwrite(fd, &byte, 1, at: address) { return true }
        return false
    }()

    package static func pageStart(_ address: UInt64) -> UInt64 { address & ~(pageSize - 1) }
}
