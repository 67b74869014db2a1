import CProcessMemory
import Glibc
import Synchronization
import SystemPackage

/// A process held still by one ``StopMethod``, until ``resume()``.
///
/// Get one from ``ProcessHandle/stop(_:)`` or, better, ``ProcessHandle/withStopped(_:_:)``, which
/// resumes on every path. `resume()` is idempotent and also runs on deinit. With ``StopMethod/ptrace``
/// the tracer is the calling thread: stop, read registers and resume from the same thread.
public final class StoppedProcess: @unchecked Sendable {
    /// The process.
    public let pid: Int32
    /// How it was stopped.
    public let method: StopMethod
    /// Its threads at the moment it was stopped, the main thread first.
    public private(set) var threads: [Int32]
    /// The target was already stopped (or frozen) before, so ``resume()`` leaves it so.
    public let wasAlreadyStopped: Bool

    private let pidfd: CInt
    private let procDir: CInt
    /// ptrace: a signal each thread reported instead of the interrupt, re-delivered on detach.
    private var pendingSignals: [Int32: CInt]
    private var freezeFile: String?
    private let resumed = Atomic<Bool>(false)

    init(pid: Int32, method: StopMethod, threads: [Int32], wasAlreadyStopped: Bool, pidfd: CInt, procDir: CInt,
         pendingSignals: [Int32: CInt] = [:], freezeFile: String? = nil) {
        self.pid = pid
        self.method = method
        self.threads = threads
        self.wasAlreadyStopped = wasAlreadyStopped
        self.pidfd = pidfd
        self.procDir = procDir
        self.pendingSignals = pendingSignals
        self.freezeFile = freezeFile
    }

    deinit {
        resume()
        Sys.close(pidfd)
        Sys.close(procDir)
    }

    /// Whether ``resume()`` has run.
    public var isResumed: Bool { resumed.load(ordering: .acquiring) }

    /// Lets the process run again: `SIGCONT`, `PTRACE_DETACH` of every thread, or `cgroup.freeze`
    /// ← 0. Idempotent; never throws (a process that exited meanwhile needs nothing).
    public func resume() {
        guard !resumed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        switch method {
        case .none: break
        case .signal:
            if !wasAlreadyStopped { _ = Sys.pidfdSendSignal(pidfd, SIGCONT) }
        case .ptrace:
            for tid in threads {
                let signal = pendingSignals[tid] ?? 0
                _ = Sys.ptrace(CProcessMemory_PTRACE_DETACH, tid, data: UnsafeMutableRawPointer(bitPattern: Int(signal)))
            }
        case .cgroupFreezer:
            if !wasAlreadyStopped, let freezeFile { _ = CgroupFreezer.write(freezeFile, "0") }
        }
    }

    /// The registers of every thread (main thread first), through `PTRACE_GETREGSET` with
    /// `NT_PRSTATUS` and `NT_PRFPREG`.
    ///
    /// - Throws: `.notSupported` unless stopped with ``StopMethod/ptrace`` on x86_64 or arm64, or
    ///   after ``resume()``.
    public func registers() throws(ProcessMemoryError) -> [ThreadRegisters] {
        guard method == .ptrace, !isResumed else {
            throw ProcessMemoryError(.notSupported, pid: pid,
                                     message: "registers can be read only while the process is stopped with ptrace")
        }
        guard CoreArchitecture.current != nil, CProcessMemory_user_regs_size > 0 else {
            throw ProcessMemoryError(.notSupported, pid: pid, message: "registers are read on x86_64 and arm64 only")
        }
        var result: [ThreadRegisters] = []
        for tid in threads {
            guard let general = Self.regset(tid, CProcessMemory_NT_PRSTATUS, size: CProcessMemory_user_regs_size) else { continue }
            let float = Self.regset(tid, CProcessMemory_NT_PRFPREG, size: CProcessMemory_user_fpregs_size)
            result.append(ThreadRegisters(tid: tid, general: general, floatingPoint: float))
        }
        return result
    }

    private static func regset(_ tid: Int32, _ type: CInt, size: Int) -> [UInt8]? {
        guard size > 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: size)
        let result = bytes.withUnsafeMutableBytes { Sys.getRegset(tid, type, into: $0) }
        guard case .success(let filled) = result else { return nil }
        return Array(bytes.prefix(filled))
    }
}
