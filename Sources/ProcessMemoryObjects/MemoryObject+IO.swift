import Glibc
import SystemPackage
import ProcessMemoryCore

extension MemoryObject {
    /// The object's size in bytes.
    ///
    /// - Throws: `.badHandle` when closed.
    ///
    /// The corresponding C call is `fstat` (`st_size`).
    public func size() throws(ProcessMemoryError) -> UInt64 {
        try guardedDescriptor.use { (fd) throws(ProcessMemoryError) -> UInt64 in try Self.currentSize(fd) }
    }

    /// Reads exactly `buffer.count` bytes at `offset` into `buffer`, or nothing at all. Nothing is
    /// allocated.
    ///
    /// The range is checked before any byte moves: when `offset + buffer.count` exceeds the size (or
    /// overflows 64 bits) the read fails with `.outOfRange`. The size is taken with `fstat(2)` just
    /// before the `pread(2)`, so the check is race-free when the size cannot change: after
    /// ``sealSize()`` (`F_SEAL_GROW | F_SEAL_SHRINK`), or when no other process holds the object. If
    /// another process shrinks an unsealed object between the two calls, the read still fails with
    /// `.outOfRange` (never returns fewer bytes), with `bytesTransferred` saying how many were
    /// copied first. An empty buffer succeeds when `offset` is at most the size.
    ///
    /// - Parameters:
    ///   - buffer: Where the bytes go; its contents are unspecified when the read fails.
    ///   - offset: The object offset of the first byte.
    /// - Throws: ``ProcessMemoryError`` with `address` set to the offset: `.outOfRange`,
    ///   `.accessDenied` (no read right), `.badHandle` (closed), `.io` (the backing file's
    ///   filesystem reported an I/O error).
    ///
    /// The corresponding C calls are `fstat` and `pread`.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ProcessMemoryError) {
        guard rights.contains(.read) else { throw .objectLacksRight("read", offset: offset) }
        try guardedDescriptor.use { (fd) throws(ProcessMemoryError) in
            let size = try Self.currentSize(fd)
            try Self.checkRange(offset: offset, count: buffer.count, size: size, verb: "read")
            guard let base = buffer.baseAddress else { return }
            var done = 0
            while done < buffer.count {
                let want = min(buffer.count - done, AddressSpace.maxChunk)
                let at = offset + UInt64(done)
                switch fd.pread(base + done, want, at: at) {
                case .success(0):
                    // Only another process shrinking an unsealed object gets here.
                    let now = (try? Self.currentSize(fd)) ?? 0
                    throw ProcessMemoryError(.outOfRange, address: at, bytesTransferred: done, systemCall: SystemCall(.pread),
                                             message: "the object shrank to \(now) bytes during the read; seal its size to rule this out")
                case .success(let got):
                    done += got
                case .failure(let error):
                    throw ObjectErrnoMapping.objectFailure(error, operation: .read, systemCall: SystemCall(.pread), offset: at,
                                                     bytesTransferred: done)
                }
            }
        }
    }

    /// Reads exactly `count` bytes at `offset` into a new array, or throws.
    ///
    /// - Throws: as ``read(into:at:)``; `.invalidArguments` for a negative count.
    public func read(count: Int, at offset: UInt64) throws(ProcessMemoryError) -> [UInt8] {
        guard count >= 0 else { throw .invalid("the count must not be negative, not \(count)", address: offset) }
        var failure: ProcessMemoryError?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { storage, initialized in
            do throws(ProcessMemoryError) {
                try read(into: UnsafeMutableRawBufferPointer(storage), at: offset)
                initialized = count
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Reads a value of a trivial type (integers, floating point, structs of them) at `offset`, in
    /// native byte order; all or nothing.
    ///
    /// - Throws: as ``read(into:at:)``.
    public func read<T: BitwiseCopyable>(_ type: T.Type, at offset: UInt64) throws(ProcessMemoryError) -> T {
        let size = MemoryLayout<T>.size
        guard size > 0 else { throw .invalid("\(T.self) has no bytes to read", address: offset) }
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: MemoryLayout<T>.alignment)
        defer { storage.deallocate() }
        try read(into: storage, at: offset)
        return storage.loadUnaligned(as: T.self)
    }

    /// Writes all of `bytes` at `offset`, or nothing; a write never changes the object's size.
    ///
    /// `pwrite(2)` would grow a memfd, so the range is checked against the size first: when
    /// `offset + bytes.count` exceeds it (or overflows) the write fails with `.outOfRange` and
    /// nothing is written. As for reads, the check is race-free once the size is sealed
    /// (``sealSize()``); an unsealed object that another process shrinks between the check and the
    /// write would be grown back by it. With `F_SEAL_GROW` the kernel refuses that growth itself
    /// and the write fails with `.outOfRange`.
    ///
    /// - Throws: ``ProcessMemoryError`` with `address` set to the offset: `.outOfRange`,
    ///   `.accessDenied` (no write right, or sealed with `F_SEAL_WRITE` or `F_SEAL_FUTURE_WRITE`,
    ///   named in the message), `.badHandle`, `.noMemory` (the filesystem is full), `.io`.
    ///
    /// The corresponding C calls are `fstat` and `pwrite`.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(ProcessMemoryError) {
        guard rights.contains(.write) else { throw .objectLacksRight("write", offset: offset) }
        try guardedDescriptor.use { (fd) throws(ProcessMemoryError) in
            let size = try Self.currentSize(fd)
            try Self.checkRange(offset: offset, count: bytes.count, size: size, verb: "write")
            guard let base = bytes.baseAddress else { return }
            var done = 0
            while done < bytes.count {
                let want = min(bytes.count - done, AddressSpace.maxChunk)
                let at = offset + UInt64(done)
                switch fd.pwrite(base + done, want, at: at) {
                case .success(0):
                    throw ProcessMemoryError(.io, address: at, bytesTransferred: done, systemCall: SystemCall(.pwrite),
                                             message: "the object accepted no bytes at offset \(at)")
                case .success(let wrote):
                    done += wrote
                case .failure(let error):
                    let seals = error == .notPermitted ? Self.currentSeals(fd) : nil
                    throw ObjectErrnoMapping.objectFailure(error, operation: .write, systemCall: SystemCall(.pwrite), offset: at,
                                                     bytesTransferred: done, seals: seals)
                }
            }
        }
    }

    /// Writes all of `bytes` at `offset`, or nothing (see ``write(_:at:)-(UnsafeRawBufferPointer,_)``).
    public func write(_ bytes: [UInt8], at offset: UInt64) throws(ProcessMemoryError) {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(ProcessMemoryError) in try write(raw, at: offset) }
        }
        try result.get()
    }

    /// Writes a value of a trivial type at `offset` in native byte order; all or nothing.
    public func write<T: BitwiseCopyable>(_ value: T, at offset: UInt64) throws(ProcessMemoryError) {
        var copy = value
        let result = withUnsafeBytes(of: &copy) { raw in
            Result { () throws(ProcessMemoryError) in try write(raw, at: offset) }
        }
        try result.get()
    }

    /// Changes the object's size; new bytes read as zero.
    ///
    /// - Throws: `.accessDenied` (no write right, or the size is sealed: `F_SEAL_GROW` refuses a
    ///   larger size and `F_SEAL_SHRINK` a smaller one, named in the message), `.invalidArguments`
    ///   (larger than `Int64.max` or than the filesystem allows), `.badHandle`, `.noMemory`.
    ///
    /// The corresponding C call is `ftruncate`.
    public func resize(to newSize: UInt64) throws(ProcessMemoryError) {
        guard rights.contains(.write) else { throw .objectLacksRight("write") }
        guard let length = Int64(exactly: newSize) else {
            throw .invalid("an object's size is at most Int64.max bytes, not \(newSize)", address: newSize)
        }
        try guardedDescriptor.use { (fd) throws(ProcessMemoryError) in
            let size = try Self.currentSize(fd)
            if case .failure(let error) = fd.truncate(to: length) {
                let seals = error == .notPermitted ? Self.currentSeals(fd) : nil
                throw ObjectErrnoMapping.objectFailure(error, operation: .resize(grow: newSize > size), systemCall: SystemCall(.ftruncate),
                                                 offset: newSize, seals: seals)
            }
        }
    }

    // MARK: - Internals

    /// Fails with `.outOfRange` unless `offset..<offset+count` lies inside an object of `size` bytes.
    static func checkRange(offset: UInt64, count: Int, size: UInt64, verb: String) throws(ProcessMemoryError) {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(count))
        if overflow {
            throw ProcessMemoryError(.outOfRange, address: offset,
                                     message: "offset \(offset) + \(count) bytes overflows 64 bits; the object has \(size) bytes")
        }
        if end > size {
            throw ProcessMemoryError(.outOfRange, address: offset,
                                     message: "cannot \(verb) \(count) byte\(count == 1 ? "" : "s") at offset \(offset): the range ends at \(end), past the object's size of \(size) bytes")
        }
    }

    /// The seals, or `nil` when they cannot be read.
    static func currentSeals(_ fd: FileDescriptor) -> Seals? {
        if case .success(let raw) = fd.seals() { return Seals(rawValue: raw) }
        return nil
    }
}
