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
}
