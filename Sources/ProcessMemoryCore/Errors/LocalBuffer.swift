import CProcessMemory
import Glibc
import SystemPackage

/// What the kernel needed from the caller's buffer, in this process.
package enum LocalUse: Sendable {
    /// A read stores into the buffer: its pages must be mapped writable.
    case store
    /// A write loads from the buffer: its pages must be mapped readable.
    case load

    var needed: MemoryRegion.Permissions { self == .store ? .write : .read }
    var verb: String { self == .store ? "written" : "read" }
}

/// The local side of a transfer: which byte of a buffer in this process the kernel cannot use.
///
/// `process_vm_readv(2)`, `pread(2)` and `pwrite(2)` on `/proc/PID/mem` say `EFAULT`, or return a
/// short count, for a fault in the caller's buffer as well as for one in the target, so after a
/// transfer stops early the library looks at its own map before it blames the target. Never called
/// on success: a complete transfer proves the buffer was usable.
package enum LocalBuffer {
    /// The first unusable byte of a buffer, and why.
    package struct Fault: Sendable, Hashable {
        package var address: UInt64
        package var reason: String
    }

    /// The first address in `range` (addresses of this process) that `use` cannot reach: not
    /// mapped, mapped without the needed permission (`w` to store, `r` to load), or a guard page;
    /// `nil` when every byte looks usable.
    ///
    /// One `PROCMAP_QUERY` ioctl (Linux 6.11+) on `/proc/self/maps` per mapping the range crosses,
    /// else the parsed `/proc/self/maps`; then `/proc/self/pagemap` bit 58 for guard pages
    /// (`MADV_GUARD_INSTALL`), which the map shows as ordinary `rw-p` memory.
    package static func firstFault(in range: Range<UInt64>, use: LocalUse) -> Fault? {
        guard !range.isEmpty else { return nil }
        guard case .success(let maps) = Sys.openat(AT_FDCWD, "/proc/self/maps", O_RDONLY) else { return nil }
        defer { Sys.close(maps) }
        var parsed: MemoryMap?
        var cursor = range.lowerBound
        while cursor < range.upperBound {
            let region: MemoryRegion?
            switch ProcessHandle.procmapQuery(maps, cursor) {
            case .found(let found): region = found
            case .none: region = nil
            case .unsupported:
                if parsed == nil {
                    guard case .success(let bytes) = Sys.readAll(maps) else { return nil }
                    parsed = MemoryMap(regions: MapsParser.parse(bytes).regions)
                }
                region = parsed?.region(containing: cursor)
            }
            guard let region else {
                return Fault(address: cursor, reason: "nothing is mapped there in this process")
            }
            guard region.permissions.contains(use.needed) else {
                return Fault(address: cursor, reason: "this process has it mapped \(region.permissions)")
            }
            let end = min(region.end, range.upperBound)
            if let guardPage = firstGuardPage(cursor..<end) {
                return Fault(address: max(guardPage, cursor), reason: "it is a guard page (MADV_GUARD_INSTALL) of this process")
            }
            cursor = region.end
        }
        return nil
    }

    /// The start of the first page in `range` that `/proc/self/pagemap` marks as a guard region
    /// (bit 58), read 512 entries at a time.
    static func firstGuardPage(_ range: Range<UInt64>) -> UInt64? {
        guard case .success(let fd) = Sys.openat(AT_FDCWD, "/proc/self/pagemap", O_RDONLY) else { return nil }
        defer { Sys.close(fd) }
        let page = AddressSpace.pageSize
        var first = range.lowerBound / page
        let last = (range.upperBound - 1) / page
        var entries = [UInt64](repeating: 0, count: 512)
        while first <= last {
            let wanted = Int(min(UInt64(entries.count), last - first + 1))
            let result = entries.withUnsafeMutableBytes { raw -> Result<Int, Errno> in
                guard let base = raw.baseAddress else { return .success(0) }
                return Sys.pread(fd, base, wanted * 8, at: first * 8)
            }
            guard case .success(let got) = result, got >= 8 else { return nil }
            for index in 0..<(got / 8) where entries[index] & (1 << 58) != 0 {
                return (first + UInt64(index)) * page
            }
            first += UInt64(got / 8)
        }
        return nil
    }
}

