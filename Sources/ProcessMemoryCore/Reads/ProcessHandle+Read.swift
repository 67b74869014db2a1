import Glibc
import SystemPackage

extension ProcessHandle {
    /// Reads up to `buffer.count` bytes at `address` into `buffer`, stopping exactly at the first byte
    /// that cannot be read, and says why it stopped.
    ///
    /// Sizes above the kernel's per-call limit are split internally; the result is what one ideal
    /// call would give. Nothing is allocated.
    /// - Throws: only what prevents any attempt: `.invalidArguments` (empty or null buffer, a range
    ///   that wraps, an address outside the user address space), `.badHandle`, `.execed`,
    ///   `.accessDenied` (no read right).
    ///
    /// When the kernel stops because part of `buffer` cannot be written (unmapped, read-only,
    /// PROT_NONE or a guard page in this process), the stop is `.invalidBuffer` with
    /// ``ProcessMemoryError/localAddress`` naming the first such byte of `buffer`, never a code
    /// about the target. `bytesTransferred` is what the kernel reported: `pread` on
    /// `/proc/PID/mem` reports no partial count with `EFAULT`, so in ``ReadMode/debugger`` it is the
    /// bytes before the failing chunk (a chunk is up to 1 GiB), and bytes after it may have been
    /// stored.
    ///
    /// The corresponding C call is `pread` on `/proc/PID/mem`, or `process_vm_readv`.
    public func readTransfer(from address: UInt64, into buffer: UnsafeMutableRawBufferPointer,
                             mode: ReadMode = .default) throws(ProcessMemoryError) -> PartialTransfer {
        guard rights.contains(.read) else { throw .missingRight("read", pid: pid) }
        try validate(address: address, count: buffer.count, buffer: buffer.baseAddress)
        // The closure runs before this method returns, while the caller holds the handle: capturing
        // it unowned(unsafe) spares a retain and release, a tenth of a small read's own cost.
        return try box.use(pid: pid) { [unowned(unsafe) self] (fds) throws(ProcessMemoryError) -> PartialTransfer in
            guard let base = buffer.baseAddress else { throw .invalid("the buffer is null", pid: pid) }
            // The debugger path straight to the static loop: through rawRead it would retain the handle.
            let (done, stop) = mode == .debugger ? Self.readMem(fds, address: address, into: base, count: buffer.count)
                : rawRead(fds, address: address, into: base, count: buffer.count, mode: mode)
            guard let stop else { return PartialTransfer(bytesTransferred: done) }
            // Only now, after an early stop, is the caller's buffer looked at: EFAULT and short
            // counts do not say which side faulted.
            if let local = localFault(stop, remote: address, local: base, transferred: done, requested: buffer.count, use: .store) {
                return PartialTransfer(bytesTransferred: done, stop: local)
            }
            let error = classify(fds, at: address &+ UInt64(done), kind: .read(mode), transferred: done, stop: stop)
            if error.code == .execed || error.code == .badState {
                // The data may come from a process that is not ours: never hand it out.
                buffer.initializeMemory(as: UInt8.self, repeating: 0)
                var lifecycle = error
                lifecycle.bytesTransferred = 0
                return PartialTransfer(bytesTransferred: 0, stop: lifecycle)
            }
            return PartialTransfer(bytesTransferred: done, stop: error)
        }
    }

    /// Reads up to `buffer.count` bytes; returns how many were read, exact to the byte.
    ///
    /// - Throws: ``ProcessMemoryError`` when not even the first byte can be read (its code says why:
    ///   `.notFound`, `.protectionFailure`, `.outOfRange`, `.badState`, `.execed`, …), for
    ///   invalid arguments, and `.invalidBuffer` whenever part of `buffer` could not be written
    ///   (a fault in the caller's buffer is never a short count).
    ///
    /// The corresponding C call is `pread` on `/proc/PID/mem`, or `process_vm_readv`.
    @discardableResult
    public func read(from address: UInt64, into buffer: UnsafeMutableRawBufferPointer,
                     mode: ReadMode = .default) throws(ProcessMemoryError) -> Int {
        let transfer = try readTransfer(from: address, into: buffer, mode: mode)
        if let stop = transfer.stop, transfer.bytesTransferred == 0 || stop.code == .invalidBuffer { throw stop }
        return transfer.bytesTransferred
    }

