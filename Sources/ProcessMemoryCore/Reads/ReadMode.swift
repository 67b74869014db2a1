/// Which kernel path a read takes, and so which pages it can see.
///
/// The default is ``debugger``: `/proc/PID/mem` through the descriptor opened with the handle. It
/// sees what a debugger sees (PROT_NONE pages included, as Zircon's `zx_process_read_memory` does),
/// it is bound to the handle's address space by construction (no PID-reuse window at all), it is the
/// fastest path for the small reads profilers make (one `pread(2)` with no access re-check), and its
/// `EIO`/`EFAULT` tell a remote fault from a local one. ``respectingProtections`` is the path of
/// Mach's `vm_read` and Win32's `ReadProcessMemory`, and the fastest for bulk reads.
public enum ReadMode: String, Sendable, Hashable, CaseIterable, Codable {
    /// `pread(2)` on `/proc/PID/mem` (`FOLL_FORCE`): reads every mapped page the kernel can fault
    /// in, PROT_NONE included; stops at holes, guard pages, `[vvar]`, secret memory and pages past
    /// the end of a file.
    case debugger
    /// `process_vm_readv(2)`: reads only what the target itself could read; a PROT_NONE page stops
    /// the read with ``ProcessMemoryError/Code/protectionFailure``. After each call the handle checks
    /// its pidfd and mem descriptor, and discards the data if the process exited or exec'd.
    case respectingProtections

    /// The mode used when none is given: ``debugger``.
    public static let `default`: ReadMode = .debugger
}

/// The outcome of a transfer that may stop early: how many bytes moved, and why it stopped.
public struct PartialTransfer: Sendable, Hashable {
    /// Bytes transferred, counted exactly to the first byte that could not be transferred.
    public var bytesTransferred: Int
    /// Why the transfer stopped before the requested count; `nil` when it completed.
    public var stop: ProcessMemoryError?

    /// Whether every requested byte was transferred.
    public var isComplete: Bool { stop == nil }
}
