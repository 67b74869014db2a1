import Glibc
import SystemPackage

/// The one place where an errno from a system call becomes a ``ProcessMemoryError/Code``.
///
/// Remote-access failures (`EFAULT` from `process_vm_readv`, `EIO` from `/proc/PID/mem`) do not say
/// why the address is inaccessible; ``FailureClassifier`` looks at the map to decide. The rest is a
/// table, documented per system call.
package enum ErrnoMapping {
    /// The code for an errno returned by a system call, before any look at the map.
    package static func code(for errno: Errno, systemCall: SystemCall) -> ProcessMemoryError.Code {
        switch errno {
        case .notPermitted, .permissionDenied: return .accessDenied
        case .noSuchProcess: return .badState
        case .badFileDescriptor: return .badHandle
        case .invalidArgument: return .invalidArguments
        case .noMemory: return .noMemory
        case .noFunction, .notSupported: return .notSupported
        case .ioError: return .io
        case .badAddress: return .notFound
        case .noSuchFileOrDirectory: return .notFound
        case .tooManyOpenFiles, .tooManyOpenFilesInSystem: return .noMemory
        default: return .io
        }
    }

    /// Maps the failure to open a process or one of its /proc files.
    ///
    /// See `man 2 pidfd_open` and `man 5 proc_pid_mem`: `EACCES`/`EPERM` come from the ptrace access
    /// check, `ESRCH` from a process without an address space (zombie or kernel thread), `ENOENT`
    /// from a process that is gone.
    package static func openFailure(_ errno: Errno, systemCall: SystemCall, pid: Int32, procDir: CInt? = nil) -> ProcessMemoryError {
        switch errno {
        case .permissionDenied, .notPermitted:
            let reason = AccessDiagnosis.diagnose(pid: pid, procDir: procDir)
            return ProcessMemoryError(.accessDenied, pid: pid, systemCall: systemCall, errno: errno, accessDenial: reason,
                                      message: "access to pid \(pid) was denied: \(reason)")
        case .noSuchProcess:
            if let procDir, case .success(let bytes) = Sys.readFile(procDir, "stat"), let stat = ProcStat.parse(bytes) {
                if stat.isKernelThread {
                    return ProcessMemoryError(.wrongType, pid: pid, systemCall: systemCall, errno: errno,
                                              message: "pid \(pid) is a kernel thread and has no user address space")
                }
                if stat.state == "Z" { return .gone(.zombie, pid: pid, systemCall: systemCall, errno: errno) }
            }
            return .gone(.exiting, pid: pid, systemCall: systemCall, errno: errno)
        case .noSuchFileOrDirectory:
            return .gone(.gone, pid: pid, systemCall: systemCall, errno: errno)
        default:
            return resourceFailure(errno, systemCall: systemCall, pid: pid)
        }
    }

    /// Maps a failure that is about our own resources (descriptors, memory).
    package static func resourceFailure(_ errno: Errno, systemCall: SystemCall, pid: Int32?) -> ProcessMemoryError {
        let code = code(for: errno, systemCall: systemCall)
        let message: String
        switch errno {
        case .tooManyOpenFiles, .tooManyOpenFilesInSystem:
            message = "out of file descriptors; raise RLIMIT_NOFILE or close handles"
        case .noMemory: message = "the kernel could not allocate memory for the request"
        default: message = "\(systemCall) failed: \(errno)"
        }
        return ProcessMemoryError(code, pid: pid, systemCall: systemCall, errno: errno, message: message)
    }
}
