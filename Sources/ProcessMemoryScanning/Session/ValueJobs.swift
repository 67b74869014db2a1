import ProcessMemoryCore
import Synchronization

/// Freezes and watches that run together: every round looks at each job once, a freeze writing
/// its value back when it differs, a watch reporting a change. Used in the background of a
/// session (``start(interval:)`` runs rounds on a ``HelperThread``) and in the foreground by
/// cheat-table commands (``round()`` in the caller's loop).
///
/// A job's address is either fixed or an ``AddressExpression`` resolved again on every round, so
/// a pointer chain follows the object it leads to when the target reallocates it. Reads use
/// `process_vm_readv(2)`/`pread(2)` (``ProcessHandle/readTransfer(from:into:mode:)``), writes
/// `pwrite(2)` on `/proc/PID/mem` (``ProcessHandle/writeExactly(_:to:mode:)``). Events queue up
/// (at most ``eventLimit``; older ones are counted as dropped) until ``takeEvents()``.
public final class ValueJobs: Sendable {
    /// Where a job's value is.
    public enum Location: Sendable {
        /// A fixed address.
        case address(UInt64)
        /// An expression resolved on every round, names through `names`.
        case expression(AddressExpression, names: (any AddressNameResolver & Sendable)?)
    }

    /// What a job does.
    public enum Kind: Sendable, Hashable {
        /// Keep these bytes there.
        case freeze([UInt8])
        /// Report changes of this many bytes.
        case watch(size: Int)
    }

    /// One job.
    public struct Job: Sendable {
        /// Its number, given by ``add(_:_:label:)``.
        public var id: Int
        /// A name for reports: a match number, a table entry's name.
        public var label: String
        /// Where its value is.
        public var location: Location
        /// What it does.
        public var kind: Kind
    }

    /// Something a round saw.
    public struct Event: Sendable, Hashable {
        /// What happened.
        public enum What: Sendable, Hashable {
            /// A watched value changed (`old` is `nil` in the job's first round).
            case changed(old: [UInt8]?, new: [UInt8])
            /// A frozen value was written back; `found` is what was there.
            case restored(found: [UInt8]?)
            /// A freeze's value was already in place in its first round.
            case held
            /// The address could not be resolved, read or written this round (reported once until it changes).
            case failed(ProcessMemoryError)
            /// The process exited or execed: every job ended.
            case ended(ProcessMemoryError)
        }
        /// The job's id.
        public var job: Int
        /// The job's label.
        public var label: String
        /// Seconds since the Unix epoch.
        public var time: Double
        /// The address this round used (0 when it could not be resolved).
        public var address: UInt64
        /// What happened.
        public var what: What
    }

    private struct JobState {
        var job: Job
        var last: [UInt8]?
        var rounds = 0
        var lastFailure: String?
    }

    private struct Inner {
        var jobs: [JobState] = []
        var events: [Event] = []
        var dropped = 0
        var nextID = 1
        var ended: ProcessMemoryError?
    }

    /// The process the jobs act on (read right; write for freezes).
    public let handle: ProcessHandle
    /// How writes treat page protections.
    public let mode: WriteMode
    /// Events kept until taken.
    public let eventLimit: Int
    private let inner = Mutex(Inner())
    private let thread = Mutex<HelperThread?>(nil)
    private let stopSource = Mutex(CancellationSource())

    /// Jobs on `handle`'s process; none runs until ``round()`` or ``start(interval:)``.
    public init(handle: ProcessHandle, mode: WriteMode = .default, eventLimit: Int = 10_000) {
        self.handle = handle
        self.mode = mode
        self.eventLimit = max(1, eventLimit)
    }

    /// Adds a job and returns its id.
    @discardableResult
    public func add(_ kind: Kind, _ location: Location, label: String) -> Int {
        inner.withLock { inner in
            let id = inner.nextID
            inner.nextID += 1
            inner.jobs.append(JobState(job: Job(id: id, label: label, location: location, kind: kind)))
            return id
        }
    }

    /// Removes the jobs `which` selects; returns how many.
    @discardableResult
    public func remove(where which: (Job) -> Bool) -> Int {
        inner.withLock { inner in
            let before = inner.jobs.count
            inner.jobs.removeAll { which($0.job) }
            return before - inner.jobs.count
        }
    }

    /// The jobs now.
    public var jobs: [Job] { inner.withLock { $0.jobs.map(\.job) } }

    /// Why the jobs ended (the process exited or execed), if they did.
    public var endedBecause: ProcessMemoryError? { inner.withLock { $0.ended } }

    /// The events since the last call, and how many were dropped past ``eventLimit``.
    public func takeEvents() -> (events: [Event], dropped: Int) {
        inner.withLock { inner in
            defer { inner.events.removeAll(); inner.dropped = 0 }
            return (inner.events, inner.dropped)
        }
    }

