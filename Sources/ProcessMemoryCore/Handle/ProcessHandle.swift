import Glibc
import SystemPackage

/// A handle to one live process: its memory, its map and its state, bound to that process for the
/// handle's whole life.
///
/// Opening a handle opens a pidfd (`pidfd_open(2)`), `/proc/PID` as a directory, and
/// `/proc/PID/mem` and `/proc/PID/maps`, and checks access once, up front. The mem and maps
/// descriptors stay bound to the address space that existed at open time, so no operation can reach
/// another process after the PID is reused; calls that name the process by PID
/// (`process_vm_readv(2)`) are checked against the pidfd and the mem descriptor afterwards, and their
/// result is discarded if the process changed underneath.
///
/// A handle is safe to share between threads. ``close()`` releases the descriptors once no operation
/// is using them; later operations fail with ``ProcessMemoryError/Code/badHandle``.
public final class ProcessHandle: Sendable {
    /// The process ID the handle was opened on.
    public let pid: Int32
    /// The rights this handle carries.
    public let rights: AccessRights
    let box: DescriptorBox
    /// Whether `process_vm_readv(2)` was allowed at open time (seccomp or a container can forbid it
    /// while `/proc/PID/mem` works).
    let vmReadvAllowed: Bool
    /// `AddressSpace.userLimit`, kept here so that every read's argument check is a compare, not
    /// a call into the lazy global's initialiser check.
    let userLimit: UInt64

    init(pid: Int32, rights: AccessRights, descriptors: HandleDescriptors, vmReadvAllowed: Bool) {
        self.pid = pid
        self.rights = rights
        self.box = DescriptorBox(descriptors)
        self.vmReadvAllowed = vmReadvAllowed
        self.userLimit = AddressSpace.userLimit
    }

    /// Opens the process `pid` with `rights`, checking access up front.
    ///
    /// - Parameters:
    ///   - pid: A process ID (or a thread ID, which reaches the same address space).
    ///   - rights: `.read`, or `.readWrite` to allow writes.
    /// - Throws: ``ProcessMemoryError`` with `.invalidArguments` (pid ≤ 0 or no rights),
    ///   `.notFound` (no such process), `.accessDenied` with an ``AccessDenialReason``,
    ///   `.wrongType` (a kernel thread: no address space), `.badState` (exiting or zombie).
    ///
    /// The corresponding C calls are `pidfd_open`, `open("/proc/PID/mem")` and `open("/proc/PID/maps")`.
    public init(pid: Int32, rights: AccessRights = .read) throws(ProcessMemoryError) {
        guard pid > 0 else { throw .invalid("a process ID must be positive, not \(pid)", pid: pid) }
        guard rights.contains(.read) || rights.contains(.write) else {
            throw .invalid("a handle needs at least one right", pid: pid)
        }
        let descriptors = try Self.openDescriptors(pid: pid, rights: rights)
        self.pid = pid
        self.rights = rights
        self.box = DescriptorBox(descriptors)
        self.userLimit = AddressSpace.userLimit
        // process_vm_readv of one byte at address 0: EFAULT means the access check passed.
        var byte: UInt8 = 0
        switch Sys.processVMRead(pid: pid, local: &byte, remote: 0, count: 1) {
        case .failure(.notPermitted), .failure(.noFunction): self.vmReadvAllowed = false
        default: self.vmReadvAllowed = true
        }
        // Everything was opened while the pidfd's process was alive, so all of it is that process.
        let state = currentStateIgnoringClose()
        guard state == .alive else {
            box.close()
            throw .gone(state, pid: pid)
        }
    }

