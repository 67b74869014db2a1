import Synchronization

/// Descriptors that operations in several threads use while another thread may close or replace
/// them: a value is disposed of (its descriptors closed) only when the last operation using it ends,
/// so a descriptor number is never closed under a call and reused by an unrelated open.
final class GuardedResource<Value: Sendable>: Sendable {
    private struct State {
        var current: Value?
        var inFlight = 0
        var retired: [Value] = []
    }

    private let state: Mutex<State>
    private let dispose: @Sendable (Value) -> Void

    /// Guards `value`; `dispose` closes what it holds.
    init(_ value: Value, dispose: @escaping @Sendable (Value) -> Void) {
        state = Mutex(State(current: value))
        self.dispose = dispose
    }

    deinit {
        state.withLock { state in
            if let current = state.current { dispose(current) }
            state.retired.forEach(dispose)
        }
    }

    /// Runs `body` with the current value, or throws `closedError()` once `close()` was called.
    func use<R>(ifClosed closedError: () -> ProcessMemoryError,
                _ body: (Value) throws(ProcessMemoryError) -> R) throws(ProcessMemoryError) -> R {
        let acquired: Value? = state.withLock { state in
            guard let current = state.current else { return nil }
            state.inFlight += 1
            return current
        }
        guard let value = acquired else { throw closedError() }
        defer { release() }
        return try body(value)
    }

    /// Whether `close()` has been called.
    var isClosed: Bool { state.withLock { $0.current == nil } }

    /// Replaces the value; `update` returns the new value and the part of the old one to dispose of
    /// once no operation uses it. Does nothing after `close()` but dispose of `update`'s new value.
    func replace(_ update: (Value) -> (new: Value, retired: Value), orDispose fresh: Value) {
        let discard: Value? = state.withLock { state in
            guard let current = state.current else { return fresh }
            let (new, retired) = update(current)
            state.current = new
            state.retired.append(retired)
            if state.inFlight == 0 { disposeRetired(&state) }
            return nil
        }
        if let discard { dispose(discard) }
    }

    /// Stops new operations and disposes of the value once none is using it. Idempotent.
    func close() {
        state.withLock { state in
            guard let current = state.current else { return }
            state.current = nil
            state.retired.append(current)
            if state.inFlight == 0 { disposeRetired(&state) }
        }
    }

    private func release() {
        state.withLock { state in
            state.inFlight -= 1
            if state.inFlight == 0 { disposeRetired(&state) }
        }
    }

    private func disposeRetired(_ state: inout State) {
        state.retired.forEach(dispose)
        state.retired.removeAll()
    }
}
