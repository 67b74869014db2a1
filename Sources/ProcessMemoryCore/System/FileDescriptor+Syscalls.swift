import CProcessMemory
import Glibc
import SystemPackage

/// The system-call layer as the tool modules see it: swift-system's `FileDescriptor`, extended with
/// the Linux calls they need (as NIOFS extends it).
///
/// Each method is one call through ``Sys`` and so through `valueOrErrno`, the one place errno is
/// read and `EINTR` retried. Tool modules (objects, scanning, dumps) never touch `Sys` or a handle's
/// descriptors: they get typed descriptors from these methods and from the handle's package seam.
extension FileDescriptor {
    /// close(2), ignoring the result (a close is never retried on Linux).
    package func closeQuietly() { Sys.close(rawValue) }

    /// pread(2) of up to `count` bytes at `offset`.
    package func pread(_ buffer: UnsafeMutableRawPointer, _ count: Int, at offset: UInt64) -> Result<Int, Errno> {
        Sys.pread(rawValue, buffer, count, at: offset)
    }

    /// pwrite(2) of up to `count` bytes at `offset`.
    package func pwrite(_ buffer: UnsafeRawPointer, _ count: Int, at offset: UInt64) -> Result<Int, Errno> {
        Sys.pwrite(rawValue, buffer, count, at: offset)
    }

    /// read(2) from the current position.
    package func readSome(_ buffer: UnsafeMutableRawPointer, _ count: Int) -> Result<Int, Errno> {
        Sys.read(rawValue, buffer, count)
    }

    /// Reads from the current position to end of file, at most `limit` bytes.
    package func readToEnd(limit: Int) -> Result<[UInt8], Errno> {
        Sys.readAll(rawValue, limit: limit)
    }

    /// fstat(2).
    package func status() -> Result<stat, Errno> { Sys.fstat(rawValue) }

    /// ftruncate(2).
    package func truncate(to length: Int64) -> Result<Void, Errno> {
        Sys.ftruncate(rawValue, length).map { _ in () }
    }

    /// fcntl(2) `F_GET_SEALS`.
    package func seals() -> Result<CInt, Errno> { Sys.getSeals(rawValue) }

    /// fcntl(2) `F_ADD_SEALS`.
    package func addSeals(_ seals: CInt) -> Result<Void, Errno> {
        Sys.addSeals(rawValue, seals).map { _ in () }
    }

    /// fcntl(2) `F_GETFL`: the access mode and status flags.
    package func statusFlags() -> Result<CInt, Errno> { Sys.statusFlags(rawValue) }

    /// fcntl(2) `F_DUPFD_CLOEXEC`.
    package func duplicateCloseOnExec() -> Result<FileDescriptor, Errno> {
        Sys.duplicate(rawValue).map(FileDescriptor.init(rawValue:))
    }

    /// fcntl(2) `F_DUPFD`, without `FD_CLOEXEC`, so the copy survives execve(2).
    package func duplicateInheritable() -> Result<FileDescriptor, Errno> {
        Sys.duplicateInheritable(rawValue).map(FileDescriptor.init(rawValue:))
    }

    /// mmap(2) of `length` bytes of this descriptor at `offset`.
    package func map(_ length: Int, protection: CInt, flags: CInt, offset: UInt64) -> Result<UnsafeMutableRawPointer, Errno> {
        Sys.mmap(length, protection: protection, flags: flags, rawValue, offset: offset)
    }

    /// openat(2) of `path` relative to this directory descriptor, with `O_CLOEXEC`.
    package func open(relative path: String, _ flags: CInt) -> Result<FileDescriptor, Errno> {
        Sys.openat(rawValue, path, flags).map(FileDescriptor.init(rawValue:))
    }

    /// openat(2) of an absolute path (or one relative to the working directory), with `O_CLOEXEC`.
    package static func open(path: String, _ flags: CInt) -> Result<FileDescriptor, Errno> {
        Sys.openat(AT_FDCWD, path, flags).map(FileDescriptor.init(rawValue:))
    }

