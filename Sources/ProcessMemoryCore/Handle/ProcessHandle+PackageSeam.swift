import Glibc
import SystemPackage

/// The seam between the core and the tool modules (objects, scanning, dumps): what they may do
/// with a handle beyond its public API, each operation done here under the handle's descriptor
/// guard, so no tool module ever holds the guard or a raw descriptor of the handle (SE-0386
/// `package` access; see ARCHITECTURE.md).
extension ProcessHandle {
    // MARK: /proc/PID files, through the directory descriptor opened with the handle

    /// Reads the whole file `/proc/PID/<name>` through the handle's directory descriptor (so never
    /// another process's after PID reuse): `openat(2)` and `read(2)` to end of file.
    ///
    /// - Throws: `.badState`/`.execed` when the process is gone, or the mapped open failure.
    package func procFile(_ name: String, limit: Int = 64 << 20) throws(ProcessMemoryError) -> [UInt8] {
        let pid = self.pid
        return try box.peek(pid: pid) { (fds, _) throws(ProcessMemoryError) -> [UInt8] in
            switch Sys.readFile(fds.procDir, name, limit: limit) {
            case .success(let bytes): return bytes
            case .failure(let error) where error == .noSuchProcess || error == .noSuchFileOrDirectory:
                throw lifecycleError(address: nil, bytesTransferred: 0, systemCall: SystemCall(.read, "/proc/\(pid)/\(name)"), errno: error)
            case .failure(let error):
                throw ErrnoMapping.openFailure(error, systemCall: SystemCall(.open, "/proc/\(pid)/\(name)"), pid: pid, procDir: fds.procDir)
            }
        }
    }

    /// Opens `/proc/PID/<name>` (a file, `map_files/START-END`, `fd/N`, `task`) relative to the
    /// handle's directory descriptor with `openat(2)`; the caller owns the descriptor.
    package func openProcFile(_ name: String, _ flags: CInt = O_RDONLY) throws(ProcessMemoryError) -> Result<FileDescriptor, Errno> {
        try box.peek(pid: pid) { (fds, _) throws(ProcessMemoryError) -> Result<FileDescriptor, Errno> in
            Sys.openat(fds.procDir, name, flags).map(FileDescriptor.init(rawValue:))
        }
    }

    /// `readlinkat(2)` of `/proc/PID/<name>` (`exe`, `fd/N`, `map_files/…`).
    package func procLink(_ name: String) throws(ProcessMemoryError) -> Result<String, Errno> {
        try box.peek(pid: pid) { (fds, _) throws(ProcessMemoryError) -> Result<String, Errno> in
            Sys.readLink(fds.procDir, name)
        }
    }

    /// `fstatat(2)` of `/proc/PID/<name>`, following the link (what a `fd/N` or `map_files` entry names).
    package func procStat(_ name: String) throws(ProcessMemoryError) -> Result<stat, Errno> {
        try box.peek(pid: pid) { (fds, _) throws(ProcessMemoryError) -> Result<stat, Errno> in
            Sys.stat(fds.procDir, name)
        }
    }

    /// Whether `/proc/PID/<name>` (a `map_files/START-END` entry), followed, is a DAX file:
    /// `statx(2)` with `STATX_ATTR_DAX`.
    package func procIsDAX(_ name: String) throws(ProcessMemoryError) -> Result<Bool, Errno> {
        try box.peek(pid: pid) { (fds, _) throws(ProcessMemoryError) -> Result<Bool, Errno> in
            Sys.isDAX(fds.procDir, name)
        }
    }

    /// The names in the directory `/proc/PID/<name>` (`fd`, `task`).
    package func procDirectoryEntries(_ name: String) throws(ProcessMemoryError) -> Result<[String], Errno> {
        try box.peek(pid: pid) { (fds, _) throws(ProcessMemoryError) -> Result<[String], Errno> in
            Sys.listDirectory(fds.procDir, name)
        }
    }

