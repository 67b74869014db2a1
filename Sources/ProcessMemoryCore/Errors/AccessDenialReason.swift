/// Why the kernel refused access to a process, as far as it can be known from `/proc`.
///
/// The kernel's ptrace access check (`PTRACE_MODE_ATTACH_REALCREDS`, used by `process_vm_readv`
/// and `open("/proc/PID/mem")`) returns only `EPERM`/`EACCES`; this value is the library's diagnosis,
/// made from `/proc/PID/status`, the owner of `/proc/PID/mem`, our own capabilities and Yama.
public enum AccessDenialReason: Sendable, Hashable, CustomStringConvertible {
    /// The handle was not opened with the right the operation needs.
    case handleLacksRight
    /// The target runs as another user and the caller lacks `CAP_SYS_PTRACE`.
    case otherUser(targetUID: UInt32, callerUID: UInt32)
    /// The target is not dumpable (`PR_SET_DUMPABLE` 0, a setuid program, or a process that changed
    /// its credentials), and the caller lacks `CAP_SYS_PTRACE`.
    case notDumpable
    /// The target holds capabilities the caller does not have (for example a root target read by
    /// root with its capabilities dropped).
    case targetHasMoreCapabilities
    /// Yama's `kernel.yama.ptrace_scope` forbids it (the value is the scope in force).
    case yama(scope: Int)
    /// The range touches memory the library never writes (`[vdso]`, `[vvar]`, `[vsyscall]`,
    /// secret memory) or a shared mapping without write permission.
    case protectedMemory(String)
    /// None of the above could be established (for example a seccomp filter or an LSM).
    case unknown

    /// One sentence saying what is missing and how it can be granted safely.
    public var description: String {
        switch self {
        case .handleLacksRight:
            return "the handle lacks the needed right; open or duplicate a handle with it"
        case .otherUser(let target, let caller):
            return "the target runs as uid \(target), you as uid \(caller); run as that user (sudo -u) or as root. Granting CAP_SYS_PTRACE to the binary (setcap) makes it root-equivalent for every local user who can run it; see the Permissions article for safer ways"
        case .notDumpable:
            return "the target is not dumpable (setuid, changed credentials or PR_SET_DUMPABLE 0); only CAP_SYS_PTRACE can read it"
        case .targetHasMoreCapabilities:
            return "the target has capabilities you lack; run with the same capabilities (CAP_SYS_PTRACE)"
        case .yama(let scope):
            return "Yama ptrace_scope is \(scope); run the tool as the target's parent, grant CAP_SYS_PTRACE, or lower /proc/sys/kernel/yama/ptrace_scope"
        case .protectedMemory(let what):
            return "\(what) is protected memory and is never written"
        case .unknown:
            return "the kernel refused access for a reason /proc does not show (seccomp, an LSM, or a container policy)"
        }
    }
}
