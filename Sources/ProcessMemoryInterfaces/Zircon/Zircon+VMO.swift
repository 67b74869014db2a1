import Glibc
import ProcessMemory
import SystemPackage

// zx_vmo_read (shared/seeds 004), zx_vmo_write, zx_vmo_create, zx_vmo_get_size and zx_vmo_set_size,
// over the core library's `MemoryObject` (a memfd, a shared-memory file, or the file behind another
// process's mapping). linux-semantics.md §10 and the last rows of §13 give the Linux behaviour.

extension Zircon.Rights {
    /// `ZX_RIGHT_RESIZE` (1 << 22): `zx_vmo_set_size` may change the size of a resizable VMO.
    public static let resize = Zircon.Rights(rawValue: 1 << 22)

    /// The rights of a new VMO handle (`ZX_DEFAULT_VMO_RIGHTS`): basic, read and write, property,
    /// map and signal. `zx_vmo_create` adds ``resize`` for a resizable VMO.
    public static let defaultVMO: Zircon.Rights = [.basic, .io, .property, .map, .signal]
}

extension Zircon {
    /// The `options` of `zx_vmo_create`, with the bit values of `zircon/types.h`.
    public struct VMOOptions: OptionSet, Hashable, Sendable {
        /// The option bits.
        public let rawValue: UInt32
        /// Wraps option bits.
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// `ZX_VMO_RESIZABLE` (1 << 1): `zx_vmo_set_size` may change the size; the handle gets
        /// ``Rights/resize``.
        public static let resizable = VMOOptions(rawValue: 1 << 1)
        /// `ZX_VMO_DISCARDABLE` (1 << 2): the kernel may discard unlocked pages. Linux has no such
        /// memfd; `zx_vmo_create` returns `ZX_ERR_NOT_SUPPORTED`.
        public static let discardable = VMOOptions(rawValue: 1 << 2)
        /// `ZX_VMO_UNBOUNDED` (1 << 4): the VMO has the largest size there is (``maxVMOSize``),
        /// and `size` is ignored. Not together with ``resizable``.
        public static let unbounded = VMOOptions(rawValue: 1 << 4)

        static let known: VMOOptions = [.resizable, .discardable, .unbounded]
    }

    /// The largest VMO size: the largest file size Linux allows (`Int64.max`), rounded down to a
    /// multiple of the page size. A memfd that large is sparse: only written pages use memory.
    public static var maxVMOSize: UInt64 { UInt64(Int64.max) & ~(pageSize - 1) }

    static var pageSize: UInt64 { UInt64(sysconf(Int32(_SC_PAGESIZE))) }

    /// A VMO (`ZX_OBJ_TYPE_VMO`): a core `MemoryObject`.
    ///
    /// Its size is the object's size in bytes (`fstat`), which for an object made by
    /// ``vmoCreate(size:options:_:)`` is a multiple of the page size, as in Zircon. The object
    /// behind another process's mapping has the exact size of its file, and `zx_vmo_read` past it
    /// fails: Linux cannot read the zeros that follow the end of a file in its last page.
    public final class VMO: ZirconObject {
        /// The object the Zircon calls read and write.
        public let memoryObject: MemoryObject
        /// Wraps an object.
        public init(_ memoryObject: MemoryObject) { self.memoryObject = memoryObject }
        /// `ZX_OBJ_TYPE_VMO`.
        public var objectType: ObjectType { .vmo }

        /// Whether `zx_vmo_set_size` can change the size: the object has no size seal
        /// (`F_SEAL_GROW` or `F_SEAL_SHRINK`).
        ///
        /// Seals are Linux's form of a non-resizable VMO, and bind every holder of the object: a
        /// VMO made by ``vmoCreate(size:options:_:)`` without ``VMOOptions/resizable`` is sealed
        /// with both. A file whose filesystem has no seals is resizable. Checked at every call,
        /// since another holder can add seals at any time.
        public var isResizable: Bool {
            guard let seals = try? memoryObject.seals() else { return !memoryObject.isClosed }
            return seals.isDisjoint(with: .fixedSize)
        }
    }
}

