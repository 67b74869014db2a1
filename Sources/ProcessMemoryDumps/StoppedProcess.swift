import CProcessMemory
import Glibc
import Synchronization
import SystemPackage
import ProcessMemoryCore

/// A process held still by one ``StopMethod``, until ``resume()``.
///
/// Get one from ``ProcessHandle/stop(_:)`` or, better, ``ProcessHandle/withStopped(_:_:)``, which
/// resumes on every path. `resume()` is idempotent and also runs on deinit. Any thread may read
/// registers or resume: every ptrace request runs on a tracer thread of the stop's own
/// (``TracerThread``), which ends, detaching whatever is left, when the process is resumed.
public final class StoppedProcess: Sendable {
    /// The process.
    public let pid: Int32
    /// How it was stopped.
    public let method: StopMethod
    /// Its threads at the moment it was stopped, the main thread first.
    public let threads: [Int32]
    /// The target was already stopped (or frozen) before, so ``resume()`` leaves it so.
    public let wasAlreadyStopped: Bool

    private let pidfd: FileDescriptor
    private let procDir: FileDescriptor
    /// The stopped process's `/proc/PID` directory (the handle's, duplicated): stays valid after the
    /// handle is closed, and never reaches another process after PID reuse.
    var procDirectory: FileDescriptor { procDir }
    /// ptrace: a signal each thread reported instead of the interrupt, re-delivered on detach.
    private let pendingSignals: [Int32: CInt]
    private let freezeFile: String?
    /// ptrace: the thread that traces every thread of the process.
    private let tracer: TracerThread?
    /// Resumes the target if this process dies first (signal and freezer stops).
    private let guardian: StopGuardian?
    private let resumed = Atomic<Bool>(false)

    /// How to resume each signal or freezer stop still held, for ``resumeAllBeforeExit()``. An entry
    /// is removed under the lock before its descriptors can be closed.
    private static let held = Mutex<[ObjectIdentifier: @Sendable () -> Void]>([:])

    init(pid: Int32, method: StopMethod, threads: [Int32], wasAlreadyStopped: Bool, pidfd: FileDescriptor, procDir: FileDescriptor,
         pendingSignals: [Int32: CInt] = [:], freezeFile: String? = nil, guardian: StopGuardian? = nil,
         tracer: TracerThread? = nil) {
        self.tracer = tracer
        self.guardian = guardian
        self.pid = pid
        self.method = method
        self.threads = threads
        self.wasAlreadyStopped = wasAlreadyStopped
        self.pidfd = pidfd
        self.procDir = procDir
        self.pendingSignals = pendingSignals
        self.freezeFile = freezeFile
        if !wasAlreadyStopped, method == .signal || method == .cgroupFreezer {
            let key = ObjectIdentifier(self)
            let resumeNow: @Sendable () -> Void
            if method == .signal {
                resumeNow = { _ = pidfd.sendSignal(SIGCONT) }
            } else {
                let file = freezeFile
                resumeNow = { if let file { _ = CgroupFreezer.write(file, "0") } }
            }
            Self.held.withLock { $0[key] = resumeNow }
        }
    }

    /// Resumes at once every process this process holds stopped with ``StopMethod/signal``
    /// (`SIGCONT` through its pidfd) or ``StopMethod/cgroupFreezer`` (`cgroup.freeze` ← 0), from any
    /// thread: for a caller about to exit without unwinding, such as `procmem` on a second Ctrl-C.
    ///
    /// Each ``StoppedProcess`` still calls ``resume()`` as usual. ptrace stops need nothing: the
    /// kernel detaches a dead tracer's tracees. If the caller dies without calling this, the stop
    /// guardian resumes the target, but only after the caller is gone.
    public static func resumeAllBeforeExit() {
        held.withLock { entries in
            for resumeNow in entries.values { resumeNow() }
        }
    }

    deinit {
        resume()
        pidfd.closeQuietly()
        procDir.closeQuietly()
    }

    /// Whether ``resume()`` has run.
    public var isResumed: Bool { resumed.load(ordering: .acquiring) }

    /// Lets the process run again: `SIGCONT`, `PTRACE_DETACH` of every thread, or `cgroup.freeze`
    /// ← 0. Idempotent; never throws (a process that exited meanwhile needs nothing).
    public func resume() {
        guard !resumed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let key = ObjectIdentifier(self)
        _ = Self.held.withLock { $0.removeValue(forKey: key) }
        switch method {
        case .none: break
        case .signal:
            if !wasAlreadyStopped { _ = pidfd.sendSignal(SIGCONT) }
        case .ptrace:
            let (threads, pendingSignals) = (self.threads, self.pendingSignals)
            tracer?.run(orIfEnded: ()) {
                for tid in threads {
                    let signal = pendingSignals[tid] ?? 0
                    _ = Ptrace.request(CProcessMemory_PTRACE_DETACH, tid, data: UnsafeMutableRawPointer(bitPattern: Int(signal)))
                }
            }
            tracer?.end()
        case .cgroupFreezer:
            if !wasAlreadyStopped, let freezeFile { _ = CgroupFreezer.write(freezeFile, "0") }
        }
        guardian?.release()
    }

