import ProcessMemoryCore
import SystemPackage
/// Which mappings a dump writes.
public enum DumpSelection: Sendable, Hashable {
    /// Every readable byte of every mapping (the default): only ranges that cannot be read are left out.
    case everyReadableByte
    /// The rules of the kernel's core dumper and of gdb's `gcore`: mappings marked `VM_DONTDUMP`
    /// (`dd` in `/proc/PID/smaps`, e.g. `MADV_DONTDUMP`, secret memory) or `VM_IO` (`io`) are
    /// left out, and the others by type against a `coredump_filter` (core(5)): anonymous, file-backed,
    /// hugetlb and DAX, each private or shared, and ELF headers; `nil` uses the target's own
    /// `/proc/PID/coredump_filter`, read through the handle. `[vdso]` and `[vsyscall]` are always kept.
    /// Left-out mappings are listed in the index with ``DumpIndex/Region/excluded`` and have no
    /// data (in a core: a PT_LOAD with `p_filesz` 0, as the kernel writes them).
    case coredumpFilter(CoredumpFilter?)
}

/// The bits of `/proc/PID/coredump_filter` (core(5)): which kinds of mapping a core dump holds.
public struct CoredumpFilter: OptionSet, Sendable, Hashable, Codable, CustomStringConvertible {
    /// The bit mask, as written to `/proc/PID/coredump_filter`.
    public var rawValue: UInt32

    /// Wraps a bit mask.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Bit 0: private anonymous mappings (and private file mappings with anonymous pages).
    public static let anonymousPrivate = CoredumpFilter(rawValue: 1 << 0)
    /// Bit 1: shared anonymous mappings (`MAP_SHARED | MAP_ANONYMOUS`, SysV shm, memfd, deleted files).
    public static let anonymousShared = CoredumpFilter(rawValue: 1 << 1)
    /// Bit 2: private file-backed mappings.
    public static let filePrivate = CoredumpFilter(rawValue: 1 << 2)
    /// Bit 3: shared file-backed mappings.
    public static let fileShared = CoredumpFilter(rawValue: 1 << 3)
    /// Bit 4: private file mappings that start with an ELF header.
    public static let elfHeaders = CoredumpFilter(rawValue: 1 << 4)
    /// Bit 5: private hugetlb mappings.
    public static let hugetlbPrivate = CoredumpFilter(rawValue: 1 << 5)
    /// Bit 6: shared hugetlb mappings.
    public static let hugetlbShared = CoredumpFilter(rawValue: 1 << 6)
    /// Bit 7: private DAX mappings (files on a file system mounted with `-o dax`, device DAX).
    public static let daxPrivate = CoredumpFilter(rawValue: 1 << 7)
    /// Bit 8: shared DAX mappings.
    public static let daxShared = CoredumpFilter(rawValue: 1 << 8)
    /// The kernel's default, `0x33`.
    public static let kernelDefault: CoredumpFilter = [.anonymousPrivate, .anonymousShared, .elfHeaders, .hugetlbPrivate]

    /// `0x…`, as `/proc/PID/coredump_filter` shows it.
    public var description: String { "0x" + String(rawValue, radix: 16) }
}