extension Zircon.Handle {
    /// A handle to a VMO for `object` (a `MemoryObject` of the core library), granting `rights`.
    ///
    /// By default the rights are `ZX_DEFAULT_VMO_RIGHTS` without the rights the object itself lacks
    /// (``Zircon/Rights/write`` for a read-only object), plus ``Zircon/Rights/resize`` when the
    /// object is resizable (see ``Zircon/VMO/isResizable``). The object's own rights still apply
    /// underneath: a write through a handle that has ``Zircon/Rights/write`` to a read-only object
    /// returns `ZX_ERR_ACCESS_DENIED`.
    public convenience init(vmo object: MemoryObject, rights: Zircon.Rights? = nil) {
        let vmo = Zircon.VMO(object)
        self.init(vmo, rights: rights ?? Self.defaultRights(for: vmo))
    }

    static func defaultRights(for vmo: Zircon.VMO) -> Zircon.Rights {
        var rights = Zircon.Rights.defaultVMO
        if !vmo.memoryObject.rights.contains(.read) { rights.remove(.read) }
        if !vmo.memoryObject.rights.contains(.write) { rights.remove(.write) }
        if vmo.isResizable { rights.insert(.resize) }
        return rights
    }

    /// A handle to the VMO behind the mapping that contains `vaddr` in the process behind
    /// `process`, and the VMO offset that corresponds to `vaddr`.
    ///
    /// The object is found as `ProcessHandle.memoryObject(containing:rights:)` finds it (through
    /// `/proc/PID/map_files`, a descriptor the process holds, or the mapping's path) and is read
    /// through its own descriptor, so the mapping's protection does not matter and nothing is
    /// faulted into the process. The VMO outlives the process.
    ///
    /// - Parameters:
    ///   - vaddr: An address inside a file, memfd or shared-memory mapping.
    ///   - process: A process handle with ``Zircon/Rights/read``; also ``Zircon/Rights/write``
    ///     when `rights` contain it.
    ///   - rights: The VMO handle's rights. By default `ZX_DEFAULT_VMO_RIGHTS`, without
    ///     ``Zircon/Rights/write`` unless the process handle (and the core handle underneath) can
    ///     write, plus ``Zircon/Rights/resize`` when the object has no size seal.
    /// - Throws: `ZX_ERR_BAD_HANDLE`; `ZX_ERR_WRONG_TYPE` (not a process, or a mapping without an
    ///   object: anonymous private memory, the heap, a stack, `[vdso]`); `ZX_ERR_ACCESS_DENIED` (a
    ///   right the process handle lacks; the kernel refused; secret memory, which no other process
    ///   can reach); `ZX_ERR_NOT_FOUND` (nothing mapped at `vaddr`, or the object could not be
    ///   reached); `ZX_ERR_BAD_STATE` (the process is exiting, gone or exec'd).
    public static func vmo(mappedAt vaddr: UInt64, in process: Zircon.Handle, rights: Zircon.Rights? = nil)
        throws(Zircon.Status) -> (vmo: Zircon.Handle, offset: UInt64)
    {
        let target: Zircon.Process
        switch process.object(Zircon.Process.self, requiring: .read) {
        case .success(let object): target = object
        case .failure(let status): throw status
        }
        let core = target.processHandle
        let canWrite = process.rights.contains(.write) && core.rights.contains(.write)
        if let rights, rights.contains(.write), !process.rights.contains(.write) { throw .accessDenied }
        let writable = rights?.contains(.write) ?? canWrite
        let backing: BackingObject
        do {
            backing = try core.memoryObject(containing: vaddr, rights: writable ? .readWrite : .read)
        } catch {
            switch error.code {
            case .protectionFailure: throw .accessDenied
            case .invalidArguments: throw .notFound
            default: throw Zircon.status(opening: error)
            }
        }
        return (Zircon.Handle(vmo: backing.object, rights: rights), backing.offset)
    }
}

// MARK: - zx_vmo_create, zx_vmo_get_size, zx_vmo_set_size