    private static func openDescriptors(pid: Int32, rights: AccessRights) throws(ProcessMemoryError) -> HandleDescriptors {
        var pidfd: CInt
        switch Sys.pidfdOpen(pid) {
        case .success(let fd): pidfd = fd
        case .failure(.noSuchProcess):
            throw ProcessMemoryError(.notFound, pid: pid, systemCall: SystemCall(.pidfdOpen), errno: .noSuchProcess,
                                     message: "no process has pid \(pid)")
        case .failure(let error) where error == .noSuchFileOrDirectory || error == .invalidArgument:
            // A thread ID: pidfd_open needs PIDFD_THREAD (O_EXCL) for it on Linux 6.9+.
            switch Sys.pidfdOpen(pid, flags: UInt32(O_EXCL)) {
            case .success(let fd): pidfd = fd
            case .failure(let error):
                throw ProcessMemoryError(.notFound, pid: pid, systemCall: SystemCall(.pidfdOpen), errno: error,
                                         message: "no process or thread has id \(pid)")
            }
        case .failure(let error):
            throw ErrnoMapping.openFailure(error, systemCall: SystemCall(.pidfdOpen), pid: pid)
        }
        var opened: [CInt] = [pidfd]
        func fail(_ error: ProcessMemoryError) -> ProcessMemoryError {
            opened.forEach { Sys.close($0) }
            return error
        }
        let procDir: CInt
        switch Sys.openat(AT_FDCWD, "/proc/\(pid)", O_RDONLY | O_DIRECTORY) {
        case .success(let fd): procDir = fd
        case .failure(let error):
            throw fail(ErrnoMapping.openFailure(error, systemCall: SystemCall(.open, "/proc/\(pid)"), pid: pid))
        }
        opened.append(procDir)
        // A kernel thread has no address space to read.
        if case .success(let bytes) = Sys.readFile(procDir, "stat"), let stat = ProcStat.parse(bytes) {
            if stat.isKernelThread {
                throw fail(ProcessMemoryError(.wrongType, pid: pid,
                                              message: "pid \(pid) is a kernel thread and has no user address space"))
            }
            if stat.state == "Z" || stat.state == "X" { throw fail(.gone(.zombie, pid: pid)) }
        }
        let memFlags = rights.contains(.write) ? O_RDWR : O_RDONLY
        let mem: CInt
        switch Sys.openat(procDir, "mem", memFlags) {
        case .success(let fd): mem = fd
        case .failure(let error):
            throw fail(ErrnoMapping.openFailure(error, systemCall: SystemCall(.open, "/proc/\(pid)/mem"), pid: pid, procDir: procDir))
        }
        opened.append(mem)
        let maps: CInt
        switch Sys.openat(procDir, "maps", O_RDONLY) {
        case .success(let fd): maps = fd
        case .failure(let error):
            throw fail(ErrnoMapping.openFailure(error, systemCall: SystemCall(.open, "/proc/\(pid)/maps"), pid: pid, procDir: procDir))
        }
        return HandleDescriptors(pidfd: pidfd, procDir: procDir, mem: mem, maps: maps, pagemap: openPagemap(procDir))
    }

    /// `/proc/PID/pagemap`, or -1: without it a protect-mode read asks smaps instead (slower).
    static func openPagemap(_ procDir: CInt) -> CInt {
        if case .success(let fd) = Sys.openat(procDir, "pagemap", O_RDONLY) { return fd }
        return -1
    }

    /// Releases the descriptors (once no operation in another thread is using them). Idempotent.
    public func close() { box.close() }

    /// Whether ``close()`` has been called.
    public var isClosed: Bool { box.isClosed }

