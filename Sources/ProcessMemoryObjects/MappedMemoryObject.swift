import Glibc
import Synchronization
import SystemPackage
import ProcessMemoryCore

/// A memory object mapped into this process with `mmap(MAP_SHARED)`: stores through it change the
/// object for every holder, and changes by other holders show up in it.
///
/// The mapping is removed when the value is released (or by ``unmap()``), not when the
/// ``MemoryObject`` is closed: it holds its own reference to the object. Touching a page past the
/// object's end raises `SIGBUS`; the mapping was checked against the size when it was made, so that
/// can only happen when another holder shrinks the object afterwards, which ``MemoryObject/sealSize()``
/// rules out.
public final class MappedMemoryObject: Sendable {
    /// The object offset of the first mapped byte.
    public let offset: UInt64
    /// The number of mapped bytes.
    public let count: Int
    /// The rights of the mapping: `.read`, or `.readWrite` for a writable mapping.
    public let rights: AccessRights
    private let address: Mutex<UInt?>

    init(address: UnsafeMutableRawPointer, count: Int, offset: UInt64, rights: AccessRights) {
        self.address = Mutex(UInt(bitPattern: address))
        self.count = count
        self.offset = offset
        self.rights = rights
    }

    deinit { unmap() }

    /// The mapped bytes; empty after ``unmap()``.
    public var bytes: UnsafeRawBufferPointer {
        address.withLock { address in
            guard let address else { return UnsafeRawBufferPointer(start: nil, count: 0) }
            return UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: address), count: count)
        }
    }

    /// The mapped bytes for writing, or `nil` when the mapping is read-only or unmapped.
    public var mutableBytes: UnsafeMutableRawBufferPointer? {
        guard rights.contains(.write) else { return nil }
        return address.withLock { address in
            guard let address else { return nil }
            return UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: address), count: count)
        }
    }

    /// Whether the mapping is still in place.
    public var isMapped: Bool { address.withLock { $0 != nil } }

    /// Removes the mapping now. Idempotent. Buffers obtained earlier must no longer be used.
    ///
    /// The corresponding C call is `munmap`.
    public func unmap() {
        let removed: UInt? = address.withLock { address in
            defer { address = nil }
            return address
        }
        if let removed, let pointer = UnsafeMutableRawPointer(bitPattern: removed) {
            FileDescriptor.unmap(pointer, count)
        }
    }
}

extension MemoryObject {
    /// Maps `count` bytes of the object from `offset` into this process (`MAP_SHARED`).
    ///
    /// - Parameters:
    ///   - offset: The object offset of the first byte; a multiple of the page size.
    ///   - count: How many bytes; by default the rest of the object. The last page may extend past
    ///     the end of the object; its bytes beyond the end read as zero and are never stored.
    ///   - rights: `.read` for a read-only mapping or `.readWrite` for a writable one; by default
    ///     the object's rights. A mapping cannot have a right the object lacks.
    /// - Throws: `.invalidArguments` (an unaligned offset, an empty range, no read right asked),
    ///   `.outOfRange` (the range goes past the object's size), `.accessDenied` (a right the object
    ///   lacks, or a writable mapping of an object sealed with `F_SEAL_WRITE` or
    ///   `F_SEAL_FUTURE_WRITE`, named in the message), `.noMemory`, `.badHandle`.
    ///
    /// The corresponding C call is `mmap(MAP_SHARED)`.
    public func map(offset: UInt64 = 0, count: Int? = nil, rights: AccessRights? = nil) throws(ProcessMemoryError) -> MappedMemoryObject {
        let rights = rights ?? self.rights
        guard rights.isSubset(of: self.rights) else {
            throw ProcessMemoryError(.accessDenied, address: offset, accessDenial: .handleLacksRight,
                                     message: "a mapping cannot gain rights: the object has \(self.rights), not \(rights)")
        }
        guard rights.contains(.read) else {
            throw .invalid("a mapping needs the read right (mmap needs a readable descriptor)", address: offset)
        }
        guard offset % AddressSpace.pageSize == 0 else {
            throw .invalid("the offset \(offset) of a mapping must be a multiple of the page size (\(AddressSpace.pageSize))", address: offset)
        }
        return try guardedDescriptor.use { (fd) throws(ProcessMemoryError) -> MappedMemoryObject in
            let size = try Self.currentSize(fd)
            let length: Int
            if let count {
                length = count
            } else {
                guard offset < size else {
                    throw ProcessMemoryError(.outOfRange, address: offset,
                                             message: "nothing to map at offset \(offset): the object has \(size) bytes")
                }
                guard let rest = Int(exactly: size - offset) else {
                    throw .invalid("the rest of the object (\(size - offset) bytes) is too large to map", address: offset)
                }
                length = rest
            }
            guard length > 0 else { throw .invalid("a mapping needs at least one byte", address: offset) }
            try Self.checkRange(offset: offset, count: length, size: size, verb: "map")
            let protection = rights.contains(.write) ? PROT_READ | PROT_WRITE : PROT_READ
            switch fd.map(length, protection: protection, flags: MAP_SHARED, offset: offset) {
            case .success(let address):
                return MappedMemoryObject(address: address, count: length, offset: offset, rights: rights)
            case .failure(let error):
                let seals = error == .notPermitted || error == .permissionDenied ? Self.currentSeals(fd) : nil
                throw ObjectErrnoMapping.objectFailure(error, operation: .map(writable: rights.contains(.write)),
                                                 systemCall: SystemCall(.mmap), offset: offset, seals: seals)
            }
        }
    }
}