extension Zircon {
    /// `zx_vmo_create`: a new VMO of `size` bytes, all zero, backed by a memfd.
    ///
    /// ```c
    /// zx_status_t zx_vmo_create(uint64_t size, uint32_t options, zx_handle_t* out);
    /// ```
    ///
    /// The size is rounded up to a multiple of the page size, as Zircon does. A VMO created without
    /// ``VMOOptions/resizable`` is sealed with `F_SEAL_GROW | F_SEAL_SHRINK`, which makes it
    /// non-resizable for every holder and makes every range check of `zx_vmo_read` and
    /// `zx_vmo_write` race-free. `out` is set only on success, to a handle with
    /// ``Rights/defaultVMO`` (and ``Rights/resize`` for a resizable VMO).
    ///
    /// Returns `ZX_ERR_INVALID_ARGS` for an unknown option or ``VMOOptions/resizable`` with
    /// ``VMOOptions/unbounded``; `ZX_ERR_NOT_SUPPORTED` for ``VMOOptions/discardable``;
    /// `ZX_ERR_OUT_OF_RANGE` when the rounded size exceeds ``maxVMOSize``; `ZX_ERR_NO_MEMORY`
    /// when the kernel has no memory or descriptors left.
    ///
    /// The corresponding Linux calls are `memfd_create(MFD_ALLOW_SEALING)`, `ftruncate` and
    /// `fcntl(F_ADD_SEALS)`.
    public static func vmoCreate(size: UInt64, options: VMOOptions = [], _ out: inout Handle?) -> Status {
        guard options.isSubset(of: VMOOptions.known) else { return .invalidArgs }
        if options.contains(.resizable) && options.contains(.unbounded) { return .invalidArgs }
        if options.contains(.discardable) { return .notSupported }
        let rounded: UInt64
        if options.contains(.unbounded) {
            rounded = maxVMOSize
        } else {
            guard let value = roundUpToPage(size), value <= maxVMOSize else { return .outOfRange }
            rounded = value
        }
        let object: MemoryObject
        do {
            object = try MemoryObject(size: rounded, name: "zx_vmo")
            if !options.contains(.resizable) { try object.sealSize() }
        } catch {
            return error.code == .invalidArguments ? .outOfRange : status(vmo: error, buffer: nil)
        }
        let rights: Rights = options.contains(.resizable) ? Rights.defaultVMO.union(.resize) : .defaultVMO
        out = Handle(vmo: object, rights: rights)
        return .ok
    }

    /// `zx_vmo_get_size`: the VMO's size in bytes.
    ///
    /// ```c
    /// zx_status_t zx_vmo_get_size(zx_handle_t handle, uint64_t* size);
    /// ```
    ///
    /// No right is needed. Returns `ZX_ERR_BAD_HANDLE` for a closed or invalid handle (or a
    /// `MemoryObject` closed underneath) and `ZX_ERR_WRONG_TYPE` for a handle to another kind of
    /// object. `size` is set only on success. The corresponding Linux call is `fstat`.
    public static func vmoGetSize(_ handle: Handle, size: inout UInt64) -> Status {
        let vmo: VMO
        switch handle.object(VMO.self, requiring: []) {
        case .success(let object): vmo = object
        case .failure(let status): return status
        }
        do {
            size = try vmo.memoryObject.size()
            return .ok
        } catch {
            return status(vmo: error, buffer: nil)
        }
    }