    /// One round over every job. Returns false once the process has gone (every job ended).
    @discardableResult
    public func round() -> Bool {
        let (snapshot, ended) = inner.withLock { ($0.jobs, $0.ended) }
        guard ended == nil else { return false }
        var updates: [(id: Int, last: [UInt8]?, failure: String?, event: Event?)] = []
        for state in snapshot {
            let outcome = work(state)
            if case .ended(let error)? = outcome.event?.what {
                inner.withLock { inner in
                    inner.ended = error
                    record(outcome.event, &inner)
                }
                return false
            }
            updates.append((state.job.id, outcome.last, outcome.failure, outcome.event))
        }
        inner.withLock { inner in
            for update in updates {
                guard let index = inner.jobs.firstIndex(where: { $0.job.id == update.id }) else { continue }
                inner.jobs[index].last = update.last
                inner.jobs[index].rounds += 1
                inner.jobs[index].lastFailure = update.failure
                record(update.event, &inner)
            }
        }
        return true
    }

    private func record(_ event: Event?, _ inner: inout Inner) {
        guard let event else { return }
        if inner.events.count >= eventLimit {
            inner.events.removeFirst()
            inner.dropped += 1
        }
        inner.events.append(event)
    }

    /// One job's round: the new last value, the failure text (to report a failure once), an event.
    private func work(_ state: JobState) -> (last: [UInt8]?, failure: String?, event: Event?) {
        let job = state.job
        func event(_ address: UInt64, _ what: Event.What) -> Event {
            Event(job: job.id, label: job.label, time: Watcher.now(), address: address, what: what)
        }
        func failure(_ address: UInt64, _ error: ProcessMemoryError) -> (last: [UInt8]?, failure: String?, event: Event?) {
            if Self.ends(error) { return (state.last, nil, event(address, .ended(error))) }
            let text = error.description
            return (state.last, text, text == state.lastFailure ? nil : event(address, .failed(error)))
        }
        let address: UInt64
        switch job.location {
        case .address(let fixed): address = fixed
        case .expression(let expression, let names):
            do throws(ProcessMemoryError) {
                address = try handle.resolve(expression, names: names)
            } catch {
                return failure(0, error)
            }
        }
        let size: Int
        switch job.kind {
        case .freeze(let bytes): size = bytes.count
        case .watch(let count): size = count
        }
        guard size > 0, size <= 1 << 20 else {
            return failure(address, .invalid("a value must be 1 ... 1048576 bytes, not \(size)", pid: handle.pid, address: address))
        }
        var now = [UInt8](repeating: 0, count: size)
        let handle = self.handle
        let outcome = now.withUnsafeMutableBytes { raw in
            Result { () throws(ProcessMemoryError) -> PartialTransfer in try handle.readTransfer(from: address, into: raw) }
        }
        let transfer: PartialTransfer
        switch outcome {
        case .success(let done): transfer = done
        case .failure(let error): return failure(address, error)
        }
        let readable = transfer.stop == nil
        if let stop = transfer.stop, Self.ends(stop) { return failure(address, stop) }
        switch job.kind {
        case .watch:
            guard readable else { return failure(address, transfer.stop ?? .invalid("unreadable", pid: handle.pid)) }
            if now == state.last { return (now, nil, nil) }
            return (now, nil, event(address, .changed(old: state.last, new: now)))
        case .freeze(let bytes):
            if readable && now == bytes {
                return (now, nil, state.rounds == 0 ? event(address, .held) : nil)
            }
            do throws(ProcessMemoryError) {
                try handle.writeExactly(bytes, to: address, mode: mode)
            } catch {
                return failure(address, error)
            }
            return (bytes, nil, event(address, .restored(found: readable ? now : nil)))
        }
    }

    /// Runs rounds every `interval` on a helper thread until ``stop()``; false when no thread could
    /// be started (then call ``round()`` yourself). Starting twice keeps the running thread.
    @discardableResult
    public func start(interval: Duration = .milliseconds(100)) -> Bool {
        thread.withLock { thread in
            if thread != nil { return true }
            let source = CancellationSource()
            stopSource.withLock { $0 = source }
            let cancellation = source.cancellation
            thread = HelperThread.start { [self] in
                while !cancellation.isCancelled {
                    guard round() else { return }
                    Watcher.sleep(interval, unless: cancellation)
                }
            }
            return thread != nil
        }
    }

    /// Whether the helper thread is running.
    public var isRunning: Bool { thread.withLock { $0 != nil } }

    /// Stops the helper thread and waits for it (`pthread_join(3)`). The jobs stay; idempotent.
    public func stop() {
        let running = thread.withLock { thread -> HelperThread? in
            defer { thread = nil }
            return thread
        }
        guard let running else { return }
        stopSource.withLock { $0.cancel() }
        running.join()
    }

    deinit { stop() }

    /// Errors after which no round can succeed.
    private static func ends(_ error: ProcessMemoryError) -> Bool {
        error.code == .badState || error.code == .execed || error.code == .badHandle
            || (error.code == .accessDenied && error.accessDenial == .handleLacksRight)
    }
}
