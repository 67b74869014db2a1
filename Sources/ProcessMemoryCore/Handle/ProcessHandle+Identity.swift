import Glibc

extension ProcessHandle {
    /// The process's start time (field 22 of `/proc/PID/stat`, clock ticks since boot): with the
    /// pid it names one process for the system's whole uptime, so saved match sets can be checked.
    ///
    /// The corresponding C call is `openat(procfd, "stat")` and `read(2)`.
    public func processStartTime() throws(ProcessMemoryError) -> UInt64 {
        try box.use(pid: pid) { (fds) throws(ProcessMemoryError) -> UInt64 in
            guard case .success(let bytes) = Sys.readFile(fds.procDir, "stat"), let stat = ProcStat.parse(bytes) else {
                throw lifecycleError(address: nil, bytesTransferred: 0, systemCall: SystemCall(.read, "/proc/\(pid)/stat"), errno: nil)
            }
            return stat.startTime
        }
    }

    /// The path of the main executable (`readlinkat(procfd, "exe")`), or nil when it cannot be read.
    public func executablePath() -> String? {
        try? box.use(pid: pid) { (fds) throws(ProcessMemoryError) -> String? in
            guard case .success(var path) = Sys.readLink(fds.procDir, "exe") else { return nil }
            if path.hasSuffix(" (deleted)") { path.removeLast(" (deleted)".count) }
            return path
        }
    }

    /// The command line: the arguments as the process last set them, split at NUL bytes. Empty for
    /// a zombie and for a kernel thread.
    ///
    /// Read through the handle's `/proc/PID` directory descriptor, so it is this process's even if
    /// the PID has been reused. Invalid UTF-8 is repaired (U+FFFD).
    /// - Throws: `.badHandle` when closed; `.badState`, `.execed` or a gone state when the file
    ///   cannot be read.
    ///
    /// The corresponding C calls are `openat(procfd, "cmdline")` and `read(2)`.
    public func commandLine() throws(ProcessMemoryError) -> [String] {
        let bytes = try readProcFile("cmdline", limit: 1 << 20)
        var arguments = bytes.split(separator: 0, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        if arguments.last == "" { arguments.removeLast() }
        return arguments
    }

    /// The process's name, state, thread count, IDs and memory use from `/proc/PID/status`.
    ///
    /// Read through the handle's `/proc/PID` directory descriptor, so it is this process's even if
    /// the PID has been reused.
    /// - Throws: `.badHandle` when closed; `.badState`, `.execed` or a gone state when the file
    ///   cannot be read.
    ///
    /// The corresponding C calls are `openat(procfd, "status")` and `read(2)`.
    public func status() throws(ProcessMemoryError) -> ProcessStatus {
        ProcessStatus.parse(try readProcFile("status", limit: 1 << 20))
    }

    /// The whole file `name` in the handle's `/proc/PID` directory.
    private func readProcFile(_ name: String, limit: Int) throws(ProcessMemoryError) -> [UInt8] {
        try box.use(pid: pid) { (fds) throws(ProcessMemoryError) -> [UInt8] in
            switch Sys.readFile(fds.procDir, name, limit: limit) {
            case .success(let bytes): return bytes
            case .failure(let error):
                throw lifecycleError(address: nil, bytesTransferred: 0,
                                     systemCall: SystemCall(.read, "/proc/\(pid)/\(name)"), errno: error)
            }
        }
    }
}
