import SystemPackage

/// The one error type of ProcessMemory: what failed, where, how much moved first, and the system
/// call and errno behind it.
///
/// Every failure of a system call is turned into a `ProcessMemoryError` in one place
/// (``ProcessMemoryError/Code``'s mapping in `ErrnoMapping.swift`); `EFAULT` and `EIO` from a remote
/// access are ordinary outcomes that are classified by looking at the target's memory map, after a
/// look at this process's own map has ruled out the caller's buffer (``Code/invalidBuffer``).
public struct ProcessMemoryError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The documented condition behind a failure.
    ///
    /// The codes follow the conditions of the reference interfaces (Zircon, Mach, Win32) so each can
    /// be told apart on Linux; see the "Choosing a read mode" and "Permissions" articles.
    public enum Code: String, Sendable, Hashable, CaseIterable, Codable {
        /// A size of zero, a range that wraps around, an address outside the user address space, or
        /// a null buffer.
        case invalidArguments
        /// The handle lacks the right, the kernel refused access, or the range touches a protected
        /// area (`[vdso]`, `[vvar]`, `[vsyscall]`, secret memory) that is never written.
        case accessDenied
        /// The handle was closed.
        case badHandle
        /// The PID has no address space to read (a kernel thread).
        case wrongType
        /// The process is exiting, a zombie, or gone.
        case badState
        /// The process called execve(2) after the handle was opened; call `reopen()` to follow it.
        case execed
        /// Nothing is mapped at the address.
        case notFound
        /// Something is mapped at the address, but it cannot be accessed this way (PROT_NONE with a
        /// protection-respecting mode, a guard page, `[vvar]`, secret memory).
        case protectionFailure
        /// The address lies in a file or shared-memory mapping past the end of its backing object.
        case outOfRange
        /// The kernel or this process ran out of memory.
        case noMemory
        /// The kernel does not provide what the operation needs.
        case notSupported
        /// An I/O error, or a refusal the kernel gave no reason for.
        case io
        /// The caller's own buffer, in this process, could not be used by the kernel: a read could
        /// not store into it, or a write could not load from it, because that part of it is not
        /// mapped, is read-only (for a read), is PROT_NONE, or is a guard page.
        ///
        /// This is a fault on the local side, never in the target: ``ProcessMemoryError/localAddress``
        /// names the first byte of the buffer that could not be used, and
        /// ``ProcessMemoryError/address`` the target address whose byte was to move there or before.
        /// `process_vm_readv(2)` and `pread(2)` say `EFAULT` or a short count for a fault on either
        /// side; the library checks its caller's pages (`PROCMAP_QUERY` on `/proc/self/maps`) only
        /// after a transfer stopped early, so the check costs nothing on success.
        case invalidBuffer
    }

    /// The documented condition.
    public var code: Code
    /// The target process, when the failure concerns one.
    public var pid: Int32?
    /// The first address that could not be accessed, or the address the operation was given.
    public var address: UInt64?
    /// How many bytes were transferred before the failure.
    public var bytesTransferred: Int
    /// The system call whose result led to this error, if any.
    public var systemCall: SystemCall?
    /// The errno that system call returned, if any (`nil` when it returned a short count or 0).
    public var errno: Errno?
    /// Why access was denied, when that can be known.
    public var accessDenial: AccessDenialReason?
    /// For ``Code/invalidBuffer``: the first address of the caller's buffer (in this process, not
    /// the target) that the kernel could not store into (a read) or load from (a write); `nil`
    /// otherwise, or when the kernel reported the fault but the buffer's pages look usable now.
    public var localAddress: UInt64?
    /// A one-line explanation for a person.
    public var message: String

    /// Creates an error; the library's own functions fill every field they know.
    public init(
        _ code: Code, pid: Int32? = nil, address: UInt64? = nil, bytesTransferred: Int = 0,
        systemCall: SystemCall? = nil, errno: Errno? = nil, accessDenial: AccessDenialReason? = nil,
        localAddress: UInt64? = nil, message: String
    ) {
        self.code = code
        self.pid = pid
        self.address = address
        self.bytesTransferred = bytesTransferred
        self.systemCall = systemCall
        self.errno = errno
        self.accessDenial = accessDenial
        self.localAddress = localAddress
        self.message = message
    }

    /// `code: message (pid …, address 0x…, local buffer 0x…, N bytes transferred, syscall: errno)`.
    public var description: String {
        var details: [String] = []
        if let pid { details.append("pid \(pid)") }
        if let address { details.append("address 0x\(String(address, radix: 16))") }
        if let localAddress { details.append("local buffer 0x\(String(localAddress, radix: 16))") }
        if bytesTransferred > 0 || address != nil { details.append("\(bytesTransferred) bytes transferred") }
        if let systemCall {
            if let errno { details.append("\(systemCall): \(errno)") } else { details.append(systemCall.description) }
        }
        let suffix = details.isEmpty ? "" : " (" + details.joined(separator: ", ") + ")"
        return "\(code.rawValue): \(message)\(suffix)"
    }
}

extension ProcessMemoryError {
    package static func invalid(_ message: String, pid: Int32? = nil, address: UInt64? = nil) -> Self {
        Self(.invalidArguments, pid: pid, address: address, message: message)
    }

    package static func closed(pid: Int32) -> Self {
        Self(.badHandle, pid: pid, message: "the handle has been closed")
    }

    package static func missingRight(_ right: String, pid: Int32) -> Self {
        Self(.accessDenied, pid: pid, accessDenial: .handleLacksRight,
             message: "the handle was opened without the \(right) right")
    }

    package static func execed(pid: Int32, address: UInt64? = nil, bytesTransferred: Int = 0, systemCall: SystemCall? = nil) -> Self {
        Self(.execed, pid: pid, address: address, bytesTransferred: bytesTransferred, systemCall: systemCall,
             message: "the process called execve since the handle was opened; reopen the handle to follow the new image")
    }

    package static func gone(_ state: ProcessState, pid: Int32, address: UInt64? = nil, bytesTransferred: Int = 0,
                     systemCall: SystemCall? = nil, errno: Errno? = nil) -> Self {
        let what: String
        switch state {
        case .zombie: what = "the process has exited (zombie, not yet reaped)"
        case .exiting: what = "the process is exiting; its memory is being torn down"
        default: what = "the process is gone"
        }
        return Self(.badState, pid: pid, address: address, bytesTransferred: bytesTransferred,
                    systemCall: systemCall, errno: errno, message: what)
    }
}
