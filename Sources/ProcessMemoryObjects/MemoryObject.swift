import CProcessMemory
import Glibc
import SystemPackage
import ProcessMemoryCore

/// A memory object: a sized, sealable piece of memory behind a descriptor (a memfd, a shared-memory
/// file, or the file behind another process's mapping), read and written exactly at offsets.
///
/// A memory object is Linux's counterpart of a Zircon VMO. Its reads and writes follow
/// `zx_vmo_read` and `zx_vmo_write`: they move exactly the requested bytes or fail, and a range that
/// does not lie inside the object fails with ``ProcessMemoryError/Code/outOfRange`` before anything
/// moves. (A plain `pread(2)` returns a short count at the end of a memfd, and a plain `pwrite(2)`
/// silently grows it.) Failures are ``ProcessMemoryError``s, with the object offset in `address`.
///
/// ```swift
/// let object = try MemoryObject(size: 8192, name: "frames")   // memfd_create + ftruncate
/// try object.sealSize()                                       // F_SEAL_GROW | F_SEAL_SHRINK
/// try object.write([1, 2, 3], at: 4096)
/// let bytes = try object.read(count: 3, at: 4096)             // [1, 2, 3]
/// let mapping = try object.map()                              // mmap(MAP_SHARED)
/// ```
///
/// An object carries ``rights``: ``AccessRights/read`` and ``AccessRights/write``, fixed by the
/// access mode of its descriptor (`O_RDONLY` or `O_RDWR`). A duplicate can drop the write right but
/// never gain it. An object is safe to share between threads; ``close()`` releases the descriptor
/// once no operation is using it, and later operations fail with ``ProcessMemoryError/Code/badHandle``.
public final class MemoryObject: Sendable {
    /// What kind of object the descriptor refers to.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// An anonymous file from `memfd_create(2)`.
        case memfd
        /// Other shared memory: shared anonymous memory (`/dev/zero`), System V segments, `/dev/shm`.
        case sharedMemory
        /// A regular file.
        case file
    }

    /// The kind of object.
    public let kind: Kind
    /// The memfd's name (without `memfd:`), or the path of the file.
    public let name: String
    /// The rights this object carries, from its descriptor's access mode.
    public let rights: AccessRights
    /// The inode number of the object.
    public let inode: UInt64
    /// The major number of the object's device (0 for memfds and other shared memory).
    public let deviceMajor: UInt32
    /// The minor number of the object's device.
    public let deviceMinor: UInt32

    /// The object's descriptor behind its own guard: `close()` waits for operations in flight.
    let guardedDescriptor: ObjectDescriptorBox

    /// Takes ownership of `descriptor` (closing it if the object cannot be made), after checking that
    /// it refers to a regular file or shared-memory object. The rights come from its access mode.
    init(owning descriptor: FileDescriptor) throws(ProcessMemoryError) {
        let description: Description
        do {
            description = try Self.describe(descriptor)
        } catch {
            descriptor.closeQuietly()
            throw error
        }
        kind = description.kind
        name = description.name
        rights = description.rights
        inode = description.inode
        deviceMajor = description.deviceMajor
        deviceMinor = description.deviceMinor
        guardedDescriptor = ObjectDescriptorBox(descriptor)
    }

    /// Creates a memfd of `size` bytes (all zero) with `name`, which sealing is allowed on.
    ///
    /// - Parameters:
    ///   - size: The size in bytes; at most `Int64.max`. Zero is allowed (``resize(to:)`` later).
    ///   - name: A name for `/proc/PID/fd` and `/proc/PID/maps` (`/memfd:NAME`); at most 249 bytes,
    ///     without NUL. It need not be unique.
    /// - Throws: `.invalidArguments` (a bad name or size), `.noMemory` (out of descriptors or memory).
    ///
    /// The new object has both rights and no seals. The corresponding C calls are
    /// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)` and `ftruncate`.
    public convenience init(size: UInt64, name: String) throws(ProcessMemoryError) {
        guard !name.utf8.contains(0) else { throw .invalid("a memfd name cannot contain NUL") }
        guard name.utf8.count <= 249 else {
            throw .invalid("a memfd name is at most 249 bytes, not \(name.utf8.count)")
        }
        guard let length = Int64(exactly: size) else {
            throw .invalid("an object's size is at most Int64.max bytes, not \(size)")
        }
        let descriptor: FileDescriptor
        switch FileDescriptor.memfdCreate(name, flags: CProcessMemory_MFD_CLOEXEC | CProcessMemory_MFD_ALLOW_SEALING) {
        case .success(let fd): descriptor = fd
        case .failure(let error):
            throw ObjectErrnoMapping.objectFailure(error, operation: .create, systemCall: SystemCall(.memfdCreate))
        }
        if case .failure(let error) = descriptor.truncate(to: length) {
            descriptor.closeQuietly()
            throw ObjectErrnoMapping.objectFailure(error, operation: .resize(grow: true), systemCall: SystemCall(.ftruncate), offset: size)
        }
        try self.init(owning: descriptor)
    }

    /// Opens the object at `path`: a file, a shared-memory file, or another process's memfd through
    /// `/proc/PID/fd/N` (which needs the same access as reading that process's memory).
    ///
    /// - Parameters:
    ///   - path: The path; `/proc/PID/fd/N` and `/proc/PID/map_files/START-END` reopen the object
    ///     behind that descriptor or mapping.
    ///   - rights: `.read` (opened `O_RDONLY`) or `.readWrite` (`O_RDWR`).
    /// - Throws: `.notFound` (no such file), `.accessDenied`, `.wrongType` (not a regular file or
    ///   shared-memory object, such as a directory or a device), `.invalidArguments` (no rights).
    ///
    /// Reopening through `/proc` gives a new open file description whose access mode is the one
    /// asked for, checked against the inode's permissions. The corresponding C call is `open`.
    public convenience init(opening path: String, rights: AccessRights = .read) throws(ProcessMemoryError) {
        guard !rights.isEmpty else { throw .invalid("a memory object needs at least one right") }
        // O_NONBLOCK so that a FIFO cannot block the open; it is then refused as not a regular file.
        switch FileDescriptor.open(path: path, Self.openFlags(rights) | O_NOCTTY | O_NONBLOCK) {
        case .success(let descriptor): try self.init(owning: descriptor)
        case .failure(let error):
            throw ObjectErrnoMapping.objectFailure(error, operation: .open(path), systemCall: SystemCall(.open, path))
        }
    }

    /// Takes ownership of `descriptor`, such as one inherited from a parent process; it is closed
    /// when the object is closed or released, and also when this initializer throws.
    ///
    /// The rights are the descriptor's access mode (`F_GETFL`): an `O_RDONLY` descriptor gives a
    /// read-only object.
    /// - Throws: `.wrongType` (not a regular file or shared-memory object), `.badHandle` (not an
    ///   open descriptor).
    public convenience init(adopting descriptor: FileDescriptor) throws(ProcessMemoryError) {
        try self.init(owning: descriptor)
    }

    /// Releases the descriptor (once no operation in another thread is using it). Idempotent.
    ///
    /// Mappings made with ``map(offset:count:rights:)`` stay valid: they hold their own reference
    /// to the object.
    public func close() { guardedDescriptor.close() }

    /// Whether ``close()`` has been called.
    public var isClosed: Bool { guardedDescriptor.isClosed }

    /// The facts about the object that can change: its size, its seals, and the descriptor.
    public struct Info: Sendable, Hashable {
        /// The kind of object.
        public var kind: Kind
        /// The memfd's name, or the file's path.
        public var name: String
        /// What `/proc/self/fd/N` points to: `/memfd:NAME (deleted)`, or the file's path.
        public var path: String
        /// The size in bytes.
        public var size: UInt64
        /// The seals, or `nil` when the object's filesystem has none (only memfds and
        /// shared-memory/tmpfs files can be sealed).
        public var seals: Seals?
        /// The object's rights.
        public var rights: AccessRights
        /// The inode number.
        public var inode: UInt64
        /// The device's major number.
        public var deviceMajor: UInt32
        /// The device's minor number.
        public var deviceMinor: UInt32
        /// The descriptor number in this process, for naming the object as `/proc/PID/fd/N`; it is
        /// valid only until the object is closed.
        public var descriptor: Int32

        /// The path another process opens the object by while this one holds it:
        /// `/proc/<this process>/fd/<descriptor>`.
        public var openablePath: String { "/proc/\(getpid())/fd/\(descriptor)" }
    }

    /// The object's current size, seals and descriptor.
    ///
    /// - Throws: `.badHandle` when closed.
    ///
    /// The corresponding C calls are `fstat`, `fcntl(F_GET_SEALS)` and `readlink("/proc/self/fd/N")`.
    public func info() throws(ProcessMemoryError) -> Info {
        let kind = self.kind, name = self.name, rights = self.rights
        let inode = self.inode, major = self.deviceMajor, minor = self.deviceMinor
        return try guardedDescriptor.use { (fd) throws(ProcessMemoryError) -> Info in
            let size = try Self.currentSize(fd)
            let seals: Seals?
            switch fd.seals() {
            case .success(let raw): seals = Seals(rawValue: raw)
            case .failure: seals = nil
            }
            let path = (try? fd.linkTarget().get()) ?? name
            return Info(kind: kind, name: name, path: path, size: size, seals: seals, rights: rights,
                        inode: inode, deviceMajor: major, deviceMinor: minor, descriptor: fd.rawValue)
        }
    }

    // MARK: - Internals

    struct Description {
        var kind: Kind
        var name: String
        var rights: AccessRights
        var inode: UInt64
        var deviceMajor: UInt32
        var deviceMinor: UInt32
    }

    /// Checks that `fd` is an open, readable or writable descriptor of a regular file, and says what it is.
    static func describe(_ fd: FileDescriptor) throws(ProcessMemoryError) -> Description {
        let flags: CInt
        switch fd.statusFlags() {
        case .success(let value): flags = value
        case .failure(let error):
            throw ProcessMemoryError(.badHandle, systemCall: SystemCall(.fcntl, "F_GETFL"), errno: error,
                                     message: "descriptor \(fd.rawValue) is not an open descriptor")
        }
        if flags & CProcessMemory_O_PATH != 0 {
            throw ProcessMemoryError(.wrongType, message: "descriptor \(fd.rawValue) was opened with O_PATH and cannot be read or written")
        }
        let rights: AccessRights
        switch flags & O_ACCMODE {
        case O_RDONLY: rights = .read
        case O_WRONLY: rights = .write
        default: rights = .readWrite
        }
        let info: stat
        switch fd.status() {
        case .success(let value): info = value
        case .failure(let error):
            throw ObjectErrnoMapping.objectFailure(error, operation: .open("descriptor \(fd.rawValue)"), systemCall: SystemCall(.fstat))
        }
        let link = (try? fd.linkTarget().get()) ?? "descriptor \(fd.rawValue)"
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw ProcessMemoryError(.wrongType, systemCall: SystemCall(.fstat),
                                     message: "\(link) is not a regular file or shared-memory object, so it is not a memory object")
        }
        let (path, _) = MapsParser.decodePath(ArraySlice(link.utf8))
        let name: String
        let kind: Kind
        switch MemoryRegion.kind(path: path, inode: UInt64(info.st_ino), isShared: true) {
        case .memfd:
            kind = .memfd
            name = String((path ?? link).dropFirst("/memfd:".count))
        case .sharedMemory:
            kind = .sharedMemory
            name = path ?? link
        default:
            kind = .file
            name = path ?? link
        }
        let device = DeviceNumber(UInt64(info.st_dev))
        return Description(kind: kind, name: name, rights: rights, inode: UInt64(info.st_ino),
                           deviceMajor: device.major, deviceMinor: device.minor)
    }

    /// The size from fstat(2).
    static func currentSize(_ fd: FileDescriptor) throws(ProcessMemoryError) -> UInt64 {
        switch fd.status() {
        case .success(let info): return UInt64(max(0, Int64(info.st_size)))
        case .failure(let error):
            throw ObjectErrnoMapping.objectFailure(error, operation: .read, systemCall: SystemCall(.fstat))
        }
    }

    /// `O_RDONLY`, `O_WRONLY` or `O_RDWR` for `rights`.
    static func openFlags(_ rights: AccessRights) -> CInt {
        switch (rights.contains(.read), rights.contains(.write)) {
        case (true, true): return O_RDWR
        case (false, true): return O_WRONLY
        default: return O_RDONLY
        }
    }
}

/// The kernel's encoding of a `dev_t` (the `major`/`minor` macros of `<sys/sysmacros.h>`).
struct DeviceNumber: Hashable {
    var major: UInt32
    var minor: UInt32

    init(_ dev: UInt64) {
        major = UInt32(truncatingIfNeeded: ((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfff))
        minor = UInt32(truncatingIfNeeded: (dev & 0xff) | ((dev >> 12) & ~0xff))
    }
}