extension ProcessHandle {
    /// The error for a transfer that stopped early because of the caller's buffer, or `nil` when the
    /// buffer is not to blame and the target's map should be asked (``classify(_:at:kind:transferred:stop:)``).
    ///
    /// `local` is the start of the caller's buffer and `requested` its length; the kernel stopped
    /// after `transferred` bytes. `process_vm_readv`/`process_vm_writev` stop at the faulting byte
    /// (or a few bytes before it, as `copy_to_user` may report), so the page after the stop is
    /// checked. `pread`/`pwrite` on `/proc/PID/mem` say `EFAULT` only for the local side and return
    /// no partial count with it, so the whole chunk is searched for the fault.
    package func localFault(_ stop: RawStop, remote: UInt64, local: UnsafeRawPointer, transferred: Int,
                            requested: Int, use: LocalUse) -> ProcessMemoryError? {
        guard !stop.addressSpaceGone, stop.errno == nil || stop.errno == .badAddress else { return nil }
        let remaining = requested - transferred
        guard remaining > 0 else { return nil }
        let onMem = stop.systemCall.name == .pread || stop.systemCall.name == .pwrite
        let certain = onMem && stop.errno == .badAddress
        let window = certain ? min(remaining, AddressSpace.maxChunk) : min(remaining, Int(AddressSpace.pageSize))
        let start = UInt64(UInt(bitPattern: local)) &+ UInt64(transferred)
        let (end, overflow) = start.addingReportingOverflow(UInt64(window))
        let fault = LocalBuffer.firstFault(in: start..<(overflow ? UInt64.max : end), use: use)
        guard fault != nil || certain else { return nil }
        let target = remote &+ UInt64(transferred)
        let message: String
        if let fault {
            message = "the caller's buffer could not be \(use.verb) by the kernel at 0x\(String(fault.address, radix: 16)): "
                + "\(fault.reason); the target at 0x\(String(target, radix: 16)) is not at fault"
        } else {
            message = "the kernel could not use the caller's buffer (EFAULT from \(stop.systemCall), which on /proc/PID/mem means the local side)"
        }
        return ProcessMemoryError(.invalidBuffer, pid: pid, address: target, bytesTransferred: transferred,
                                  systemCall: stop.systemCall, errno: stop.errno, localAddress: fault?.address,
                                  message: message)
    }
}

/// Memory of this process, moved by the kernel so that a page that cannot be used is an error and
/// not a crash.
///
/// The reference surfaces use it to copy a finished read from a private buffer into the caller's
/// buffer (Win32's `ReadProcessMemory` verifies the whole range before it transfers anything).
public enum LocalMemory {
    /// Copies `source` into the `source.count` bytes at `destination`, both in this process, with
    /// `process_vm_readv(2)` on this process itself.
    ///
    /// A plain `memcpy` into a page that is unmapped or read-only kills the process with `SIGSEGV`;
    /// the kernel's copy stops there and says so. The bytes before the first unwritable byte are
    /// copied. Where a seccomp filter forbids `process_vm_readv`, `destination` is checked first
    /// (`PROCMAP_QUERY` on `/proc/self/maps`) and then copied with `memcpy`.
    ///
    /// - Throws: `.invalidBuffer` when part of `destination` cannot be written (or part of
    ///   `source` cannot be read), with ``ProcessMemoryError/localAddress`` the first such byte and
    ///   `bytesTransferred` the bytes copied before it; `.invalidArguments` when a non-empty
    ///   `source` has no base address.
    public static func copy(_ source: UnsafeRawBufferPointer, to destination: UnsafeMutableRawPointer) throws(ProcessMemoryError) {
        guard source.count > 0 else { return }
        guard let from = source.baseAddress else { throw .invalid("the source buffer is null") }
        let pid = getpid()
        let call = SystemCall(.processVMReadv, "self")
        var done = 0
        var failure: Errno?
        while done < source.count {
            let want = min(source.count - done, AddressSpace.maxChunk)
            let remote = UInt64(UInt(bitPattern: from + done))
            switch Sys.processVMRead(pid: pid, local: destination + done, remote: remote, count: want) {
            case .success(let got) where got > 0:
                done += got
                continue
            case .success:
                failure = nil
            case .failure(.notPermitted), .failure(.noFunction):
                return try checkedCopy(UnsafeRawBufferPointer(rebasing: source[done...]), to: destination + done, before: done)
            case .failure(let error):
                failure = error
            }
            break
        }
        guard done < source.count else { return }
        let remaining = source.count - done
        let window = UInt64(min(remaining, Int(AddressSpace.pageSize)))
        let storeAt = UInt64(UInt(bitPattern: destination)) &+ UInt64(done)
        let loadAt = UInt64(UInt(bitPattern: from)) &+ UInt64(done)
        let fault = LocalBuffer.firstFault(in: storeAt..<(storeAt &+ window), use: .store)
            ?? LocalBuffer.firstFault(in: loadAt..<(loadAt &+ window), use: .load)
        let message = fault.map { "the buffer at 0x\(String($0.address, radix: 16)) could not be used: \($0.reason)" }
            ?? "the kernel could not copy within this process (\(failure.map { "\($0)" } ?? "no progress"))"
        throw ProcessMemoryError(.invalidBuffer, bytesTransferred: done, systemCall: call, errno: failure,
                                 localAddress: fault?.address ?? storeAt, message: message)
    }

    /// The fallback of ``copy(_:to:)``: check both buffers against the map, then `memcpy`.
    private static func checkedCopy(_ source: UnsafeRawBufferPointer, to destination: UnsafeMutableRawPointer,
                                    before: Int) throws(ProcessMemoryError) {
        guard let from = source.baseAddress else { return }
        let storeAt = UInt64(UInt(bitPattern: destination))
        let loadAt = UInt64(UInt(bitPattern: from))
        let count = UInt64(source.count)
        if let fault = LocalBuffer.firstFault(in: storeAt..<(storeAt &+ count), use: .store)
            ?? LocalBuffer.firstFault(in: loadAt..<(loadAt &+ count), use: .load) {
            throw ProcessMemoryError(.invalidBuffer, bytesTransferred: before, localAddress: fault.address,
                                     message: "the buffer at 0x\(String(fault.address, radix: 16)) could not be used: \(fault.reason); nothing was copied")
        }
        memcpy(destination, from, source.count)
    }
}
