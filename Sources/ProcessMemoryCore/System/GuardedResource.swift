import Synchronization

/// Descriptors that operations in several threads use while another thread may close or replace
/// them: a value is disposed of (its descriptors closed) only when the last operation using it ends,
/// so a descriptor number is never closed under a call and reused by an unrelated open.
///
/// The hot path (``use(ifClosed:_:)``) takes no lock: an operation announces itself in an atomic
/// in-flight counter, then loads the published value; `close()` and `replace` publish first, then
/// look at the counter. With sequentially consistent ordering on both sides (Dekker's pattern),
/// either the operation sees the new state or the closer sees the operation in flight and leaves
/// the retired value to the last operation to finish, which disposes of it under the lock after
/// checking the counter is zero. A value is disposed of only at a moment when no operation was in
/// flight, and every operation that could have seen it started before that moment.
package final class GuardedResource<Value: Sendable>: Sendable {
    /// One published value, immutable; kept alive by `State` until no operation can still see it.
    private final class Holder: Sendable {
        let value: Value
        init(_ value: Value) { self.value = value }
    }

    private struct State {
        /// The published holder (strong reference), nil once closed.
        var current: Holder?
        /// Values to dispose of once no operation is in flight.
        var retired: [Value] = []
        /// Holders no longer published but perhaps still being read; released with `retired`.
        var unpublished: [Holder] = []
    }

    private let state: Locked<State>
    /// The address of the published holder, 0 once closed.
    private let published: Atomic<UInt>
    /// Operations between their announcement and their end.
    private let inFlight = Atomic<Int>(0)
    /// Whether `state.retired` or `state.unpublished` may hold something (a hint for the last operation).
    private let hasRetired = Atomic<Bool>(false)
    private let dispose: @Sendable (Value) -> Void

    /// Guards `value`; `dispose` closes what it holds.
    package init(_ value: Value, dispose: @escaping @Sendable (Value) -> Void) {
        let holder = Holder(value)
        state = Locked(State(current: holder))
        published = Atomic(UInt(bitPattern: Unmanaged.passUnretained(holder).toOpaque()))
        self.dispose = dispose
    }

    deinit {
        state.withLock { state in
            if let current = state.current { dispose(current.value) }
            state.retired.forEach(dispose)
        }
    }

    /// Runs `body` with the current value, or throws `closedError()` once `close()` was called.
    @inline(__always)
    package func use<R>(ifClosed closedError: () -> ProcessMemoryError,
                _ body: (Value) throws(ProcessMemoryError) -> R) throws(ProcessMemoryError) -> R {
        inFlight.wrappingAdd(1, ordering: .sequentiallyConsistent)
        defer { leave() }
        let bits = published.load(ordering: .sequentiallyConsistent)
        guard let pointer = UnsafeRawPointer(bitPattern: bits) else { throw closedError() }
        // The holder stays alive: it is `state.current`, or in `state.unpublished` until this
        // operation has left.
        let value = Unmanaged<Holder>.fromOpaque(pointer)._withUnsafeGuaranteedRef { $0.value }
        return try body(value)
    }

    @inline(__always)
    private func leave() {
        let remaining = inFlight.wrappingSubtract(1, ordering: .sequentiallyConsistent).newValue
        if remaining == 0 && hasRetired.load(ordering: .sequentiallyConsistent) { disposeRetiredIfIdle() }
    }

    /// Whether `close()` has been called.
    package var isClosed: Bool { published.load(ordering: .sequentiallyConsistent) == 0 }

    /// Replaces the value; `update` returns the new value and the part of the old one to dispose of
    /// once no operation uses it. Does nothing after `close()` but dispose of `update`'s new value.
    package func replace(_ update: (Value) -> (new: Value, retired: Value), orDispose fresh: Value) {
        var discard: [Value] = []
        state.withLock { state in
            guard let current = state.current else {
                discard = [fresh]
                return
            }
            let (new, retired) = update(current.value)
            let holder = Holder(new)
            state.current = holder
            published.store(UInt(bitPattern: Unmanaged.passUnretained(holder).toOpaque()), ordering: .sequentiallyConsistent)
            state.retired.append(retired)
            state.unpublished.append(current)
            discard = takeRetiredIfIdle(&state)
        }
        discard.forEach(dispose)
    }

    /// Stops new operations and disposes of the value once none is using it. Idempotent.
    package func close() {
        var discard: [Value] = []
        state.withLock { state in
            guard let current = state.current else { return }
            state.current = nil
            published.store(0, ordering: .sequentiallyConsistent)
            state.retired.append(current.value)
            state.unpublished.append(current)
            discard = takeRetiredIfIdle(&state)
        }
        discard.forEach(dispose)
    }

    /// Called by the last operation to leave while something is retired.
    private func disposeRetiredIfIdle() {
        let discard = state.withLock { state in takeRetiredIfIdle(&state) }
        discard.forEach(dispose)
    }

    /// Under the lock, after publishing: hands out the retired values when no operation is in
    /// flight, else marks them for the last operation to dispose of.
    private func takeRetiredIfIdle(_ state: inout State) -> [Value] {
        guard !state.retired.isEmpty || !state.unpublished.isEmpty else { return [] }
        hasRetired.store(true, ordering: .sequentiallyConsistent)
        guard inFlight.load(ordering: .sequentiallyConsistent) == 0 else { return [] }
        hasRetired.store(false, ordering: .sequentiallyConsistent)
        let retired = state.retired
        state.retired.removeAll()
        state.unpublished.removeAll()
        return retired
    }
}
