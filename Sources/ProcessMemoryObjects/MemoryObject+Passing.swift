import Glibc
import SystemPackage
import ProcessMemoryCore

extension MemoryObject {
    /// A new object on the same memory with `rights`, which must be a subset of this object's rights
    /// (a duplicate never gains rights). Closing one does not close the other.
    ///
    /// With the same rights the duplicate shares this object's open file description
    /// (`fcntl(F_DUPFD_CLOEXEC)`). With fewer rights it is a new description opened through
    /// `/proc/self/fd/N` with that access mode, so an `O_RDONLY` duplicate refuses writes,
    /// resizing, sealing and writable mappings whoever holds it.
    /// - Throws: `.accessDenied` when asking for a right this object lacks, `.invalidArguments` for
    ///   no rights, `.badHandle` when closed.
    ///
    /// The corresponding C calls are `fcntl(F_DUPFD_CLOEXEC)`, or `open("/proc/self/fd/N")`.
    public func duplicate(rights: AccessRights? = nil) throws(ProcessMemoryError) -> MemoryObject {
        let rights = rights ?? self.rights
        guard rights.isSubset(of: self.rights) else {
            throw ProcessMemoryError(.accessDenied, accessDenial: .handleLacksRight,
                                     message: "a duplicate cannot gain rights: this object has \(self.rights), not \(rights)")
        }
        guard !rights.isEmpty else { throw .invalid("a memory object needs at least one right") }
        let copy: FileDescriptor = try guardedDescriptor.use { (fd) throws(ProcessMemoryError) -> FileDescriptor in
            if rights == self.rights {
                switch fd.duplicateCloseOnExec() {
                case .success(let copy): return copy
                case .failure(let error):
                    throw ObjectErrnoMapping.objectFailure(error, operation: .create, systemCall: SystemCall(.fcntl, "F_DUPFD_CLOEXEC"))
                }
            }
            switch FileDescriptor.open(path: "/proc/self/fd/\(fd.rawValue)", Self.openFlags(rights)) {
            case .success(let copy): return copy
            case .failure(let error):
                throw ObjectErrnoMapping.objectFailure(error, operation: .open("/proc/self/fd/\(fd.rawValue)"), systemCall: SystemCall(.open, "/proc/self/fd/\(fd.rawValue)"))
            }
        }
        let object = try MemoryObject(owning: copy)
        guard object.rights == rights, object.inode == inode else {
            object.close()
            throw ProcessMemoryError(.io, message: "reopening the object gave \(object.rights) on inode \(object.inode), not \(rights) on inode \(inode)")
        }
        return object
    }

    /// A duplicate descriptor without `FD_CLOEXEC`, for a child process to inherit across
    /// `execve(2)` (`posix_spawn`, `Process`, `fork` + `exec`), with this object's rights.
    ///
    /// The caller owns the descriptor: close it once the child has been started. The child finds
    /// the object at the same descriptor number and can adopt it with ``init(adopting:)``; other
    /// processes can open it as `/proc/CHILD/fd/N` (with ptrace access to the child). To pass an
    /// object with fewer rights, ``duplicate(rights:)`` first.
    /// - Throws: `.badHandle` when closed, `.noMemory` when out of descriptors.
    ///
    /// The corresponding C call is `fcntl(F_DUPFD)`.
    public func makeInheritableDescriptor() throws(ProcessMemoryError) -> FileDescriptor {
        try guardedDescriptor.use { (fd) throws(ProcessMemoryError) -> FileDescriptor in
            switch fd.duplicateInheritable() {
            case .success(let copy): return copy
            case .failure(let error):
                throw ObjectErrnoMapping.objectFailure(error, operation: .create, systemCall: SystemCall(.fcntl, "F_DUPFD"))
            }
        }
    }

    /// Sends the object over a Unix-domain socket (`SCM_RIGHTS`) to the process at the other end,
    /// which receives it with ``receive(from:)``, with this object's rights.
    ///
    /// One message is sent: a single payload byte and the descriptor. The object stays open here.
    /// - Throws: `.invalidArguments` (not a Unix socket, not connected), `.io` (the peer is gone),
    ///   `.badHandle` when closed.
    ///
    /// The corresponding C call is `sendmsg` with an `SCM_RIGHTS` control message.
    public func send(over socket: FileDescriptor) throws(ProcessMemoryError) {
        try guardedDescriptor.use { (fd) throws(ProcessMemoryError) in
            switch socket.send(fd, payload: [UInt8(ascii: "M")]) {
            case .success: return
            case .failure(let error):
                throw ObjectErrnoMapping.objectFailure(error, operation: .socket, systemCall: SystemCall(.sendmsg))
            }
        }
    }

    /// Receives an object sent with ``send(over:)`` (or any descriptor of a regular file or
    /// shared-memory object sent with `SCM_RIGHTS`). Blocks until a message arrives unless the
    /// socket is non-blocking.
    ///
    /// The object has the rights of the descriptor that was sent: its access mode travels with it.
    /// - Throws: `.wrongType` (the message carried no descriptor, or not one of a memory object),
    ///   `.io` (the peer closed the socket, or the control data was truncated),
    ///   `.notFound` (a non-blocking socket with nothing waiting), `.invalidArguments` (not a socket).
    ///
    /// The corresponding C call is `recvmsg` with `MSG_CMSG_CLOEXEC`.
    public static func receive(from socket: FileDescriptor) throws(ProcessMemoryError) -> MemoryObject {
        let received: FileDescriptor.ReceivedDescriptors
        switch socket.receiveDescriptors() {
        case .success(let value): received = value
        case .failure(let error):
            throw ObjectErrnoMapping.objectFailure(error, operation: .socket, systemCall: SystemCall(.recvmsg))
        }
        received.descriptors.dropFirst().forEach { $0.closeQuietly() }
        if received.controlTruncated {
            received.descriptors.first.map { $0.closeQuietly() }
            throw ProcessMemoryError(.io, systemCall: SystemCall(.recvmsg),
                                     message: "the message's control data was truncated (MSG_CTRUNC); a descriptor may have been lost")
        }
        guard let descriptor = received.descriptors.first else {
            if received.payloadLength == 0 {
                throw ProcessMemoryError(.io, systemCall: SystemCall(.recvmsg), message: "the peer closed the socket before sending an object")
            }
            throw ProcessMemoryError(.wrongType, systemCall: SystemCall(.recvmsg), message: "the message carried no descriptor")
        }
        return try MemoryObject(owning: descriptor)
    }
}
