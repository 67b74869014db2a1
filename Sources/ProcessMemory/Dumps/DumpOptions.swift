/// How a dump runs: how the target is held still, how memory is read, progress and cancellation.
public struct DumpOptions {
    /// How the target is held still while it is read; ``StopMethod/ptrace`` by default (invisible to
    /// the target's parent). Cores get registers with every method but ``StopMethod/none``.
    public var stopMethod: StopMethod
    /// ``ReadMode/debugger`` (default) also dumps PROT_NONE pages; ``ReadMode/respectingProtections``
    /// lists them as failed.
    public var readMode: ReadMode
    /// Bytes read and written per system call (default 8 MiB).
    public var chunkSize: Int
    /// Called after every chunk with the number of bytes just processed (read or found unreadable).
    public var progress: ((UInt64) -> Void)?
    /// Polled before every chunk; returning `true` ends the dump early, marked partial
    /// (`partialReason` `"interrupted"`), with the target resumed.
    public var shouldCancel: (() -> Bool)?
    /// Which mappings are dumped: every readable byte (default), or only those the kernel's core
    /// dumper and gdb's `gcore` would write under a `coredump_filter` (see ``DumpSelection``).
    public var selection: DumpSelection = .everyReadableByte

    /// Creates options; `chunkSize` is raised to at least one page.
    public init(stopMethod: StopMethod = .ptrace, readMode: ReadMode = .debugger, chunkSize: Int = 8 << 20,
                progress: ((UInt64) -> Void)? = nil, shouldCancel: (() -> Bool)? = nil) {
        self.stopMethod = stopMethod
        self.readMode = readMode
        self.chunkSize = max(Int(AddressSpace.pageSize), chunkSize)
        self.progress = progress
        self.shouldCancel = shouldCancel
    }
}

/// Which mappings a dump writes.
public enum DumpSelection: Sendable, Hashable {
    /// Every readable byte of every mapping (the default): only ranges that cannot be read are left out.
    case everyReadableByte
    /// The rules of the kernel's core dumper and of gdb's `gcore`: mappings marked `VM_DONTDUMP`
    /// (`dd` in `/proc/PID/smaps`, e.g. `MADV_DONTDUMP`, secret memory) or `VM_IO` (`io`) are
    /// left out, and the others by type against a `coredump_filter` (core(5)); `nil` uses the
    /// target's own `/proc/PID/coredump_filter`. `[vdso]` and `[vsyscall]` are always kept.
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
    /// The kernel's default, `0x33`.
    public static let kernelDefault: CoredumpFilter = [.anonymousPrivate, .anonymousShared, .elfHeaders, .hugetlbPrivate]

    /// `0x…`, as `/proc/PID/coredump_filter` shows it.
    public var description: String { "0x" + String(rawValue, radix: 16) }
}

/// Where a dump's readable bytes go: a directory of region files, or a core file.
protocol DumpSink {
    /// A readable run starts at `address` in `region`; returns the file name (if any) and the offset
    /// at which its first byte will be written.
    mutating func openSegment(at address: UInt64, in region: MemoryRegion) throws(ProcessMemoryError) -> (file: String?, offset: UInt64)
    /// Writes bytes of the open run; `offset` is where the first of them goes.
    mutating func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(ProcessMemoryError)
    /// The open run ended `length` bytes after it started.
    mutating func closeSegment(length: UInt64) throws(ProcessMemoryError)
}
