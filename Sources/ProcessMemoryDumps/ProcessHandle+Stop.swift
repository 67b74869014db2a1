import Glibc
import SystemPackage
import ProcessMemoryCore

extension ProcessHandle {
    /// Stops the process with `method` and runs `body`, resuming the process afterwards on every
    /// path: normal return, a thrown error, and an interrupted caller that returns early.
    ///
    /// - Throws: what ``stop(_:)`` throws, and what `body` throws.
    public func withStopped<R>(_ method: StopMethod, _ body: (StoppedProcess) throws -> R) throws -> R {
        let stopped = try stop(method)
        defer { stopped.resume() }
        return try body(stopped)
    }

    /// Stops the process with `method`; call ``StoppedProcess/resume()`` (deinit also does).
    ///
    /// - Throws: `.accessDenied` (not allowed to signal or trace, another tracer attached, Yama),
    ///   `.notSupported` (no own cgroup v2 for the freezer), `.badState` (the process exited, or a
    ///   thread did not stop within 5 s), `.badHandle`.
    ///
    /// The process is never this process or one of its ancestors (`.invalidArguments`). With
    /// ``StopMethod/signal`` and ``StopMethod/cgroupFreezer`` a guardian process (``StopGuardian``)
    /// resumes the target if the caller dies while it is stopped; ptrace stops end with the tracer.
    ///
    /// The corresponding C calls are `pidfd_send_signal(SIGSTOP)`, `ptrace(PTRACE_SEIZE)` +
    /// `ptrace(PTRACE_INTERRUPT)` + `waitpid(__WALL | WNOHANG)` for at most 5 s, or a write of `1`
    /// to `cgroup.freeze`; `fork` for the guardian.
    public func stop(_ method: StopMethod) throws(ProcessMemoryError) -> StoppedProcess {
        let pid = self.pid
        if method != .none { try StopSafety.refuseSelfOrAncestor(pid, method: method) }
        let (pidfd, procDir) = try duplicateIdentity()
        func fail(_ error: ProcessMemoryError) -> ProcessMemoryError {
            pidfd.closeQuietly()
            procDir.closeQuietly()
            return error
        }
        switch method {
        case .none:
            return StoppedProcess(pid: pid, method: .none, threads: ThreadList.tids(procDir, pid: pid),
                                  wasAlreadyStopped: false, pidfd: pidfd, procDir: procDir)
        case .signal:
            let already = ThreadList.allStopped(procDir)
            // Started before the stop, so that no moment exists at which our death leaves it stopped.
            var guardian: StopGuardian?
            if !already {
                do throws(ProcessMemoryError) { guardian = try StopGuardian.start(pid: pid, pidfd: pidfd, freezeFile: nil) } catch { throw fail(error) }
            }
            if !already, case .failure(let error) = pidfd.sendSignal(SIGSTOP) {
                guardian?.release()
                throw fail(signalError(error, procDir: procDir))
            }
            let stopped = StoppedProcess(pid: pid, method: .signal, threads: ThreadList.tids(procDir, pid: pid),
                                         wasAlreadyStopped: already, pidfd: pidfd, procDir: procDir, guardian: guardian)
            // Every thread reaches the group stop at its next return to user space.
            guard ThreadList.waitUntil(deadlineSeconds: 5, { ThreadList.allStopped(procDir) }) else {
                stopped.resume()
                throw stopFailure(procDir: procDir, pidfd: pidfd, what: "SIGSTOP")
            }
            return stopped
        case .ptrace:
            return try PtraceStopper.stop(pid: pid, pidfd: pidfd, procDir: procDir, handle: self)
        case .cgroupFreezer:
            do throws(ProcessMemoryError) {
                let freezer = try CgroupFreezer.ownCgroup(of: pid, procDir: procDir)
                let already = CgroupFreezer.isFrozen(freezer)
                let guardian = already ? nil : try StopGuardian.start(pid: pid, pidfd: pidfd, freezeFile: freezer.freezeFile)
                if !already, case .failure(let error) = CgroupFreezer.write(freezer.freezeFile, "1") {
                    guardian?.release()
                    throw ProcessMemoryError(ErrnoMapping.code(for: error, systemCall: SystemCall(.write)), pid: pid,
                                             systemCall: SystemCall(.write, freezer.freezeFile), errno: error,
                                             message: "the cgroup could not be frozen: \(error)")
                }
                let stopped = StoppedProcess(pid: pid, method: .cgroupFreezer, threads: ThreadList.tids(procDir, pid: pid),
                                             wasAlreadyStopped: already, pidfd: pidfd, procDir: procDir,
                                             freezeFile: freezer.freezeFile, guardian: guardian)
                guard ThreadList.waitUntil(deadlineSeconds: 5, { CgroupFreezer.isFrozen(freezer) }) else {
                    stopped.resume()
                    throw stopFailure(procDir: procDir, pidfd: pidfd, what: "the cgroup freezer")
                }
                return stopped
            } catch {
                throw fail(error)
            }
        }
    }