    /// A new handle on the same process and address space with `rights`, which must be a subset of
    /// this handle's rights (a duplicate never gains rights).
    ///
    /// - Throws: `.accessDenied` when asking for a right this handle lacks; `.badHandle` when closed;
    ///   `.execed` or `.badState` when the address space is gone.
    ///
    /// The corresponding C calls are `fcntl(F_DUPFD_CLOEXEC)` and, to drop the write right,
    /// `open("/proc/PID/mem", O_RDONLY)`.
    public func duplicate(rights newRights: AccessRights? = nil) throws(ProcessMemoryError) -> ProcessHandle {
        let wanted = newRights ?? rights
        guard wanted.isSubset(of: rights) else {
            throw ProcessMemoryError(.accessDenied, pid: pid, accessDenial: .handleLacksRight,
                                     message: "a duplicate cannot gain rights: this handle has \(rights), not \(wanted)")
        }
        guard !wanted.isEmpty else { throw .invalid("a handle needs at least one right", pid: pid) }
        let pid = self.pid
        let descriptors: HandleDescriptors = try box.use(pid: pid) { (fds) throws(ProcessMemoryError) -> HandleDescriptors in
            var copies: [CInt] = []
            func dup(_ fd: CInt) throws(ProcessMemoryError) -> CInt {
                switch Sys.duplicate(fd) {
                case .success(let copy): copies.append(copy); return copy
                case .failure(let error):
                    copies.forEach { Sys.close($0) }
                    throw ErrnoMapping.resourceFailure(error, systemCall: SystemCall(.fcntl, "F_DUPFD_CLOEXEC"), pid: pid)
                }
            }
            let pidfd = try dup(fds.pidfd)
            let procDir = try dup(fds.procDir)
            let maps = try dup(fds.maps)
            let mem: CInt
            if rights.contains(.write) && !wanted.contains(.write) {
                switch Sys.openat(fds.procDir, "mem", O_RDONLY) {
                case .success(let fd): mem = fd
                case .failure(let error):
                    copies.forEach { Sys.close($0) }
                    throw ErrnoMapping.openFailure(error, systemCall: SystemCall(.open, "/proc/\(pid)/mem"), pid: pid, procDir: fds.procDir)
                }
                // The new descriptor is bound to whatever address space is current now; it is ours only
                // if our own descriptor still reaches the original one afterwards.
                if AddressSpaceProbe.probe(fds.mem) == .gone {
                    Sys.close(mem)
                    copies.forEach { Sys.close($0) }
                    throw lifecycleError(address: nil, bytesTransferred: 0, systemCall: nil, errno: nil)
                }
            } else {
                mem = try dup(fds.mem)
            }
            let pagemap = fds.pagemap >= 0 ? ((try? dup(fds.pagemap)) ?? -1) : -1
            return HandleDescriptors(pidfd: pidfd, procDir: procDir, mem: mem, maps: maps, pagemap: pagemap)
        }
        return ProcessHandle(pid: pid, rights: wanted, descriptors: descriptors, vmReadvAllowed: vmReadvAllowed)
    }

    /// Rebinds the handle to the process's current address space after it called execve(2).
    ///
    /// Operations fail with `.execed` from the moment an exec is detected until this is called.
    /// - Throws: `.badHandle` when closed, `.badState` when the process has exited, `.accessDenied`
    ///   when the new image may not be opened (for example a setuid program).
    ///
    /// The corresponding C call is `openat(procfd, "mem")`.
    public func reopen() throws(ProcessMemoryError) {
        let pid = self.pid
        let rights = self.rights
        let (mem, maps, pagemap) = try box.peek(pid: pid) { (fds, _) throws(ProcessMemoryError) -> (CInt, CInt, CInt) in
            let memFlags = rights.contains(.write) ? O_RDWR : O_RDONLY
            let mem: CInt
            switch Sys.openat(fds.procDir, "mem", memFlags) {
            case .success(let fd): mem = fd
            case .failure(let error):
                if error == .noSuchProcess || error == .noSuchFileOrDirectory { throw .gone(stateAfterExit(fds), pid: pid) }
                throw ErrnoMapping.openFailure(error, systemCall: SystemCall(.open, "/proc/\(pid)/mem"), pid: pid, procDir: fds.procDir)
            }
            let maps: CInt
            switch Sys.openat(fds.procDir, "maps", O_RDONLY) {
            case .success(let fd): maps = fd
            case .failure(let error):
                Sys.close(mem)
                throw ErrnoMapping.openFailure(error, systemCall: SystemCall(.open, "/proc/\(pid)/maps"), pid: pid, procDir: fds.procDir)
            }
            if AddressSpaceProbe.probe(mem) == .gone || processExited(fds) {
                Sys.close(mem)
                Sys.close(maps)
                throw .gone(processExited(fds) ? stateAfterExit(fds) : .exiting, pid: pid)
            }
            return (mem, maps, Self.openPagemap(fds.procDir))
        }
        box.replace(mem: mem, maps: maps, pagemap: pagemap)
    }

