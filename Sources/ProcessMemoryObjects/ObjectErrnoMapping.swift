import Glibc
import ProcessMemoryCore
import SystemPackage

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

/// The errno mapping of memory-object calls: the same table as the core's `ErrnoMapping`, with
/// the seals and the operation deciding what `EPERM`, `EBADF` and `EINVAL` mean.
enum ObjectErrnoMapping {
    /// Maps the failure of a call on a memory object's descriptor (see linux-semantics §10 and §13).
    ///
    /// * `EPERM` comes from a seal: `F_SEAL_WRITE`/`F_SEAL_FUTURE_WRITE` → `.accessDenied`;
    ///   `F_SEAL_GROW` on a write → `.outOfRange` (the write would grow the object); `F_SEAL_GROW`/
    ///   `F_SEAL_SHRINK` on a resize, or `F_SEAL_SEAL` on adding seals → `.accessDenied`. `seals`
    ///   are the object's seals, read after the failure.
    /// * `EBADF` on a descriptor the object guards means its access mode lacks the right:
    ///   `.accessDenied` (an `O_RDONLY` memfd refuses `pwrite` with `EBADF`).
    /// * `EIO` → `.io`; `ENOSPC`, `EDQUOT`, `ENOMEM`, `EMFILE` → `.noMemory`.
    static func objectFailure(_ errno: Errno, operation: ObjectOperation, systemCall: SystemCall, offset: UInt64? = nil,
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
            let mapped = ErrnoMapping.resourceFailure(errno, systemCall: systemCall, pid: nil)
            return error(mapped.code, mapped.message)
        }
    }
}
