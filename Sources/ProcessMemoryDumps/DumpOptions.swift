import ProcessMemoryCore
import SystemPackage
/// How a dump runs: how the target is held still, how memory is read, progress and cancellation.
public struct DumpOptions {
    /// How the target is held still while it is read; ``StopMethod/ptrace`` by default (invisible to
    /// the target's parent). Cores get registers with every method but ``StopMethod/none``.
    public var stopMethod: StopMethod
    /// ``ReadMode/debugger`` (default) also dumps PROT_NONE pages; ``ReadMode/respectingProtections``
    /// lists them as failed.
    public var readMode: ReadMode
    /// Bytes read and written per system call (default 1 MiB); a dump holds two such buffers (one
    /// being written while the next is read). A buffer that fits the CPU's L2 cache is still there
    /// when `pwrite(2)` copies it into the page cache: on the 2-core EPYC of BENCHMARKS.md (row 6d),
    /// the dump's read/write loop written in C took 0.6–1.0 s per dense GiB with 1 MiB chunks and
    /// 0.7–4.5 s with 8 MiB chunks.
    public var chunkSize: Int
    /// Called on this thread after every chunk with the bytes processed so far (read, found
    /// unreadable, or skipped) and in all: the total of the mapped regions.
    public var progress: ((WorkProgress) -> Void)?
    /// Polled before every chunk; once cancelled, the dump ends early, marked partial
    /// (`partialReason` `"interrupted"`), with the target resumed.
    public var cancellation: Cancellation
    /// Which mappings are dumped: every readable byte (default), or only those the kernel's core
    /// dumper and gdb's `gcore` would write under a `coredump_filter` (see ``DumpSelection``).
    public var selection: DumpSelection = .everyReadableByte
    /// Leave pages that hold only zeros out of the output files as holes (`true`, the default):
    /// pages of private anonymous mappings that were never populated (neither present nor swapped
    /// in `/proc/PID/pagemap`) are not even read, and read pages that are all zeros are not
    /// written. Holes read back as zeros, which is what the process reads there, so gdb and
    /// ``SnapshotDiff`` see the same bytes; the index lists the never-populated ranges. `false`
    /// reads and writes every byte.
    public var sparse: Bool = true
    /// Names for the index's regions (``DumpIndex/Region/module``, ``DumpIndex/Region/symbol``),
    /// supplied by the caller, since this module reads no symbols (the CLI passes one backed by
    /// `ProcessMemorySymbols`). Called with each region's first address after the target has been
    /// resumed, so symbol loading never lengthens the stop. `nil` (the default) leaves them out.
    public var addressNames: ((UInt64) -> DumpIndex.AddressName?)? = nil

    /// Creates options; `chunkSize` is raised to at least one page.
    public init(stopMethod: StopMethod = .ptrace, readMode: ReadMode = .debugger, chunkSize: Int = 1 << 20,
                progress: ((WorkProgress) -> Void)? = nil, cancellation: Cancellation = .never) {
        self.stopMethod = stopMethod
        self.readMode = readMode
        self.chunkSize = max(Int(AddressSpace.pageSize), chunkSize)
        self.progress = progress
        self.cancellation = cancellation
    }
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
