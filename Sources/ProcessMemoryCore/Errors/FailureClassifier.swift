import Glibc
import SystemPackage

/// How an access was attempted; decides which conditions count as failures.
package enum AccessKind: Sendable {
    case read(ReadMode)
    case write(WriteMode)

    package var verb: String {
        switch self {
        case .read: return "read"
        case .write: return "written"
        }
    }
}

/// Why a transfer stopped, as the system call reported it.
package struct RawStop: Sendable {
    /// The call that stopped.
    package var systemCall: SystemCall
    /// Its errno, or `nil` for a short count.
    package var errno: Errno?
    /// The call returned end-of-file: the address space the descriptor was bound to is gone.
    package var addressSpaceGone = false
    /// The transfer was cut before a range registered with userfaultfd, for this reason.
    package var userfaultfd: String?

    package init(systemCall: SystemCall, errno: Errno?, addressSpaceGone: Bool = false, userfaultfd: String? = nil) {
        self.systemCall = systemCall
        self.errno = errno
        self.addressSpaceGone = addressSpaceGone
        self.userfaultfd = userfaultfd
    }
}

extension ProcessHandle {
    /// Turns a stopped transfer into the documented condition, by looking at the map at `address`
    /// (the first byte that was not transferred).
    ///
    /// Linux says only `EFAULT` (process_vm_readv) or `EIO` (/proc/PID/mem) for every inaccessible
    /// address; the map, the backing file's size and pagemap's guard bit tell the cases apart.
    func classify(_ fds: HandleDescriptors, at address: UInt64, kind: AccessKind, transferred: Int,
                  stop: RawStop) -> ProcessMemoryError {
        classifyWithSpan(fds, at: address, kind: kind, transferred: transferred, stop: stop).error
    }

    /// As ``classify(_:at:kind:transferred:stop:)``, plus the address range over which the same
    /// verdict holds (the hole up to the next mapping, the whole PROT_NONE region, …), so a batch can
    /// classify many failing entries with one look at the map. `nil` when it holds for `address` only.
    func classifyWithSpan(_ fds: HandleDescriptors, at address: UInt64, kind: AccessKind, transferred: Int,
                          stop: RawStop) -> (error: ProcessMemoryError, span: Range<UInt64>?) {
        func error(_ code: ProcessMemoryError.Code, _ message: String, denial: AccessDenialReason? = nil,
                   span: Range<UInt64>? = nil) -> (error: ProcessMemoryError, span: Range<UInt64>?) {
            (ProcessMemoryError(code, pid: pid, address: address, bytesTransferred: transferred,
                                systemCall: stop.systemCall, errno: stop.errno, accessDenial: denial, message: message), span)
        }
        let hex = "0x" + String(address, radix: 16)
        if stop.addressSpaceGone || stop.errno == .noSuchProcess || AddressSpaceProbe.probe(fds.mem) == .gone
            || processExited(fds) {
            return (lifecycleError(address: address, bytesTransferred: transferred, systemCall: stop.systemCall, errno: stop.errno), nil)
        }
        if stop.errno == .badAddress && (stop.systemCall.name == .pread || stop.systemCall.name == .pwrite) {
            // /proc/PID/mem reports a remote fault as EIO and a fault on our own buffer as EFAULT.
            // Transfers into a caller's buffer ask `localFault` first, which names the address.
            return error(.invalidBuffer, "the local buffer could not be \(kind.verb == "read" ? "written" : "read") by the kernel (EFAULT)")
        }
        if let reason = stop.userfaultfd {
            return error(.notSupported, "\(hex) is \(reason)")
        }
        switch stop.errno {
        case .notPermitted?, .permissionDenied?:
            let reason = AccessDiagnosis.diagnose(pid: pid, procDir: fds.procDir)
            return error(.accessDenied, "access was denied: \(reason)", denial: reason)
        case .noMemory?:
            return error(.noMemory, "the kernel ran out of memory while copying")
        default: break
        }
        if case .write = kind, AddressSpace.vsyscallRange.contains(address) {
            return error(.accessDenied, "[vsyscall] is protected memory and is never written",
                         denial: .protectedMemory("[vsyscall]"))
        }
        if address >= AddressSpace.userLimit {
            return error(.notFound, "\(hex) lies outside the user address space", span: address..<UInt64.max)
        }
        let region: MemoryRegion?
        do { region = try lookUpRegion(fds, address) } catch { return (error, nil) }
        guard let region else {
            let next = Self.nextRegionStart(fds.maps, after: address) ?? AddressSpace.userLimit
            return error(.notFound, "nothing is mapped at \(hex)", span: AddressSpace.pageStart(address)..<max(next, address + 1))
        }
        let whole = region.start..<region.end
        let name = region.path ?? region.kind.rawValue
        if case .write = kind, region.isProtectedFromWrites {
            return error(.accessDenied, "\(name) is protected memory and is never written", denial: .protectedMemory(name), span: whole)
        }
        if region.kind == .vvar {
            return error(.protectionFailure, "\(name) at \(hex) holds kernel data that no other process can access", span: whole)
        }
        if region.kind == .secretMemory {
            return error(.protectionFailure, "\(hex) is secret memory (memfd_secret), which no other process can access", span: whole)
        }
        if region.hasBackingObject, let size = backingObjectSize(fds, region),
           region.offset &+ (address - region.start) >= size {
            return error(.outOfRange, "\(hex) lies past the end of \(name) (size \(size)), in the mapping's SIGBUS area",
                         span: AddressSpace.pageStart(address)..<region.end)
        }
        if isGuardPage(fds, address) {
            return error(.protectionFailure, "\(hex) is a guard page (MADV_GUARD_INSTALL)")
        }
        switch kind {
        case .read(.respectingProtections) where !region.permissions.contains(.read):
            return error(.protectionFailure, "\(hex) is mapped \(region.permissions) and is not readable", span: whole)
        case .write(.respectingProtections) where !region.permissions.contains(.write):
            return error(.protectionFailure, "\(hex) is mapped \(region.permissions) and is not writable", span: whole)
        case .write where region.isShared && !region.permissions.contains(.write):
            return error(.accessDenied, "\(hex) is in a shared mapping without write permission; writing it would change \(name) itself",
                         denial: .protectedMemory("a shared mapping without write permission"), span: whole)
        case .write(.debugger) where !region.permissions.contains(.write) && !AddressSpace.forcedWritesAllowed:
            return error(.notSupported, "this kernel does not let /proc/PID/mem write read-only pages (proc_mem.force_override); \(hex) is mapped \(region.permissions)")
        default:
            if stop.errno == .badAddress {
                // process_vm_readv says EFAULT for either side. The remote side looks accessible, and
                // a caller's buffer was already checked (`localFault`): the kernel gave no reason.
                return error(.io, "the kernel could not copy at \(hex) (EFAULT), although \(name) (\(region.permissions)) looks accessible")
            }
            return error(.io, "the kernel refused to access \(hex) in \(name) (\(region.permissions)) without saying why")
        }
    }
}
