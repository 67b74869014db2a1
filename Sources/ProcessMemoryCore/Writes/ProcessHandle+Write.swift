import Glibc

extension ProcessHandle {
    /// Writes `bytes` at `address`, stopping exactly at the first byte that cannot be written, and
    /// says why it stopped.
    ///
    /// Before any byte is written the range is checked against the map: a range that touches
    /// `[vdso]`, `[vvar]`, `[vvar_vclock]`, `[vsyscall]` or secret memory is refused whole. Then only
    /// the prefix the map says is writable in `mode` is written, so nothing past the reported prefix
    /// ever changes.
    /// - Throws: what prevents any attempt: `.invalidArguments`, `.badHandle`, `.execed`,
    ///   `.accessDenied` (no write right, or protected memory).
    ///
    /// When the kernel stops because part of `bytes` cannot be read (unmapped or PROT_NONE in this
    /// process, a guard page), the stop is `.invalidBuffer` with
    /// ``ProcessMemoryError/localAddress`` naming the first such byte, never a code about the
    /// target. `pwrite` on `/proc/PID/mem` copies from the buffer one page at a time and gives
    /// `EFAULT` without a partial count, so pages before the faulting one may have been written
    /// although `bytesTransferred` does not count them; ``writeExactly(_:to:mode:)-(UnsafeRawBufferPointer,_,_)``
    /// checks the buffer first and writes nothing.
    ///
    /// The corresponding C call is `pwrite` on `/proc/PID/mem`.
    public func writeTransfer(_ bytes: UnsafeRawBufferPointer, to address: UInt64,
                              mode: WriteMode = .default) throws(ProcessMemoryError) -> PartialTransfer {
        guard rights.contains(.write) else { throw .missingRight("write", pid: pid) }
        let (end, _) = address.addingReportingOverflow(UInt64(bytes.count))
        if bytes.count > 0, address < AddressSpace.vsyscallRange.upperBound, end > AddressSpace.vsyscallRange.lowerBound || end == 0,
           address >= AddressSpace.vsyscallRange.lowerBound || end > AddressSpace.vsyscallRange.lowerBound {
            throw ProcessMemoryError(.accessDenied, pid: pid, address: address, accessDenial: .protectedMemory("[vsyscall]"),
                                     message: "[vsyscall] is protected memory and is never written")
        }
        try validate(address: address, count: bytes.count, buffer: bytes.baseAddress)
        return try box.use(pid: pid) { (fds) throws(ProcessMemoryError) -> PartialTransfer in
            guard let base = bytes.baseAddress else { throw .invalid("the buffer is null", pid: pid) }
            let map = try readMap(fds)
            let requested = address..<min(address &+ UInt64(bytes.count), AddressSpace.userLimit)
            if let protected = map.regions(overlapping: requested).first(where: { $0.isProtectedFromWrites }) {
                let name = protected.path ?? protected.kind.rawValue
                throw ProcessMemoryError(.accessDenied, pid: pid, address: max(address, protected.start),
                                         accessDenial: .protectedMemory(name),
                                         message: "\(name) is protected memory and is never written")
            }
            let allowed = writablePrefix(fds, map: map, from: address, count: bytes.count, mode: mode)
            var done = 0
            var stop: RawStop?
            let call = SystemCall(.pwrite, "/proc/PID/mem")
            while done < allowed {
                let want = min(allowed - done, AddressSpace.maxChunk)
                switch Sys.pwrite(fds.mem, base + done, want, at: address &+ UInt64(done)) {
                case .success(0): stop = RawStop(systemCall: call, errno: nil, addressSpaceGone: true)
                case .success(let wrote):
                    done += wrote
                    if wrote < want { stop = RawStop(systemCall: call, errno: nil) }
                case .failure(let error): stop = RawStop(systemCall: call, errno: error)
                }
                if stop != nil { break }
            }
            if done == bytes.count { return PartialTransfer(bytesTransferred: done) }
            // The kernel stopped early: first ask whether our caller's buffer was the reason.
            if let stop, let local = localFault(stop, remote: address, local: base, transferred: done,
                                                requested: allowed, use: .load) {
                return PartialTransfer(bytesTransferred: done, stop: local)
            }
            let reason = stop ?? RawStop(systemCall: SystemCall(.pwrite, "/proc/\(pid)/mem"), errno: nil)
            let error = classify(fds, at: address &+ UInt64(done), kind: .write(mode), transferred: done, stop: reason)
            return PartialTransfer(bytesTransferred: done, stop: error)
        }
    }

    /// Writes up to `bytes.count` bytes; returns how many were written, exact to the byte.
    ///
    /// - Throws: ``ProcessMemoryError`` when not even the first byte can be written: `.notFound`
    ///   (nothing mapped), `.accessDenied` (protected memory, a shared read-only mapping, no write
    ///   right), `.protectionFailure`, `.outOfRange`, `.badState`, `.execed`, `.invalidArguments`;
    ///   and `.invalidBuffer` whenever part of `bytes` could not be read.
    ///
    /// The corresponding C call is `pwrite` on `/proc/PID/mem`.
    @discardableResult
    public func write(_ bytes: UnsafeRawBufferPointer, to address: UInt64,
                      mode: WriteMode = .default) throws(ProcessMemoryError) -> Int {
        let transfer = try writeTransfer(bytes, to: address, mode: mode)
        if let stop = transfer.stop, transfer.bytesTransferred == 0 || stop.code == .invalidBuffer { throw stop }
        return transfer.bytesTransferred
    }