    /// The registers of every thread (main thread first), through `PTRACE_GETREGSET` with
    /// `NT_PRSTATUS` and `NT_PRFPREG`; see ``registerCapture()`` for how each method gets them.
    ///
    /// - Throws: `.notSupported` with ``StopMethod/none``, after ``resume()``, or on architectures
    ///   other than x86_64 and arm64; `.accessDenied` (or the failing call's code) when no thread's
    ///   registers could be read, with the first thread's reason.
    public func registers() throws(ProcessMemoryError) -> [ThreadRegisters] {
        guard method != .none, !isResumed else {
            throw ProcessMemoryError(.notSupported, pid: pid,
                                     message: "registers can be read only while the process is stopped (not with --stop none, not after resume)")
        }
        guard CoreArchitecture.current != nil, CProcessMemory_user_regs_size > 0 else {
            throw ProcessMemoryError(.notSupported, pid: pid, message: "registers are read on x86_64 and arm64 only")
        }
        let capture = registerCapture()
        if capture.registers.isEmpty, let first = capture.absent.first {
            throw ProcessMemoryError(.accessDenied, pid: pid, systemCall: SystemCall(.ptrace),
                                     message: "no thread's registers could be read: thread \(first.tid): \(first.reason)")
        }
        return capture.registers
    }

    /// The registers of every thread that can be read, and why the others cannot; never throws.
    ///
    /// - ``StopMethod/ptrace``: `PTRACE_GETREGSET` on each thread already stopped by the stop.
    /// - ``StopMethod/signal`` and ``StopMethod/cgroupFreezer``: each thread in turn is attached with
    ///   `PTRACE_SEIZE`, trapped with `PTRACE_INTERRUPT` (a group-stopped thread re-traps at once, a
    ///   frozen one leaves the freezer trap for the ptrace trap), waited for with
    ///   `waitpid(__WALL | WNOHANG)` for at most 2 s, read, and released with `PTRACE_DETACH`, which
    ///   puts it back into the group stop or the freezer: the process stays stopped until ``resume()``.
    ///   When another tracer is attached or Yama forbids ptrace, that thread's registers are absent.
    /// - ``StopMethod/none``, after ``resume()`` or on other architectures: every thread is absent.
    public func registerCapture() -> RegisterCapture {
        guard !isResumed, method != .none else {
            let reason = method == .none ? "the process was not stopped (stop method none)" : "the process was already resumed"
            return RegisterCapture(registers: [], absent: threads.map { .init(tid: $0, reason: reason) })
        }
        guard CoreArchitecture.current != nil, CProcessMemory_user_regs_size > 0 else {
            return RegisterCapture(registers: [], absent: threads.map { .init(tid: $0, reason: "registers are read on x86_64 and arm64 only") })
        }
        let (threads, procDir, method) = (self.threads, self.procDir, self.method)
        let unavailable = RegisterCapture(registers: [], absent: threads.map { .init(tid: $0, reason: "no tracer thread could be started") })
        if method != .ptrace {
            // A tracer thread of its own, ended afterwards: a thread that never reached its ptrace
            // stop is detached by the thread's exit.
            guard let capturer = TracerThread() else { return unavailable }
            defer { capturer.end() }
            return capturer.run(orIfEnded: unavailable) {
                PtraceStopper.registersOfStoppedThreads(threads, procDir: procDir, reenterGroupStop: method == .signal)
            }
        }
        guard let tracer else { return unavailable }
        return tracer.run(orIfEnded: unavailable) {
            var capture = RegisterCapture(registers: [], absent: [])
            for tid in threads {
                switch Self.readRegisters(tid) {
                case .success(let registers): capture.registers.append(registers)
                case .failure(let error):
                    capture.absent.append(.init(tid: tid, reason: "ptrace(PTRACE_GETREGSET) failed: \(error)"))
                }
            }
            return capture
        }
    }

    /// Every register set of a ptrace-stopped thread that a core holds: `PTRACE_GETREGSET` of
    /// `NT_PRSTATUS` (required), `NT_PRFPREG` and, on x86_64, `NT_X86_XSTATE` (sized by the
    /// kernel), and `PTRACE_GETSIGINFO`.
    static func readRegisters(_ tid: Int32) -> Result<ThreadRegisters, Errno> {
        regset(tid, CProcessMemory_NT_PRSTATUS, size: CProcessMemory_user_regs_size).map { general in
            let float = try? regset(tid, CProcessMemory_NT_PRFPREG, size: CProcessMemory_user_fpregs_size).get()
            let extended = CoreArchitecture.current == .x86_64
                ? (try? regset(tid, CProcessMemory_NT_X86_XSTATE, size: 1 << 16).get()).map(XSaveLayout.standardized) : nil
            var signal = [UInt8](repeating: 0, count: 128)
            let info = signal.withUnsafeMutableBytes { raw in
                Ptrace.request(CProcessMemory_PTRACE_GETSIGINFO, tid, data: raw.baseAddress)
            }
            if case .failure = info { signal = [] }
            return ThreadRegisters(tid: tid, general: general, floatingPoint: float, extendedState: extended,
                                   signalInfo: signal.isEmpty ? nil : signal)
        }
    }

    /// One register set of a ptrace-stopped thread, `PTRACE_GETREGSET`.
    static func regset(_ tid: Int32, _ type: CInt, size: Int) -> Result<[UInt8], Errno> {
        guard size > 0 else { return .failure(.notSupported) }
        var bytes = [UInt8](repeating: 0, count: size)
        let result = bytes.withUnsafeMutableBytes { Ptrace.registerSet(tid, type, into: $0) }
        return result.map { Array(bytes.prefix($0)) }
    }
}