    /// The state of the process: alive, execed, exiting, zombie or gone.
    ///
    /// Costs one `poll(2)` on the pidfd and one 1-byte `pread(2)` on the mem descriptor.
    /// - Throws: `.badHandle` when the handle is closed.
    public func state() throws(ProcessMemoryError) -> ProcessState {
        try box.peek(pid: pid) { (fds, execed) throws(ProcessMemoryError) -> ProcessState in
            execed ? (processExited(fds) ? stateAfterExit(fds) : .execed) : liveState(fds)
        }
    }

    package func currentStateIgnoringClose() -> ProcessState {
        (try? state()) ?? .gone
    }

    /// The state, computed from the descriptors; records an exec so later operations fail.
    func liveState(_ fds: HandleDescriptors) -> ProcessState {
        if processExited(fds) { return stateAfterExit(fds) }
        if AddressSpaceProbe.probe(fds.mem) == .alive { return .alive }
        // Our address space is gone but the process is not: an exec, or the window in which an
        // exiting process's memory is torn down before it becomes a zombie.
        if case .success(let fresh) = Sys.openat(fds.procDir, "mem", O_RDONLY) {
            defer { Sys.close(fresh) }
            if AddressSpaceProbe.probe(fresh) == .alive && !processExited(fds) {
                box.markExeced()
                return .execed
            }
        }
        return processExited(fds) ? stateAfterExit(fds) : .exiting
    }

    func processExited(_ fds: HandleDescriptors) -> Bool {
        switch Sys.pollNow(fds.pidfd) {
        case .success(let events): return events != 0
        case .failure: return true
        }
    }

    func stateAfterExit(_ fds: HandleDescriptors) -> ProcessState {
        if case .success(let bytes) = Sys.readFile(fds.procDir, "stat"), let stat = ProcStat.parse(bytes),
           stat.state == "Z" {
            return .zombie
        }
        return .gone
    }

    /// The error for an operation whose address space went away under it.
    package func lifecycleError(address: UInt64?, bytesTransferred: Int, systemCall: SystemCall?, errno: Errno?) -> ProcessMemoryError {
        let state = currentStateIgnoringClose()
        if state == .execed {
            return .execed(pid: pid, address: address, bytesTransferred: bytesTransferred, systemCall: systemCall)
        }
        if state == .alive {
            return ProcessMemoryError(.badState, pid: pid, address: address, bytesTransferred: bytesTransferred,
                                      systemCall: systemCall, errno: errno,
                                      message: "the process changed while it was being accessed; retry")
        }
        return .gone(state, pid: pid, address: address, bytesTransferred: bytesTransferred, systemCall: systemCall, errno: errno)
    }
}

/// Whether a /proc/PID/mem descriptor still reaches its address space.
package enum AddressSpaceProbe {
    package enum Outcome { case alive, gone }

    /// A 1-byte pread(2) at address 0: the kernel answers `EIO` (or 1 byte) while the address space
    /// lives and 0 (end of file) once it has been released by exit or exec.
    package static func probe(_ mem: CInt) -> Outcome {
        var byte: UInt8 = 0
        switch Sys.pread(mem, &byte, 1, at: 0) {
        case .success(0): return .gone
        case .success: return .alive
        case .failure(.ioError): return .alive
        case .failure: return .gone
        }
    }
}
