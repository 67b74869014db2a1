import Glibc
import SystemPackage

/// The one place where an errno from a system call becomes a ``ProcessMemoryError/Code``.
///
/// Remote-access failures (`EFAULT` from `process_vm_readv`, `EIO` from `/proc/PID/mem`) do not say
/// why the address is inaccessible; ``FailureClassifier`` looks at the map to decide. The rest is a
/// table, documented per system call.
enum ErrnoMapping {
    /// The code for an errno returned by a system call, before any look at the map.
    static func code(for errno: Errno, systemCall: String) -> ProcessMemoryError.Code {
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
    static func openFailure(_ errno: Errno, systemCall: String, pid: Int32, procDir: CInt? = nil) -> ProcessMemoryError {
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
    static func resourceFailure(_ errno: Errno, systemCall: String, pid: Int32?) -> ProcessMemoryError {
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

// MARK: - Memory objects

/// What a memory-object call was doing when it failed; decides what `EPERM`, `EBADF` and `EINVAL` mean.
enum ObjectOperation {
    case create
    /// Opening the path (or descriptor) named.
    case open(String)
    case read
    case write
    case resize(grow: Bool)
    /// Getting (`nil`) or adding seals.
    case seal(Seals?)
    case map(writable: Bool)
    /// sendmsg(2) or recvmsg(2) on a Unix socket.
    case socket
}

extension ErrnoMapping {
    /// Maps the failure of a call on a memory object's descriptor (see linux-semantics §10 and §13).
    ///
    /// * `EPERM` comes from a seal: `F_SEAL_WRITE`/`F_SEAL_FUTURE_WRITE` → `.accessDenied`;
    ///   `F_SEAL_GROW` on a write → `.outOfRange` (the write would grow the object); `F_SEAL_GROW`/
    ///   `F_SEAL_SHRINK` on a resize, or `F_SEAL_SEAL` on adding seals → `.accessDenied`. `seals`
    ///   are the object's seals, read after the failure.
    /// * `EBADF` on a descriptor the object guards means its access mode lacks the right:
    ///   `.accessDenied` (an `O_RDONLY` memfd refuses `pwrite` with `EBADF`).
    /// * `EIO` → `.io`; `ENOSPC`, `EDQUOT`, `ENOMEM`, `EMFILE` → `.noMemory`.
    static func objectFailure(_ errno: Errno, operation: ObjectOperation, systemCall: String, offset: UInt64? = nil,
                              bytesTransferred: Int = 0, seals: Seals? = nil) -> ProcessMemoryError {
        func error(_ code: ProcessMemoryError.Code, _ message: String, denial: AccessDenialReason? = nil) -> ProcessMemoryError {
            ProcessMemoryError(code, address: offset, bytesTransferred: bytesTransferred, systemCall: systemCall,
                               errno: errno, accessDenial: denial, message: message)
        }
        let seals = seals ?? []
        let writeSeal = seals.intersection([.write, .futureWrite])
        switch (errno, operation) {
        case (.notPermitted, .write) where !writeSeal.isEmpty:
            return error(.accessDenied, "the object is sealed against writes (\(writeSeal))")
        case (.notPermitted, .write) where seals.contains(.grow):
            return error(.outOfRange, "the write would grow the object, which is sealed with F_SEAL_GROW")
        case (.notPermitted, .map(writable: true)), (.permissionDenied, .map(writable: true)):
            if !writeSeal.isEmpty {
                return error(.accessDenied, "a writable mapping of an object sealed against writes (\(writeSeal)) is refused")
            }
            return error(.accessDenied, "the kernel refused a writable shared mapping of the object")
        case (.notPermitted, .resize(let grow)):
            if grow && seals.contains(.grow) {
                return error(.accessDenied, "the object's size is sealed with F_SEAL_GROW; it cannot grow")
            }
            if !grow && seals.contains(.shrink) {
                return error(.accessDenied, "the object's size is sealed with F_SEAL_SHRINK; it cannot shrink")
            }
            return error(.accessDenied, "the kernel refused to resize the object")
        case (.notPermitted, .seal(.some)):
            if seals.contains(.seal) {
                return error(.accessDenied, "the object is sealed with F_SEAL_SEAL (or was created without MFD_ALLOW_SEALING); no seal can be added")
            }
            return error(.accessDenied, "the kernel refused the seal; adding seals needs a writable descriptor", denial: .handleLacksRight)
        case (.resourceBusy, .seal):
            return error(.accessDenied, "F_SEAL_WRITE is refused while a writable shared mapping of the object exists; unmap it, or seal with F_SEAL_FUTURE_WRITE")
        case (.invalidArgument, .seal):
            return error(.notSupported, "the object's filesystem does not support seals (only memfds and shared-memory/tmpfs files do)")
        case (.badFileDescriptor, .read):
            return error(.accessDenied, "the object's descriptor was not opened for reading", denial: .handleLacksRight)
        case (.badFileDescriptor, .write), (.badFileDescriptor, .resize):
            return error(.accessDenied, "the object's descriptor was not opened for writing", denial: .handleLacksRight)
        case (.badFileDescriptor, .map), (.permissionDenied, .map):
            return error(.accessDenied, "the object's descriptor does not allow this mapping", denial: .handleLacksRight)
        case (.operationNotSupportedByDevice, .map):
            return error(.wrongType, "the object's filesystem does not support mmap")
        case (.fileTooLarge, .resize), (.invalidArgument, .resize):
            return error(.invalidArguments, "the size is larger than the object's filesystem allows")
        case (.fileTooLarge, _):
            return error(.outOfRange, "the range lies past the largest offset the object's filesystem allows")
        case (.textFileBusy, _):
            return error(.accessDenied, "the file is a running executable and cannot be changed")
        case (.noSuchFileOrDirectory, .open(let path)):
            return error(.notFound, "\(path) does not exist")
        case (.notPermitted, .open(let path)), (.permissionDenied, .open(let path)):
            return error(.accessDenied, "opening \(path) was refused")
        case (.isDirectory, _):
            return error(.wrongType, "a directory is not a memory object")
        case (.noSpace, _), (.diskQuotaExceeded, _):
            return error(.noMemory, "the object's filesystem is full")
        case (.badFileDescriptor, .socket), (.notSocket, .socket), (.invalidArgument, .socket),
             (.socketNotConnected, .socket), (.notSupportedOnSocket, .socket):
            return error(.invalidArguments, "the descriptor is not a connected Unix-domain socket that can carry descriptors")
        case (.brokenPipe, .socket), (.connectionReset, .socket):
            return error(.io, "the peer closed the socket")
        case (.wouldBlock, .socket):
            return error(.notFound, "no message is waiting on the non-blocking socket")
        case (.invalidArgument, .read), (.invalidArgument, .write):
            return error(.invalidArguments, "the kernel rejected the offset or the buffer")
        case (.badAddress, _):
            return error(.invalidArguments, "the local buffer could not be accessed by the kernel (EFAULT)")
        case (.ioError, _):
            return error(.io, "the object's backing store reported an I/O error")
        default:
            let mapped = resourceFailure(errno, systemCall: systemCall, pid: nil)
            return error(mapped.code, mapped.message)
        }
    }
}
