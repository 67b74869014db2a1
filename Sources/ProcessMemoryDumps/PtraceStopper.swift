import CProcessMemory
import Glibc
import SystemPackage
import ProcessMemoryCore

/// Stops every thread of a process with `PTRACE_SEIZE` + `PTRACE_INTERRUPT` and waits for each
/// with `waitpid(__WALL)`. Threads created meanwhile are found by listing `/proc/PID/task` again
/// until no new one appears (a stopped thread cannot create one).
enum PtraceStopper {
    /// The ptrace event of an interrupt or group stop (`PTRACE_EVENT_STOP`).
    static let eventStop: CInt = 128

    /// How long a stop waits for every thread, as ``StopMethod/signal`` and the freezer do.
    static let stopDeadlineSeconds = 5.0

    /// Seconds since `start` (`CLOCK_MONOTONIC`).
    static func since(_ start: timespec) -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec - start.tv_sec) + Double(now.tv_nsec - start.tv_nsec) / 1e9
    }

    /// Stops every thread of `pid` from a ``TracerThread`` of its own, which the returned
    /// ``StoppedProcess`` keeps for its register reads and its detach. On failure the tracer
    /// thread ends, and with it any attachment that could not be detached (a thread blocked in
    /// `vfork(2)` never reaches its ptrace stop).
    static func stop(pid: Int32, pidfd: FileDescriptor, procDir: FileDescriptor, handle: ProcessHandle) throws(ProcessMemoryError) -> StoppedProcess {
        let wasStopped = ThreadList.allStopped(procDir)
        guard let tracer = TracerThread() else {
            pidfd.closeQuietly()
            procDir.closeQuietly()
            throw ProcessMemoryError(.noMemory, pid: pid, systemCall: SystemCall(.clone, "pthread_create"),
                                     message: "no thread could be started to trace the process; it was not stopped")
        }
        let ended = Result<Seized, ProcessMemoryError>.failure(ProcessMemoryError(.badState, pid: pid, message: "the tracer thread ended"))
        let outcome = tracer.run(orIfEnded: ended) { seizeAll(pid: pid, procDir: procDir, handle: handle) }
        switch outcome {
        case .success(let seized):
            let ordered = seized.threads.contains(pid) ? [pid] + seized.threads.filter { $0 != pid } : seized.threads
            return StoppedProcess(pid: pid, method: .ptrace, threads: ordered, wasAlreadyStopped: wasStopped,
                                  pidfd: pidfd, procDir: procDir, pendingSignals: seized.pending, tracer: tracer)
        case .failure(let error):
            // Ending the tracer thread detaches what PTRACE_DETACH could not (exit_ptrace).
            tracer.end()
            pidfd.closeQuietly()
            procDir.closeQuietly()
            throw error
        }
    }

    struct Seized {
        var threads: [Int32]
        var pending: [Int32: CInt]
    }

    /// `PTRACE_SEIZE` and `PTRACE_INTERRUPT` of every thread, then a bounded wait for each; runs on
    /// the tracer thread. On failure the threads that stopped are detached.
    static func seizeAll(pid: Int32, procDir: FileDescriptor, handle: ProcessHandle) -> Result<Seized, ProcessMemoryError> {
        var start = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        var seized: [Int32] = []
        var pending: [Int32: CInt] = [:]
        func detachAll() {
            for tid in seized { _ = Ptrace.request(CProcessMemory_PTRACE_DETACH, tid, data: UnsafeMutableRawPointer(bitPattern: Int(pending[tid] ?? 0))) }
        }
        for _ in 0..<1000 {
            let fresh = ThreadList.tids(procDir, pid: pid).filter { !seized.contains($0) }
            if fresh.isEmpty { break }
            for tid in fresh {
                switch Ptrace.request(CProcessMemory_PTRACE_SEIZE, tid) {
                case .success: seized.append(tid)
                case .failure(.noSuchProcess): continue  // the thread exited
                case .failure(let error):
                    detachAll()
                    return .failure(seizeError(error, pid: pid, procDir: procDir, handle: handle))
                }
                _ = Ptrace.request(CProcessMemory_PTRACE_INTERRUPT, tid)
            }
            for tid in fresh where seized.contains(tid) {
                // Bounded, as for the other methods: a thread blocked in vfork(2) (or in an
                // uninterruptible sleep) does not stop until that ends, and must not hold us.
                switch waitForTrap(tid, deadlineSeconds: max(0.001, stopDeadlineSeconds - since(start))) {
                case .stopped(let signal):
                    if signal != 0 { pending[tid] = signal }
                case .gone:
                    seized.removeAll { $0 == tid }
                case .timedOut:
                    detachAll()
                    let state = ThreadList.state(procDir, tid).map { " (state \($0))" } ?? ""
                    return .failure(ProcessMemoryError(.badState, pid: pid, systemCall: SystemCall(.waitpid),
                                                       message: "thread \(tid) did not stop within \(Int(stopDeadlineSeconds)) s after PTRACE_INTERRUPT\(state): it is blocked in vfork(2) or an uninterruptible sleep; every thread was released"))
                }
            }
        }
        guard !seized.isEmpty else { return .failure(.gone(.gone, pid: pid, systemCall: SystemCall(.ptrace, "PTRACE_SEIZE"))) }
        return .success(Seized(threads: seized, pending: pending))
    }

    enum Outcome { case stopped(signal: CInt), gone }

    /// Waits for `tid`'s stop. A signal-delivery stop (another signal arrived first) also stops the
    /// thread; its signal is returned so that the detach can deliver it.
    static func waitForStop(_ tid: Int32) -> Outcome {
        while true {
            switch Ptrace.wait(tid, flags: CProcessMemory___WALL) {
            case .failure: return .gone
            case .success(let status):
                // Not WIFSTOPPED: exited or killed, the thread is gone.
                if status & 0xff != 0x7f { return .gone }
                let signal = (status >> 8) & 0xff
                let event = status >> 16
                if event == eventStop { return .stopped(signal: 0) }
                // SIGSTOP/SIGTSTP/… group stops are reported as event stops under SEIZE; anything
                // else is a signal-delivery stop whose signal must not be lost.
                return .stopped(signal: signal == SIGSTOP ? 0 : signal)
            }
        }
    }

    /// How long ``registersOfStoppedThreads(_:procDir:reenterGroupStop:)`` waits for one thread's trap.
    static let trapDeadlineSeconds = 2.0

    /// Reads the registers of threads held still by `SIGSTOP` or the cgroup freezer: for each
    /// thread `PTRACE_SEIZE`, `PTRACE_INTERRUPT`, `waitpid(__WALL | WNOHANG)` until it traps (at most
    /// ``trapDeadlineSeconds``), `PTRACE_GETREGSET`, `PTRACE_DETACH`. The detach returns a
    /// group-stopped thread to the group stop and a frozen one to the freezer (measured on Linux 6.18:
    /// the state stays `T`, `cgroup.events` stays `frozen 1`). One thread is traced at a time.
    /// With `reenterGroupStop` (the ``StopMethod/signal`` case) it returns once each detached thread
    /// shows state `T` again.
    static func registersOfStoppedThreads(_ threads: [Int32], procDir: FileDescriptor, reenterGroupStop: Bool) -> RegisterCapture {
        var capture = RegisterCapture(registers: [], absent: [])
        for tid in threads {
            switch Ptrace.request(CProcessMemory_PTRACE_SEIZE, tid) {
            case .success: break
            case .failure(.noSuchProcess): continue  // the thread exited
            case .failure(let error):
                var reason = "ptrace(PTRACE_SEIZE) failed: \(error)"
                if case .success(let bytes) = procDir.readFile(relative: "status"), let tracer = ProcStatus.parse(bytes).tracerPID, tracer != 0 {
                    reason += " (already traced by pid \(tracer))"
                }
                capture.absent.append(.init(tid: tid, reason: reason))
                continue
            }
            _ = Ptrace.request(CProcessMemory_PTRACE_INTERRUPT, tid)
            var signal: CInt = 0
            switch waitForTrap(tid, deadlineSeconds: trapDeadlineSeconds) {
            case .gone: continue
            case .timedOut:
                // A tracee that is not in a ptrace stop cannot be detached; the kernel drops the
                // attachment when this thread exits. Never hang, never guess the registers.
                _ = Ptrace.request(CProcessMemory_PTRACE_DETACH, tid)
                capture.absent.append(.init(tid: tid, reason: "the thread did not enter a ptrace stop within \(trapDeadlineSeconds) s"))
                continue
            case .stopped(let pending):
                signal = pending
            }
            switch StoppedProcess.readRegisters(tid) {
            case .success(let registers):
                capture.registers.append(registers)
            case .failure(let error):
                capture.absent.append(.init(tid: tid, reason: "ptrace(PTRACE_GETREGSET) failed: \(error)"))
            }
            _ = Ptrace.request(CProcessMemory_PTRACE_DETACH, tid, data: UnsafeMutableRawPointer(bitPattern: Int(signal)))
            if reenterGroupStop {
                // The detach wakes the thread, which re-enters the group stop before it could return
                // to user space; wait until /proc shows it stopped again (it is briefly `R`).
                _ = ThreadList.waitUntil(deadlineSeconds: trapDeadlineSeconds) {
                    guard let state = ThreadList.state(procDir, tid) else { return true }
                    return state == "T" || state == "Z" || state == "X"
                }
            }
        }
        return capture
    }

    enum TrapOutcome { case stopped(signal: CInt), gone, timedOut }

    /// ``waitForStop(_:)`` polled with `WNOHANG` every millisecond until `deadlineSeconds` pass.
    static func waitForTrap(_ tid: Int32, deadlineSeconds: Double) -> TrapOutcome {
        var outcome = TrapOutcome.timedOut
        _ = ThreadList.waitUntil(deadlineSeconds: deadlineSeconds) {
            switch Ptrace.waitIfChanged(tid, flags: CProcessMemory___WALL) {
            case .failure:
                outcome = .gone
                return true
            case .success(nil):
                return false
            case .success(let status?):
                if status & 0xff != 0x7f {
                    outcome = .gone
                } else {
                    let signal = (status >> 8) & 0xff
                    let event = status >> 16
                    // An interrupt or group stop; anything else is a signal to re-deliver on detach.
                    outcome = .stopped(signal: event == eventStop || signal == SIGSTOP ? 0 : signal)
                }
                return true
            }
        }
        return outcome
    }

    static func seizeError(_ error: Errno, pid: Int32, procDir: FileDescriptor, handle: ProcessHandle) -> ProcessMemoryError {
        if error == .notPermitted || error == .permissionDenied {
            var tracer: Int32 = 0
            if case .success(let bytes) = procDir.readFile(relative: "status") { tracer = ProcStatus.parse(bytes).tracerPID ?? 0 }
            if tracer != 0 {
                return ProcessMemoryError(.accessDenied, pid: pid, systemCall: SystemCall(.ptrace, "PTRACE_SEIZE"), errno: error,
                                          message: "the process is already traced by pid \(tracer) (a debugger); use --stop signal, or detach it")
            }
            let reason = AccessDiagnosis.diagnose(pid: pid, procDirectory: procDir)
            return ProcessMemoryError(.accessDenied, pid: pid, systemCall: SystemCall(.ptrace, "PTRACE_SEIZE"), errno: error,
                                      accessDenial: reason, message: "the process may not be traced: \(reason)")
        }
        return ProcessMemoryError(ErrnoMapping.code(for: error, systemCall: SystemCall(.ptrace)), pid: pid,
                                  systemCall: SystemCall(.ptrace, "PTRACE_SEIZE"), errno: error, message: "ptrace could not attach: \(error)")
    }
}