    /// readlinkat(2) of `/proc/self/fd/N`: the path this descriptor was opened with.
    package func linkTarget() -> Result<String, Errno> {
        Sys.readLink(AT_FDCWD, "/proc/self/fd/\(rawValue)")
    }

    /// memfd_create(2).
    package static func memfdCreate(_ name: String, flags: UInt32) -> Result<FileDescriptor, Errno> {
        Sys.memfdCreate(name, flags: flags).map(FileDescriptor.init(rawValue:))
    }

    /// munmap(2) of a mapping made with ``map(_:protection:flags:offset:)``.
    package static func unmap(_ address: UnsafeMutableRawPointer, _ length: Int) {
        Sys.munmap(address, length)
    }

    /// sendmsg(2) on this Unix socket of `payload` with one `SCM_RIGHTS` message carrying `descriptor`.
    package func send(_ descriptor: FileDescriptor, payload: [UInt8]) -> Result<Int, Errno> {
        Sys.sendDescriptor(rawValue, descriptor.rawValue, payload: payload)
    }

    /// recvmsg(2) on this Unix socket: the payload's length and every descriptor received.
    package func receiveDescriptors() -> Result<ReceivedDescriptors, Errno> {
        Sys.receiveDescriptors(rawValue).map {
            ReceivedDescriptors(payloadLength: $0.payloadLength, descriptors: $0.descriptors.map(FileDescriptor.init(rawValue:)),
                                controlTruncated: $0.controlTruncated)
        }
    }

    /// What one recvmsg(2) delivered: the payload's length, the descriptors of every `SCM_RIGHTS`
    /// message (owned by this process, `FD_CLOEXEC` set), and whether control data was lost.
    package struct ReceivedDescriptors {
        package var payloadLength: Int
        package var descriptors: [FileDescriptor]
        package var controlTruncated: Bool
    }
}

// MARK: Directory descriptors (a handle's /proc/PID copy, a dump directory)

extension FileDescriptor {
    /// Reads the whole (small) file at `path` relative to this directory: `openat(2)`, `read(2)`.
    package func readFile(relative path: String, limit: Int = 64 << 20) -> Result<[UInt8], Errno> {
        Sys.readFile(rawValue, path, limit: limit)
    }

    /// The names in the directory at `path` relative to this one (without `.` and `..`).
    package func listDirectory(relative path: String) -> Result<[String], Errno> {
        Sys.listDirectory(rawValue, path)
    }

    /// readlinkat(2) of `path` relative to this directory.
    package func readLink(relative path: String) -> Result<String, Errno> {
        Sys.readLink(rawValue, path)
    }

    /// fstatat(2) of `path` relative to this directory, following a final link.
    package func status(relative path: String) -> Result<stat, Errno> {
        Sys.stat(rawValue, path)
    }
}

// MARK: pidfds

extension FileDescriptor {
    /// pidfd_send_signal(2) of `signal` to the process behind this pidfd.
    package func sendSignal(_ signal: CInt) -> Result<Void, Errno> {
        Sys.pidfdSendSignal(rawValue, signal).map { _ in () }
    }

    /// poll(2) with a zero timeout: the events ready now (a pidfd is readable once its process exited).
    package func pollNow() -> Result<Int16, Errno> { Sys.pollNow(rawValue) }
}


extension FileDescriptor {
    /// `AT_FDCWD`: paths relative to it are relative to the working directory.
    package static var currentDirectory: FileDescriptor { FileDescriptor(rawValue: AT_FDCWD) }
}

extension FileDescriptor {
    /// fstatat(2) with `AT_SYMLINK_NOFOLLOW` of `path` relative to this directory: the link itself.
    package func linkStatus(relative path: String) -> Result<stat, Errno> {
        Sys.lstat(rawValue, path)
    }
}
