/// The rights a ``ProcessHandle`` carries. A duplicate can drop rights but never gain them.
public struct AccessRights: OptionSet, Sendable, Hashable, CustomStringConvertible {
    /// The bit pattern.
    public let rawValue: UInt8
    /// Creates a set from its bit pattern.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Read the process's memory and map (`/proc/PID/mem` opened `O_RDONLY`, `process_vm_readv`).
    public static let read = AccessRights(rawValue: 1)
    /// Write the process's memory (`/proc/PID/mem` opened `O_RDWR`).
    public static let write = AccessRights(rawValue: 2)
    /// Both rights.
    public static let readWrite: AccessRights = [.read, .write]

    /// `read`, `write`, `read+write` or `none`.
    public var description: String {
        switch (contains(.read), contains(.write)) {
        case (true, true): return "read+write"
        case (true, false): return "read"
        case (false, true): return "write"
        case (false, false): return "none"
        }
    }
}

/// The life-cycle state of the process behind a handle.
public enum ProcessState: String, Sendable, Hashable, Codable {
    /// Running (or stopped) with the address space the handle was opened on.
    case alive
    /// It called execve(2) after the handle was opened: the old address space is gone and a new
    /// image runs under the same PID. Operations fail with ``ProcessMemoryError/Code/execed`` until
    /// ``ProcessHandle/reopen()``.
    case execed
    /// It is exiting: its memory is being torn down but it has not yet become a zombie.
    case exiting
    /// It exited and has not been reaped by its parent.
    case zombie
    /// It exited and was reaped; the PID may already belong to another process.
    case gone
}