    /// A copy of the target's descriptor `number`, made with `pidfd_getfd(2)` on the handle's pidfd.
    package func copyTargetDescriptor(_ number: CInt) throws(ProcessMemoryError) -> Result<FileDescriptor, Errno> {
        try box.use(pid: pid) { (fds) throws(ProcessMemoryError) -> Result<FileDescriptor, Errno> in
            Sys.pidfdGetfd(fds.pidfd, number).map(FileDescriptor.init(rawValue:))
        }
    }

    /// Duplicates of the pidfd and the `/proc/PID` directory descriptor (`F_DUPFD_CLOEXEC`), for an
    /// operation that must outlive a `close()` of the handle, such as a stopped process that must
    /// always be resumed.
    package func duplicateIdentity() throws(ProcessMemoryError) -> (pidfd: FileDescriptor, procDir: FileDescriptor) {
        let pid = self.pid
        return try box.use(pid: pid) { (fds) throws(ProcessMemoryError) -> (pidfd: FileDescriptor, procDir: FileDescriptor) in
            let pidfd: CInt
            switch Sys.duplicate(fds.pidfd) {
            case .success(let fd): pidfd = fd
            case .failure(let error): throw ErrnoMapping.resourceFailure(error, systemCall: SystemCall(.fcntl, "F_DUPFD_CLOEXEC"), pid: pid)
            }
            switch Sys.duplicate(fds.procDir) {
            case .success(let procDir): return (FileDescriptor(rawValue: pidfd), FileDescriptor(rawValue: procDir))
            case .failure(let error):
                Sys.close(pidfd)
                throw ErrnoMapping.resourceFailure(error, systemCall: SystemCall(.fcntl, "F_DUPFD_CLOEXEC"), pid: pid)
            }
        }
    }

    // MARK: Transfers that report where and why they stopped

    /// Reads up to `count` bytes at `address` in `mode` and says why it stopped short, without
    /// classifying the stop: the loop under ``read(from:into:mode:)``, for callers that resume past
    /// failures (dumps, diffs). One `pread(2)` on `/proc/PID/mem` or `process_vm_readv(2)` per
    /// chunk of at most 1 GiB.
    ///
    /// `userfaultfdChecked`: the caller has already left out every range registered with
    /// userfaultfd and the target cannot register more meanwhile (it is stopped), so a protect-mode
    /// read skips the per-call check of `UserfaultfdGuard` (a pagemap query, and `/proc/PID/smaps`
    /// whenever a page is unpopulated).
    package func transfer(at address: UInt64, into base: UnsafeMutableRawPointer, count: Int,
                          mode: ReadMode, userfaultfdChecked: Bool = false) throws(ProcessMemoryError) -> (count: Int, stop: RawStop?) {
        try box.use(pid: pid) { (fds) throws(ProcessMemoryError) -> (count: Int, stop: RawStop?) in
            let (done, stop) = rawRead(fds, address: address, into: base, count: count, mode: mode,
                                       userfaultfdChecked: userfaultfdChecked)
            return (done, stop)
        }
    }

    /// Whether `process_vm_readv(2)` was allowed when the handle was opened (seccomp or a
    /// container can forbid it while `/proc/PID/mem` works).
    package var canUseProcessVMReadv: Bool { vmReadvAllowed }

    /// The documented condition for a transfer that stopped at `address`, and the range over which
    /// the same verdict holds (the hole up to the next mapping, the whole PROT_NONE region), so a
    /// caller can skip it in one step. See ``classifyWithSpan(_:at:kind:transferred:stop:)``.
    package func classifyStop(at address: UInt64, kind: AccessKind, transferred: Int,
                              stop: RawStop) throws(ProcessMemoryError) -> (error: ProcessMemoryError, span: Range<UInt64>?) {
        try box.use(pid: pid) { (fds) throws(ProcessMemoryError) -> (error: ProcessMemoryError, span: Range<UInt64>?) in
            classifyWithSpan(fds, at: address, kind: kind, transferred: transferred, stop: stop)
        }
    }
}
