import ProcessMemory

extension Zircon {
    /// The largest `buffer_size` the two process-memory calls accept: "64MB", read as 64 MiB
    /// (64 × 1024 × 1024 bytes), the kernel's `kMaxDebugReadBlock` and `kMaxDebugWriteBlock`.
    public static let maxDebugBlockSize = 64 * 1024 * 1024

    /// `zx_process_read_memory`: reads memory of the process behind `handle`.
    ///
    /// ```c
    /// zx_status_t zx_process_read_memory(zx_handle_t handle, zx_vaddr_t vaddr, void* buffer,
    ///                                    size_t buffer_size, size_t* actual);
    /// ```
    ///
    /// `buffer.count` is `buffer_size`. The checks run in the kernel's order:
    /// 1. `ZX_ERR_INVALID_ARGS` when `buffer` is `nil` or has no base address, or its size is zero
    ///    or greater than ``maxDebugBlockSize`` ("64MB", read as 64 MiB).
    /// 2. `ZX_ERR_BAD_HANDLE` when the handle is closed or ``Handle/invalid``;
    ///    `ZX_ERR_WRONG_TYPE` when it does not refer to a ``Process``; `ZX_ERR_ACCESS_DENIED` unless
    ///    it has both ``Rights/read`` and ``Rights/write`` ("ZX_WRITE_RIGHT is needed for historical
    ///    reasons").
    /// 3. `ZX_ERR_BAD_STATE` when the process has no address space: it is exiting, a zombie, gone,
    ///    or it called `execve` after the handle was opened (Zircon has no exec; the address space
    ///    the handle named is gone).
    /// 4. `ZX_ERR_NOT_FOUND` when nothing is mapped at `vaddr` (including addresses outside the user
    ///    address space, and `[vsyscall]`, which is not a mapping).
    ///
    /// Then, as in the Zircon kernel, the transfer is limited to the single mapping that contains
    /// `vaddr`: it stops at that mapping's end even when the next mapping is adjacent and readable,
    /// and `actual` is set to the bytes read. Reads ignore the mapping's protection (Zircon reads
    /// through the VMO), so this is a `ReadMode.debugger` read (`/proc/PID/mem`): PROT_NONE and
    /// read-only memory is read. Inside the mapping the read can still stop early, at a guard page
    /// or at the end of a file; if not even one byte could be read the status says why:
    /// `ZX_ERR_OUT_OF_RANGE` when `vaddr`'s offset in the mapped file or memfd is at or past its
    /// size, `ZX_ERR_NOT_FOUND` at a guard page (Linux treats it like a hole), `ZX_ERR_BAD_STATE`
    /// for `[vvar]` and secret memory ("the requested memory is not cacheable": see the Reference
    /// interfaces article).
    ///
    /// `ZX_ERR_INVALID_ARGS` when the kernel could not store into some byte of `buffer` ("buffer is
    /// an invalid pointer"): part of it unmapped, read-only, PROT_NONE or a guard page in this
    /// process. That fails the call even when a prefix was read, as Zircon's copy-out does; the
    /// core library tells this from a fault in the target (`.invalidBuffer`).
    ///
    /// On failure `actual` is not changed and the contents of `buffer` are undefined.
    public static func processReadMemory(_ handle: Handle, vaddr: UInt64, buffer: UnsafeMutableRawBufferPointer?,
                                         actual: inout Int) -> Status {
        guard let buffer, buffer.baseAddress != nil, buffer.count > 0, buffer.count <= maxDebugBlockSize else {
            return .invalidArgs
        }
        let process: Process
        switch handle.object(Process.self, requiring: [.read, .write]) {
        case .success(let object): process = object
        case .failure(let status): return status
        }
        let target = process.processHandle
        let region: MemoryRegion?
        do {
            region = try target.region(containing: vaddr)
        } catch {
            return status(reading: error, region: nil)
        }
        guard let region else { return .notFound }
        let length = Int(min(UInt64(buffer.count), region.end - vaddr))
        let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length])
        let transfer: PartialTransfer
        do {
            transfer = try target.readTransfer(from: vaddr, into: slice, mode: .debugger)
        } catch {
            return status(reading: error, region: region)
        }
        // A fault in the caller's buffer fails the call even after a prefix: "buffer is an invalid
        // pointer" (the Zircon kernel's copy-out fails the same way).
        if let stop = transfer.stop, stop.code == .invalidBuffer { return .invalidArgs }
        if transfer.bytesTransferred > 0 {
            actual = transfer.bytesTransferred
            return .ok
        }
        guard let stop = transfer.stop else { return .internal }
        return status(reading: stop, region: region)
    }

    /// `zx_process_read_memory` with the C call's shape: `buffer` and `bufferSize` as separate
    /// arguments, so a ported call keeps its form.
    ///
    /// A `nil` `buffer` or a `bufferSize` of zero, below zero or above ``maxDebugBlockSize`` is
    /// `ZX_ERR_INVALID_ARGS` ("buffer is an invalid pointer or NULL, or buffer_size is zero or
    /// greater than 64MB"); otherwise as ``processReadMemory(_:vaddr:buffer:actual:)``, including
    /// `ZX_ERR_INVALID_ARGS` when part of the `bufferSize` bytes at `buffer` cannot be written.
    public static func processReadMemory(_ handle: Handle, vaddr: UInt64, buffer: UnsafeMutableRawPointer?,
                                         bufferSize: Int, actual: inout Int) -> Status {
        guard let buffer, bufferSize > 0 else { return .invalidArgs }
        return processReadMemory(handle, vaddr: vaddr, buffer: UnsafeMutableRawBufferPointer(start: buffer, count: bufferSize),
                                 actual: &actual)
    }

    /// `zx_process_write_memory`: writes memory of the process behind `handle`.
    ///
    /// ```c
    /// zx_status_t zx_process_write_memory(zx_handle_t handle, zx_vaddr_t vaddr, const void* buffer,
    ///                                     size_t buffer_size, size_t* actual);
    /// ```
    ///
    /// `buffer.count` is `buffer_size`. The checks run in the kernel's order:
    /// 1. `ZX_ERR_NOT_SUPPORTED` unless ``KernelCommandLine/enableDebuggingSyscalls`` is on (the
    ///    counterpart of `kernel.enable-debugging-syscalls=true`), before anything else.
    /// 2. `ZX_ERR_INVALID_ARGS` when `buffer` is `nil` or has no base address, or its size is zero
    ///    or greater than ``maxDebugBlockSize`` (64 MiB).
    /// 3. `ZX_ERR_BAD_HANDLE`, `ZX_ERR_WRONG_TYPE`, then `ZX_ERR_ACCESS_DENIED` unless the handle
    ///    has ``Rights/write`` (the read right is not needed).
    /// 4. `ZX_ERR_BAD_STATE` when the process is exiting, a zombie, gone or exec'd.
    /// 5. `ZX_ERR_NO_MEMORY` when nothing is mapped at `vaddr`. This follows the document; the
    ///    Zircon kernel returned `ZX_ERR_NO_MEMORY` here until 2023 and `ZX_ERR_NOT_FOUND` (as
    ///    reads do) since.
    /// 6. `ZX_ERR_ACCESS_DENIED` when the mapping at `vaddr` is a protected area: the vDSO, and
    ///    on Linux also `[vvar]`, `[vsyscall]`, secret memory and shared mappings without write
    ///    permission (writing one would change the file itself).
    ///
    /// Then the write is limited to the single mapping that contains `vaddr` and `actual` is set to
    /// the bytes written. Writes ignore the mapping's protection as Zircon's do (it makes the
    /// mapping privately writable): a read-only private mapping such as code is written
    /// copy-on-write through `/proc/PID/mem` (`WriteMode.debugger`), and the file behind it never
    /// changes. If not even one byte could be written the status says why: `ZX_ERR_OUT_OF_RANGE`
    /// past the end of a shared file or memfd, `ZX_ERR_NO_MEMORY` at a guard page,
    /// `ZX_ERR_NOT_SUPPORTED` when the Linux kernel forbids forced writes
    /// (`proc_mem.force_override=never`). `ZX_ERR_INVALID_ARGS` when the kernel could not load
    /// from some byte of `buffer` (unmapped, PROT_NONE or a guard page in this process), even
    /// after a prefix was written.
    ///
    /// On failure `actual` is not changed.
    public static func processWriteMemory(_ handle: Handle, vaddr: UInt64, buffer: UnsafeRawBufferPointer?,
                                          actual: inout Int) -> Status {
        guard KernelCommandLine.enableDebuggingSyscalls else { return .notSupported }
        guard let buffer, buffer.baseAddress != nil, buffer.count > 0, buffer.count <= maxDebugBlockSize else {
            return .invalidArgs
        }
        let process: Process
        switch handle.object(Process.self, requiring: .write) {
        case .success(let object): process = object
        case .failure(let status): return status
        }
        let target = process.processHandle
        let found: MemoryRegion?
        do {
            found = try target.region(containing: vaddr)
        } catch {
            return status(writing: error)
        }
        guard let region = found else {
            // PROCMAP_QUERY does not report [vsyscall] (it is not a VMA); /proc/PID/maps lists it.
            if let listed = try? target.memoryMap().region(containing: vaddr), listed.isProtectedFromWrites {
                return .accessDenied
            }
            return .noMemory
        }
        if region.isProtectedFromWrites { return .accessDenied }
        let length = Int(min(UInt64(buffer.count), region.end - vaddr))
        let slice = UnsafeRawBufferPointer(rebasing: buffer[0..<length])
        let transfer: PartialTransfer
        do {
            transfer = try target.writeTransfer(slice, to: vaddr, mode: .debugger)
        } catch {
            return status(writing: error)
        }
        // A fault in the caller's buffer fails the call even after a prefix ("buffer is an invalid
        // pointer").
        if let stop = transfer.stop, stop.code == .invalidBuffer { return .invalidArgs }
        if transfer.bytesTransferred > 0 {
            actual = transfer.bytesTransferred
            return .ok
        }
        guard let stop = transfer.stop else { return .internal }
        return status(writing: stop)
    }

    /// `zx_process_write_memory` with the C call's shape: `buffer` and `bufferSize` as separate
    /// arguments, so a ported call keeps its form.
    ///
    /// Needs the debugging switch first, as ``processWriteMemory(_:vaddr:buffer:actual:)`` does
    /// (`ZX_ERR_NOT_SUPPORTED` without it). Then a `nil` `buffer` or a `bufferSize` of zero, below
    /// zero or above ``maxDebugBlockSize`` is `ZX_ERR_INVALID_ARGS`; otherwise as the buffer form,
    /// including `ZX_ERR_INVALID_ARGS` when part of the `bufferSize` bytes at `buffer` cannot be read.
    public static func processWriteMemory(_ handle: Handle, vaddr: UInt64, buffer: UnsafeRawPointer?,
                                          bufferSize: Int, actual: inout Int) -> Status {
        guard KernelCommandLine.enableDebuggingSyscalls else { return .notSupported }
        guard let buffer, bufferSize > 0 else { return .invalidArgs }
        return processWriteMemory(handle, vaddr: vaddr, buffer: UnsafeRawBufferPointer(start: buffer, count: bufferSize),
                                  actual: &actual)
    }
}