    /// `zx_vmo_set_size`: changes the VMO's size; new bytes read as zero.
    ///
    /// ```c
    /// zx_status_t zx_vmo_set_size(zx_handle_t handle, uint64_t size);
    /// ```
    ///
    /// The size is rounded up to a multiple of the page size, as Zircon does. The checks run in the
    /// kernel's order:
    /// 1. `ZX_ERR_BAD_HANDLE`, `ZX_ERR_WRONG_TYPE`, then `ZX_ERR_ACCESS_DENIED` without
    ///    ``Rights/write``.
    /// 2. `ZX_ERR_ACCESS_DENIED` when the VMO is resizable and the handle lacks ``Rights/resize``.
    /// 3. `ZX_ERR_OUT_OF_RANGE` when rounding `size` up overflows.
    /// 4. `ZX_ERR_UNAVAILABLE` when the VMO is not resizable: on Linux, its memfd carries
    ///    `F_SEAL_GROW` or `F_SEAL_SHRINK` (see ``VMO/isResizable``). Zircon returns this status for
    ///    a VMO created without `ZX_VMO_RESIZABLE`; a size seal is the same promise, made to every
    ///    holder of the object.
    /// 5. `ZX_ERR_OUT_OF_RANGE` when the rounded size exceeds ``maxVMOSize`` (or what the
    ///    object's filesystem allows).
    ///
    /// The object's own rights still apply (a read-only `MemoryObject` gives
    /// `ZX_ERR_ACCESS_DENIED`); `ZX_ERR_NO_MEMORY` when the filesystem is full. The corresponding
    /// Linux call is `ftruncate`.
    public static func vmoSetSize(_ handle: Handle, size: UInt64) -> Status {
        let vmo: VMO
        switch handle.object(VMO.self, requiring: .write) {
        case .success(let object): vmo = object
        case .failure(let status): return status
        }
        let resizable = vmo.isResizable
        if resizable && !handle.rights.contains(.resize) { return .accessDenied }
        guard let rounded = roundUpToPage(size) else { return .outOfRange }
        guard resizable else { return vmo.memoryObject.isClosed ? .badHandle : .unavailable }
        guard rounded <= maxVMOSize else { return .outOfRange }
        do {
            try vmo.memoryObject.resize(to: rounded)
            return .ok
        } catch {
            switch error.code {
            case .accessDenied where !vmo.isResizable:
                // Another holder sealed the size after the check above.
                return .unavailable
            case .invalidArguments:
                return .outOfRange
            default:
                return status(vmo: error, buffer: nil)
            }
        }
    }

    /// `value` rounded up to a multiple of the page size, or `nil` when that overflows.
    static func roundUpToPage(_ value: UInt64) -> UInt64? {
        let mask = pageSize - 1
        let (sum, overflow) = value.addingReportingOverflow(mask)
        return overflow ? nil : sum & ~mask
    }
}

// MARK: - zx_vmo_read, zx_vmo_write

extension Zircon {
    /// `zx_vmo_read`: reads exactly `buffer.count` bytes from the VMO at `offset`, or fails.
    ///
    /// ```c
    /// zx_status_t zx_vmo_read(zx_handle_t handle, void* buffer, uint64_t offset, size_t buffer_size);
    /// ```
    ///
    /// `buffer.count` is `buffer_size`; a `nil` buffer is an empty one (`buffer_size` 0). To pass
    /// `NULL` with a nonzero size, use ``vmoRead(_:buffer:offset:bufferSize:)``. On success every
    /// byte of `buffer` was written; on failure its contents are undefined. The checks run in the
    /// order of the Zircon kernel (`sys_vmo_read`, then `VmObjectPaged::ReadUser`):
    /// 1. `ZX_ERR_BAD_HANDLE` when the handle is closed or ``Handle/invalid`` (or its
    ///    `MemoryObject` was closed underneath); `ZX_ERR_WRONG_TYPE` when it is not a ``VMO``;
    ///    `ZX_ERR_ACCESS_DENIED` without ``Rights/read``.
    /// 2. `ZX_ERR_OUT_OF_RANGE` when `offset + buffer_size` overflows or exceeds the size. A
    ///    range ending exactly at the size is read, and an empty read succeeds at any offset up to
    ///    the size, including the size itself.
    /// 3. The copy, with `pread` (`pread` alone would return a short count at the end of a memfd;
    ///    the range was checked first). If the kernel could not store into `buffer` (`EFAULT`), the
    ///    status says why: `ZX_ERR_NOT_FOUND` when part of `buffer` is not mapped in this process
    ///    ("buffer address does not map to address in address space"), `ZX_ERR_INVALID_ARGS` when
    ///    it is mapped but cannot be written, such as a read-only page ("an invalid pointer").
    ///
    /// `ZX_ERR_BAD_STATE` when the object refuses `pread` itself (`ESPIPE` or `EINVAL` on a range
    /// inside it): secret memory (`memfd_secret`), whose pages are removed from the kernel's own
    /// mapping and can be reached only through a mapping — the Linux counterpart of a VMO "marked
    /// uncached and not directly readable". `ZX_ERR_IO` when the object's filesystem reports an
    /// I/O error (`EIO`), Linux's counterpart of a pager that "encountered an I/O error".
    /// `ZX_ERR_IO_DATA_INTEGRITY` never occurs: Linux reports corrupt contents (a checksum or
    /// fs-verity failure) as `EIO`, so it is `ZX_ERR_IO`. The "Documented conditions on Linux"
    /// article of `ProcessMemory` lists every condition with its Linux situation.
    public static func vmoRead(_ handle: Handle, buffer: UnsafeMutableRawBufferPointer?, offset: UInt64) -> Status {
        let vmo: VMO
        switch handle.object(VMO.self, requiring: .read) {
        case .success(let object): vmo = object
        case .failure(let status): return status
        }
        let buffer = buffer ?? UnsafeMutableRawBufferPointer(start: nil, count: 0)
        do {
            try vmo.memoryObject.read(into: buffer, at: offset)
            return .ok
        } catch {
            return status(vmo: error, buffer: UnsafeRawBufferPointer(buffer))
        }
    }