    func signalError(_ error: Errno, procDir: FileDescriptor) -> ProcessMemoryError {
        if error == .noSuchProcess { return .gone(.gone, pid: pid, systemCall: SystemCall(.pidfdSendSignal), errno: error) }
        if error == .notPermitted {
            let reason = AccessDiagnosis.diagnose(pid: pid, procDirectory: procDir)
            return ProcessMemoryError(.accessDenied, pid: pid, systemCall: SystemCall(.pidfdSendSignal), errno: error,
                                      accessDenial: reason, message: "the process may not be signalled: \(reason)")
        }
        return ProcessMemoryError(ErrnoMapping.code(for: error, systemCall: SystemCall(.pidfdSendSignal)), pid: pid,
                                  systemCall: SystemCall(.pidfdSendSignal), errno: error, message: "SIGSTOP could not be sent: \(error)")
    }

    func stopFailure(procDir: FileDescriptor, pidfd: FileDescriptor, what: String) -> ProcessMemoryError {
        if case .success(let events) = pidfd.pollNow(), events != 0 { return .gone(.gone, pid: pid) }
        return ProcessMemoryError(.badState, pid: pid,
                                  message: "a thread did not stop within 5 s after \(what) (uninterruptible sleep?); the process was resumed")
    }
}

/// The threads of a process, from `/proc/PID/task`.
enum ThreadList {
    /// Thread IDs, the main thread (`pid`) first.
    static func tids(_ procDir: FileDescriptor, pid: Int32) -> [Int32] {
        guard case .success(let names) = procDir.listDirectory(relative: "task") else { return [pid] }
        let tids = names.compactMap { Int32($0) }.sorted()
        return tids.contains(pid) ? [pid] + tids.filter { $0 != pid } : tids
    }

    /// The state letter of one thread (`/proc/PID/task/TID/stat` field 3), `nil` once gone.
    static func state(_ procDir: FileDescriptor, _ tid: Int32) -> Character? {
        guard case .success(let bytes) = procDir.readFile(relative: "task/\(tid)/stat"), let stat = ProcStat.parse(bytes) else { return nil }
        return stat.state
    }

    /// Whether every thread is stopped (`T`), traced (`t`), or gone.
    static func allStopped(_ procDir: FileDescriptor) -> Bool {
        guard case .success(let names) = procDir.listDirectory(relative: "task"), !names.isEmpty else { return false }
        return names.compactMap { Int32($0) }.allSatisfy { tid in
            guard let state = state(procDir, tid) else { return true }
            return state == "T" || state == "t" || state == "Z" || state == "X"
        }
    }

    /// Polls `condition` every millisecond until it holds or `deadlineSeconds` pass.
    static func waitUntil(deadlineSeconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = ContinuousClock.now.advanced(by: .milliseconds(Int64(deadlineSeconds * 1000)))
        while true {
            if condition() { return true }
            if ContinuousClock.now > deadline { return false }
            Sleep.nanoseconds(1_000_000)
        }
    }
}