// MARK: - the Linux condition behind each status

extension Zircon {
    /// The status for a read that moved no byte (or could not start), from the core library's code.
    static func status(reading error: ProcessMemoryError, region: MemoryRegion?) -> Status {
        switch error.code {
        case .notFound: return .notFound
        case .outOfRange: return .outOfRange
        case .protectionFailure:
            // [vvar] and secret memory: mapped, but no other process can read them (the nearest
            // counterpart of "not cacheable"). Otherwise a guard page, which Linux treats like a hole.
            if let region, region.kind == .vvar || region.kind == .secretMemory { return .badState }
            return .notFound
        case .invalidArguments:
            // Checked before any system call: the address lies outside the user address space,
            // where nothing can be mapped.
            return error.systemCall != nil ? .invalidArgs : .notFound
        case .invalidBuffer:
            // "buffer is an invalid pointer": the kernel could not store into the caller's buffer.
            return .invalidArgs
        default: return status(common: error)
        }
    }

    /// The status for a write that moved no byte (or could not start).
    static func status(writing error: ProcessMemoryError) -> Status {
        switch error.code {
        case .notFound: return .noMemory
        case .outOfRange: return .outOfRange
        case .protectionFailure:
            // A guard page (the protected areas are refused before the write).
            return .noMemory
        case .invalidArguments:
            return error.systemCall != nil ? .invalidArgs : .noMemory
        case .invalidBuffer:
            // "buffer is an invalid pointer": the kernel could not load from the caller's buffer.
            return .invalidArgs
        default: return status(common: error)
        }
    }

    /// The status for opening a task.
    static func status(opening error: ProcessMemoryError) -> Status {
        switch error.code {
        case .notFound: return .notFound
        case .invalidArguments: return .invalidArgs
        default: return status(common: error)
        }
    }

    private static func status(common error: ProcessMemoryError) -> Status {
        switch error.code {
        case .badHandle: return .badHandle
        case .wrongType: return .wrongType
        case .badState, .execed: return .badState
        case .accessDenied: return .accessDenied
        case .noMemory: return .noMemory
        case .notSupported: return .notSupported
        case .invalidArguments, .invalidBuffer: return .invalidArgs
        case .notFound: return .notFound
        case .outOfRange: return .outOfRange
        case .protectionFailure: return .accessDenied
        case .io: return .io
        }
    }
}