    /// Writes all of `bytes` or, when the map shows that some byte cannot be written, nothing at all.
    ///
    /// - Throws: ``ProcessMemoryError`` whose `address` is the first byte that cannot be written.
    ///   `bytesTransferred` is 0 when the map refused the range before writing; it is the number of
    ///   bytes written if the target changed its map during the write. `.invalidBuffer`, with
    ///   nothing written, when part of `bytes` cannot be read in this process (for more than a
    ///   page, checked first with `PROCMAP_QUERY` on `/proc/self/maps`; up to a page, `pwrite`
    ///   loads the whole buffer before it stores any byte).
    ///
    /// The corresponding C call is `pwrite` on `/proc/PID/mem`.
    public func writeExactly(_ bytes: UnsafeRawBufferPointer, to address: UInt64,
                             mode: WriteMode = .default) throws(ProcessMemoryError) {
        guard rights.contains(.write) else { throw .missingRight("write", pid: pid) }
        try validate(address: address, count: bytes.count, buffer: bytes.baseAddress)
        let precheck: ProcessMemoryError? = try box.use(pid: pid) { (fds) throws(ProcessMemoryError) -> ProcessMemoryError? in
            if let base = bytes.baseAddress, bytes.count > Int(AddressSpace.pageSize) {
                // All or nothing also on our side: pwrite on /proc/PID/mem loads the buffer one
                // page-sized chunk at a time and stores each before it loads the next, so a fault
                // in a later chunk of the caller's buffer would leave the earlier ones written.
                // One chunk (small writes, such as a freezer's) is loaded whole before anything is
                // stored and needs no check. One PROCMAP_QUERY per local mapping the buffer spans.
                let start = UInt64(UInt(bitPattern: base))
                if let fault = LocalBuffer.firstFault(in: start..<(start &+ UInt64(bytes.count)), use: .load) {
                    return ProcessMemoryError(.invalidBuffer, pid: pid, address: address, localAddress: fault.address,
                                              message: "the caller's buffer could not be read at 0x\(String(fault.address, radix: 16)): \(fault.reason); nothing was written")
                }
            }
            let map = try readMap(fds)
            let allowed = writablePrefix(fds, map: map, from: address, count: bytes.count, mode: mode)
            guard allowed < bytes.count else { return nil }
            let requested = address..<min(address &+ UInt64(bytes.count), AddressSpace.userLimit)
            if map.regions(overlapping: requested).contains(where: { $0.isProtectedFromWrites }) { return nil }
            return classify(fds, at: address &+ UInt64(allowed), kind: .write(mode), transferred: 0,
                            stop: RawStop(systemCall: SystemCall(.pwrite, "/proc/\(pid)/mem"), errno: nil))
        }
        if let precheck { throw precheck }
        let transfer = try writeTransfer(bytes, to: address, mode: mode)
        if let stop = transfer.stop { throw stop }
    }

    /// Writes `bytes` (see ``write(_:to:mode:)-(UnsafeRawBufferPointer,_,_)``).
    @discardableResult
    public func write(_ bytes: [UInt8], to address: UInt64, mode: WriteMode = .default) throws(ProcessMemoryError) -> Int {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(ProcessMemoryError) -> Int in try write(raw, to: address, mode: mode) } }
        return try result.get()
    }

    /// Writes all of `bytes` or nothing (see ``writeExactly(_:to:mode:)-(UnsafeRawBufferPointer,_,_)``).
    public func writeExactly(_ bytes: [UInt8], to address: UInt64, mode: WriteMode = .default) throws(ProcessMemoryError) {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(ProcessMemoryError) in try writeExactly(raw, to: address, mode: mode) } }
        try result.get()
    }

    /// Writes a value of a trivial type in native byte order; all or nothing.
    public func write<T: BitwiseCopyable>(_ value: T, to address: UInt64, mode: WriteMode = .default) throws(ProcessMemoryError) {
        var copy = value
        let result = withUnsafeBytes(of: &copy) { raw in Result { () throws(ProcessMemoryError) in try writeExactly(raw, to: address, mode: mode) } }
        try result.get()
    }

    /// How many bytes from `address` the map says can be written in `mode`: stops at a hole, at a
    /// mapping without `w` (protection-respecting), at a shared mapping without `w`, and at the
    /// first page past the end of a shared mapping's backing object.
    func writablePrefix(_ fds: HandleDescriptors, map: MemoryMap, from address: UInt64, count: Int, mode: WriteMode) -> Int {
        let end = address &+ UInt64(count)
        var cursor = address
        while cursor < end || (end == 0 && cursor != 0) {
            guard let region = map.region(containing: cursor) else { break }
            if region.isProtectedFromWrites { break }
            if mode == .respectingProtections && !region.permissions.contains(.write) { break }
            if region.isShared && !region.permissions.contains(.write) { break }
            var limit = region.end
            if region.isShared && region.hasBackingObject, let size = backingObjectSize(fds, region) {
                // Bytes after EOF in the EOF page exist in memory; whole pages past it do not.
                let inObject = size > region.offset ? size - region.offset : 0
                let pages = (inObject + AddressSpace.pageSize - 1) / AddressSpace.pageSize
                limit = min(limit, region.start &+ pages &* AddressSpace.pageSize)
                if cursor >= limit { break }
            }
            cursor = limit
        }
        let allowed = cursor >= address ? cursor - address : 0
        return Int(min(allowed, UInt64(count)))
    }
}
