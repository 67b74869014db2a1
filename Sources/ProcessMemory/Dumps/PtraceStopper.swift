import CProcessMemory
import Glibc
import SystemPackage

/// Stops every thread of a process with `PTRACE_SEIZE` + `PTRACE_INTERRUPT` and waits for each
/// with `waitpid(__WALL)`. Threads created meanwhile are found by listing `/proc/PID/task` again
/// until no new one appears (a stopped thread cannot create one).
enum PtraceStopper {
    /// The ptrace event of an interrupt or group stop (`PTRACE_EVENT_STOP`).
    static let eventStop: CInt = 128

    static func stop(pid: Int32, pidfd: CInt, procDir: CInt, handle: ProcessHandle) throws(ProcessMemoryError) -> StoppedProcess {
        var seized: [Int32] = []
        var pending: [Int32: CInt] = [:]
        let wasStopped = ThreadList.allStopped(procDir)
        func detachAll() {
            for tid in seized { _ = Sys.ptrace(CProcessMemory_PTRACE_DETACH, tid, data: UnsafeMutableRawPointer(bitPattern: Int(pending[tid] ?? 0))) }
        }
        for _ in 0..<1000 {
            let fresh = ThreadList.tids(procDir, pid: pid).filter { !seized.contains($0) }
            if fresh.isEmpty { break }
            for tid in fresh {
                switch Sys.ptrace(CProcessMemory_PTRACE_SEIZE, tid) {
                case .success: seized.append(tid)
                case .failure(.noSuchProcess): continue  // the thread exited
                case .failure(let error):
                    detachAll()
                    Sys.close(pidfd)
                    defer { Sys.close(procDir) }
                    throw seizeError(error, pid: pid, procDir: procDir, handle: handle)
                }
                _ = Sys.ptrace(CProcessMemory_PTRACE_INTERRUPT, tid)
            }
            for tid in fresh where seized.contains(tid) {
                switch waitForStop(tid) {
                case .stopped(let signal):
                    if signal != 0 { pending[tid] = signal }
                case .gone:
                    seized.removeAll { $0 == tid }
                }
            }
        }
        guard !seized.isEmpty else {
            Sys.close(pidfd)
            Sys.close(procDir)
            throw .gone(.gone, pid: pid, systemCall: "ptrace(PTRACE_SEIZE)")
        }
        let ordered = seized.contains(pid) ? [pid] + seized.filter { $0 != pid } : seized
        return StoppedProcess(pid: pid, method: .ptrace, threads: ordered, wasAlreadyStopped: wasStopped,
                              pidfd: pidfd, procDir: procDir, pendingSignals: pending)
    }

    enum Outcome { case stopped(signal: CInt), gone }

    /// Waits for `tid`'s stop. A signal-delivery stop (another signal arrived first) also stops the
    /// thread; its signal is returned so that the detach can deliver it.
    static func waitForStop(_ tid: Int32) -> Outcome {
        while true {
            switch Sys.waitpid(tid, flags: CProcessMemory___WALL) {
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

    static func seizeError(_ error: Errno, pid: Int32, procDir: CInt, handle: ProcessHandle) -> ProcessMemoryError {
        if error == .notPermitted || error == .permissionDenied {
            var tracer: Int32 = 0
            if case .success(let bytes) = Sys.readFile(procDir, "status") { tracer = ProcStatus.parse(bytes).tracerPID ?? 0 }
            if tracer != 0 {
                return ProcessMemoryError(.accessDenied, pid: pid, systemCall: "ptrace(PTRACE_SEIZE)", errno: error,
                                          message: "the process is already traced by pid \(tracer) (a debugger); use --stop signal, or detach it")
            }
            let reason = AccessDiagnosis.diagnose(pid: pid, procDir: procDir)
            return ProcessMemoryError(.accessDenied, pid: pid, systemCall: "ptrace(PTRACE_SEIZE)", errno: error,
                                      accessDenial: reason, message: "the process may not be traced: \(reason)")
        }
        return ProcessMemoryError(ErrnoMapping.code(for: error, systemCall: "ptrace"), pid: pid,
                                  systemCall: "ptrace(PTRACE_SEIZE)", errno: error, message: "ptrace could not attach: \(error)")
    }
}