    /// `zx_vmo_read` with the C shape: a pointer and `buffer_size` bytes.
    ///
    /// As ``vmoRead(_:buffer:offset:)``. A `nil` `buffer` with a nonzero `bufferSize` is
    /// `ZX_ERR_INVALID_ARGS` ("buffer is … NULL"), checked after the handle and the range as in
    /// the kernel, which only touches the buffer when it copies. `nil` with a size of 0 reads
    /// nothing and succeeds when `offset` is at most the size. A negative `bufferSize` is
    /// `ZX_ERR_INVALID_ARGS`.
    public static func vmoRead(_ handle: Handle, buffer: UnsafeMutableRawPointer?, offset: UInt64, bufferSize: Int) -> Status {
        let vmo: VMO
        switch handle.object(VMO.self, requiring: .read) {
        case .success(let object): vmo = object
        case .failure(let status): return status
        }
        guard bufferSize >= 0 else { return .invalidArgs }
        guard let buffer else { return nullBufferStatus(vmo, offset: offset, count: bufferSize) }
        return vmoRead(handle, buffer: UnsafeMutableRawBufferPointer(start: buffer, count: bufferSize), offset: offset)
    }

    /// `zx_vmo_write`: writes exactly `buffer.count` bytes to the VMO at `offset`, or fails. A write
    /// never changes the VMO's size.
    ///
    /// ```c
    /// zx_status_t zx_vmo_write(zx_handle_t handle, const void* buffer, uint64_t offset, size_t buffer_size);
    /// ```
    ///
    /// The same rules as ``vmoRead(_:buffer:offset:)``, with ``Rights/write``:
    /// `ZX_ERR_BAD_HANDLE`, `ZX_ERR_WRONG_TYPE`, `ZX_ERR_ACCESS_DENIED`, then `ZX_ERR_OUT_OF_RANGE`
    /// when the range does not lie inside the VMO (`pwrite` would grow a memfd; the range is checked
    /// first and nothing is written), then the copy: `ZX_ERR_NOT_FOUND` when part of `buffer` is
    /// not mapped in this process, `ZX_ERR_INVALID_ARGS` when it is mapped but cannot be read
    /// (`PROT_NONE`).
    ///
    /// `ZX_ERR_ACCESS_DENIED` also when the object refuses writes: a read-only `MemoryObject`,
    /// or a memfd sealed with `F_SEAL_WRITE` or `F_SEAL_FUTURE_WRITE` (`EPERM`). Zircon has no
    /// seals; a write seal takes the write right away from every holder of the object, which is
    /// what `ZX_ERR_ACCESS_DENIED` reports for a handle. `ZX_ERR_NO_MEMORY` when the filesystem
    /// is full (`ENOSPC`, `ENOMEM`: "failure to allocate system memory to complete write");
    /// `ZX_ERR_BAD_STATE` when the object refuses `pwrite` itself (secret memory; a hugetlbfs memfd,
    /// which only a mapping can write): "not directly writable"; `ZX_ERR_IO` for an I/O error.
    public static func vmoWrite(_ handle: Handle, buffer: UnsafeRawBufferPointer?, offset: UInt64) -> Status {
        let vmo: VMO
        switch handle.object(VMO.self, requiring: .write) {
        case .success(let object): vmo = object
        case .failure(let status): return status
        }
        let buffer = buffer ?? UnsafeRawBufferPointer(start: nil, count: 0)
        do {
            try vmo.memoryObject.write(buffer, at: offset)
            return .ok
        } catch {
            return status(vmo: error, buffer: buffer)
        }
    }