    /// Reads exactly `buffer.count` bytes, or throws.
    ///
    /// - Throws: ``ProcessMemoryError`` whose `address` is the first byte that could not be read and
    ///   whose `bytesTransferred` is how many bytes before it were readable.
    ///
    /// The corresponding C call is `pread` on `/proc/PID/mem`, or `process_vm_readv`.
    public func readExactly(from address: UInt64, into buffer: UnsafeMutableRawBufferPointer,
                            mode: ReadMode = .default) throws(ProcessMemoryError) {
        let transfer = try readTransfer(from: address, into: buffer, mode: mode)
        if let stop = transfer.stop { throw stop }
    }

    /// Reads up to `count` bytes into a new array, which holds exactly the bytes that were readable.
    ///
    /// - Throws: as ``read(from:into:mode:)``, when not even the first byte can be read.
    public func read(from address: UInt64, count: Int, mode: ReadMode = .default) throws(ProcessMemoryError) -> [UInt8] {
        guard count > 0 else { throw .invalid("the size must be greater than zero", pid: pid, address: address) }
        try ensureAllocatable(count, address: address)
        var failure: ProcessMemoryError?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { storage, initialized in
            do throws(ProcessMemoryError) {
                initialized = try read(from: address, into: UnsafeMutableRawBufferPointer(storage), mode: mode)
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Reads exactly `count` bytes into a new array, or throws.
    public func readExactly(from address: UInt64, count: Int, mode: ReadMode = .default) throws(ProcessMemoryError) -> [UInt8] {
        guard count > 0 else { throw .invalid("the size must be greater than zero", pid: pid, address: address) }
        try ensureAllocatable(count, address: address)
        var failure: ProcessMemoryError?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { storage, initialized in
            do throws(ProcessMemoryError) {
                try readExactly(from: address, into: UnsafeMutableRawBufferPointer(storage), mode: mode)
                initialized = count
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Reads a value of a trivial type (integers, floating point, structs of them) in the target's
    /// native byte order; all or nothing.
    public func read<T: BitwiseCopyable>(_ type: T.Type, from address: UInt64,
                                         mode: ReadMode = .default) throws(ProcessMemoryError) -> T {
        let size = MemoryLayout<T>.size
        guard size > 0 else { throw .invalid("\(T.self) has no bytes to read", pid: pid, address: address) }
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: MemoryLayout<T>.alignment)
        defer { storage.deallocate() }
        try readExactly(from: address, into: storage, mode: mode)
        return storage.loadUnaligned(as: T.self)
    }

    /// Reads a NUL-terminated string of at most `maxLength` bytes (without the NUL), decoded as UTF-8
    /// with invalid sequences replaced.
    ///
    /// Reads one page at a time, so bytes past the terminator are never touched. If `maxLength` bytes
    /// are read without a NUL, the first `maxLength` bytes are returned.
    /// - Throws: when a byte before the terminator cannot be read; `bytesTransferred` counts the
    ///   bytes of the string that were read.
    public func readCString(from address: UInt64, maxLength: Int = 4096,
                            mode: ReadMode = .default) throws(ProcessMemoryError) -> String {
        guard maxLength > 0 else { throw .invalid("maxLength must be greater than zero", pid: pid, address: address) }
        var bytes: [UInt8] = []
        var cursor = address
        var chunk = [UInt8](repeating: 0, count: Int(AddressSpace.pageSize))
        while bytes.count < maxLength {
            let toPageEnd = Int(AddressSpace.pageStart(cursor) &+ AddressSpace.pageSize &- cursor)
            let wanted = min(maxLength - bytes.count, toPageEnd)
            let got: Int
            do throws(ProcessMemoryError) {
                let result = chunk.withUnsafeMutableBytes { raw in
                    Result { () throws(ProcessMemoryError) -> Int in
                        try read(from: cursor, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<wanted]), mode: mode)
                    }
                }
                got = try result.get()
            } catch {
                var failure = error
                failure.bytesTransferred += bytes.count
                throw failure
            }
            if let nul = chunk[0..<got].firstIndex(of: 0) {
                bytes.append(contentsOf: chunk[0..<nul])
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes.append(contentsOf: chunk[0..<got])
            cursor &+= UInt64(got)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Throws `.noMemory` when `count` bytes of address space cannot be had in this process (for
    /// example under RLIMIT_AS), instead of letting the array allocation trap. The probe is an
    /// mmap(2) of the size, released at once (a malloc/free pair would be optimised away).
    func ensureAllocatable(_ count: Int, address: UInt64) throws(ProcessMemoryError) {
        guard count >= 1 << 20 else { return }
        switch Sys.mmap(count, protection: PROT_NONE, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, offset: 0) {
        case .success(let probe):
            Sys.munmap(probe, count)
        case .failure(let error):
            throw ProcessMemoryError(.noMemory, pid: pid, address: address, systemCall: SystemCall(.mmap), errno: error,
                                     message: "this process cannot allocate \(count) bytes for the result; read into your own buffer with read(from:into:) in smaller pieces")
        }
    }

    /// Checks a range before any system call (issue: size 0, null buffer, wrap, outside user space).
    @inline(__always)
    func validate(address: UInt64, count: Int, buffer: UnsafeRawPointer?) throws(ProcessMemoryError) {
        guard count > 0 else { throw .invalid("the size must be greater than zero", pid: pid, address: address) }
        guard buffer != nil else { throw .invalid("the buffer is null", pid: pid, address: address) }
        let (end, overflow) = address.addingReportingOverflow(UInt64(count))
        guard !overflow || end == 0 else {
            throw .invalid("address plus size wraps around the address space", pid: pid, address: address)
        }
        guard address < userLimit else { throw outsideUserSpace(address) }
    }

    /// The error for an address at or above ``userLimit`` (out of line: the check is on every read).
    @inline(never)
    func outsideUserSpace(_ address: UInt64) -> ProcessMemoryError {
        .invalid("0x\(String(address, radix: 16)) lies outside the user address space (limit 0x\(String(userLimit, radix: 16)))",
                 pid: pid, address: address)
    }

    /// The debugger-mode transfer loop: `pread(2)` on `/proc/PID/mem` in chunks of at most 1 GiB,
    /// stopping at the first short count or error. It needs nothing of the handle but its
    /// descriptors, so the hot path of a small read holds no reference to it.
    static func readMem(_ fds: HandleDescriptors, address: UInt64, into base: UnsafeMutableRawPointer,
                        count: Int) -> (Int, RawStop?) {
        var done = 0
        var stop: RawStop?
        let call = SystemCall(.pread, "/proc/PID/mem")
        while done < count {
            let want = min(count - done, AddressSpace.maxChunk)
            switch Sys.pread(fds.mem, base + done, want, at: address &+ UInt64(done)) {
            case .success(0):
                stop = RawStop(systemCall: call, errno: nil, addressSpaceGone: true)
            case .success(let got):
                done += got
                if got < want { stop = RawStop(systemCall: call, errno: nil) }
            case .failure(let error):
                stop = RawStop(systemCall: call, errno: error)
            }
            if stop != nil { break }
        }
        return (done, stop)
    }

    /// The transfer loop: chunks of at most 1 GiB, stopping at the first short count or error.
    func rawRead(_ fds: HandleDescriptors, address: UInt64, into base: UnsafeMutableRawPointer, count: Int,
                 mode: ReadMode, userfaultfdChecked: Bool = false) -> (Int, RawStop?) {
        var done = 0
        var stop: RawStop?
        switch mode {
        case .debugger:
            return Self.readMem(fds, address: address, into: base, count: count)
        case .respectingProtections:
            guard vmReadvAllowed else {
                return (0, RawStop(systemCall: SystemCall(.processVMReadv), errno: .notPermitted))
            }
            // Never wait forever for a userfaultfd handler: stop before its unpopulated pages.
            let hazard = userfaultfdChecked ? nil : UserfaultfdGuard.hazard(fds, address: address, count: count)
            let limit = hazard.map { Int($0.address - address) } ?? count
            while done < limit {
                let want = min(limit - done, AddressSpace.maxChunk)
                switch Sys.processVMRead(pid: pid, local: base + done, remote: address &+ UInt64(done), count: want) {
                case .success(let got):
                    done += got
                    if got < want { stop = RawStop(systemCall: SystemCall(.processVMReadv), errno: nil) }
                case .failure(let error):
                    stop = RawStop(systemCall: SystemCall(.processVMReadv), errno: error)
                }
                if stop != nil { break }
            }
            if stop == nil, let hazard {
                stop = RawStop(systemCall: SystemCall(.processVMReadv), errno: nil, userfaultfd: hazard.reason)
            }
            // process_vm_readv names the process by PID: the bytes are ours only if the process is
            // still alive and still has the address space our mem descriptor is bound to.
            if processExited(fds) || AddressSpaceProbe.probe(fds.mem) == .gone {
                return (done, RawStop(systemCall: SystemCall(.processVMReadv), errno: stop?.errno, addressSpaceGone: true))
            }
        }
        return (done, stop)
    }
}
