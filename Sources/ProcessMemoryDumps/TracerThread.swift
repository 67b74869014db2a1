import Dispatch
import ProcessMemoryCore

/// The thread that is the ptrace tracer of a ``StopMethod/ptrace`` stop, or of a register capture
/// under the other methods: every `PTRACE_*` request of that stop runs on it, whichever thread asks.
///
/// A tracee belongs to the thread that attached it, and only that thread can detach it. A thread
/// blocked in `vfork(2)` is attached but never reaches its ptrace stop within the bounded wait, so
/// it cannot be detached; its interrupt stays pending and it would stop for good once `vfork`
/// returns (issue 16). When the tracer *thread* exits, the kernel detaches every tracee it still
/// has and drops the pending interrupt (`exit_ptrace`), so ``end()`` cleans up what no request can.
/// A thread of our own also means callers need not stop, read and resume from one thread.
///
/// `@unchecked Sendable`: `job`, `ending` and `helper` are touched only while `caller` is held
/// (by the thread that asks) or between `requested` and `completed` (by the tracer thread), so the
/// semaphores order every access, as in ``ReadAhead``.
final class TracerThread: @unchecked Sendable {
    private var job: (() -> Void)?
    private var ending = false
    private var helper: HelperThread?
    /// Held by the thread that asks, for the whole of one job (or of ``end()``).
    private let caller = DispatchSemaphore(value: 1)
    private let requested = DispatchSemaphore(value: 0)
    private let completed = DispatchSemaphore(value: 0)

    /// Starts the thread; `nil` when none can be had.
    init?() {
        guard let helper = HelperThread.start({ [self] in self.serve() }) else { return nil }
        self.helper = helper
    }

    /// Runs `body` on the tracer thread and returns its result; after ``end()``, runs nothing and
    /// returns `ended`.
    func run<R>(orIfEnded ended: R, _ body: @escaping () -> R) -> R {
        caller.wait()
        defer { caller.signal() }
        guard !ending else { return ended }
        var output = ended
        job = { output = body() }
        requested.signal()
        completed.wait()
        job = nil
        return output
    }

    /// Ends the thread, which detaches every tracee it still holds; idempotent.
    func end() {
        caller.wait()
        defer { caller.signal() }
        guard !ending else { return }
        ending = true
        requested.signal()
        helper?.join()
        helper = nil
    }

    private func serve() {
        while true {
            requested.wait()
            guard !ending, let job else { return }
            job()
            completed.signal()
        }
    }
}