    /// `zx_vmo_write` with the C shape: a pointer and `buffer_size` bytes; `nil` with a nonzero
    /// size is `ZX_ERR_INVALID_ARGS` (see ``vmoRead(_:buffer:offset:bufferSize:)``).
    public static func vmoWrite(_ handle: Handle, buffer: UnsafeRawPointer?, offset: UInt64, bufferSize: Int) -> Status {
        let vmo: VMO
        switch handle.object(VMO.self, requiring: .write) {
        case .success(let object): vmo = object
        case .failure(let status): return status
        }
        guard bufferSize >= 0 else { return .invalidArgs }
        guard let buffer else { return nullBufferStatus(vmo, offset: offset, count: bufferSize) }
        return vmoWrite(handle, buffer: UnsafeRawBufferPointer(start: buffer, count: bufferSize), offset: offset)
    }

    /// The status of a transfer with a `NULL` buffer of `count` bytes: the range is checked first,
    /// as the kernel does before it touches the buffer.
    private static func nullBufferStatus(_ vmo: VMO, offset: UInt64, count: Int) -> Status {
        let size: UInt64
        do {
            size = try vmo.memoryObject.size()
        } catch {
            return status(vmo: error, buffer: nil)
        }
        let (end, overflow) = offset.addingReportingOverflow(UInt64(count))
        if overflow || end > size { return .outOfRange }
        return count == 0 ? .ok : .invalidArgs
    }
}

// MARK: - the Linux condition behind each status

extension Zircon {
    /// The status for a failed call on a VMO's object, from the core library's error.
    ///
    /// `buffer` is the caller's buffer of a read or write: when the kernel could not copy to or
    /// from it (`EFAULT`), it decides between `ZX_ERR_NOT_FOUND` (part of it is not mapped in this
    /// process) and `ZX_ERR_INVALID_ARGS` (mapped, but the page refuses the access).
    static func status(vmo error: ProcessMemoryError, buffer: UnsafeRawBufferPointer?) -> Status {
        switch error.code {
        case .badHandle: return .badHandle
        case .accessDenied: return .accessDenied
        case .outOfRange: return .outOfRange
        case .noMemory: return .noMemory
        case .invalidBuffer:
            guard let buffer, let base = buffer.baseAddress else { return .invalidArgs }
            return isMapped(base, count: buffer.count) ? .invalidArgs : .notFound
        case .invalidArguments:
            if error.errno == .badAddress {
                guard let buffer, let base = buffer.baseAddress else { return .invalidArgs }
                return isMapped(base, count: buffer.count) ? .invalidArgs : .notFound
            }
            // pread/pwrite refuse a range inside the object with EINVAL only when the object has no
            // read or write method of its own (FMODE_CAN_READ/FMODE_CAN_WRITE unset): a hugetlbfs
            // memfd cannot be written except through a mapping.
            if error.errno == .invalidArgument, error.systemCall?.name == .pread || error.systemCall?.name == .pwrite {
                return .badState
            }
            return .invalidArgs
        case .io:
            // ESPIPE: the object has no positional reads or writes at all (secret memory, whose
            // pages the kernel itself cannot reach).
            if error.errno == .illegalSeek { return .badState }
            return .io
        case .badState, .execed: return .badState
        case .notFound: return .notFound
        case .wrongType: return .wrongType
        case .notSupported: return .notSupported
        case .protectionFailure: return .accessDenied
        }
    }

    /// Whether every page of `count` bytes from `base` is mapped in this process: `msync(MS_ASYNC)`
    /// fails with `ENOMEM` when part of the range is not mapped (and does nothing otherwise).
    static func isMapped(_ base: UnsafeRawPointer, count: Int) -> Bool {
        let page = UInt(pageSize)
        let start = UInt(bitPattern: base) & ~(page - 1)
        let (end, overflow) = UInt(bitPattern: base).addingReportingOverflow(UInt(max(count, 1)))
        guard !overflow, let pointer = UnsafeMutableRawPointer(bitPattern: start) else { return false }
        return msync(pointer, Int(end - start), MS_ASYNC) == 0
    }
}
