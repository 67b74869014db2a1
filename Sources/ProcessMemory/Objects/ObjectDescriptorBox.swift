import Glibc
import Synchronization

/// Guards a memory object's descriptor the way ``DescriptorBox`` guards a handle's: ``close()``
/// never closes it while an operation in another thread is still using it; it is closed when the
/// last such operation ends.
final class ObjectDescriptorBox: Sendable {
    private struct State {
        var current: CInt?
        var inFlight = 0
        var retired: [CInt] = []
    }

    private let state: Mutex<State>

    init(_ descriptor: CInt) {
        state = Mutex(State(current: descriptor))
    }

    deinit {
        state.withLock { state in
            if let current = state.current { Sys.close(current) }
            state.retired.forEach { Sys.close($0) }
        }
    }

    /// Runs `body` with the descriptor, or throws `badHandle` when the object was closed.
    func use<R>(_ body: (CInt) throws(ProcessMemoryError) -> R) throws(ProcessMemoryError) -> R {
        let acquired: CInt? = state.withLock { state in
            guard let current = state.current else { return nil }
            state.inFlight += 1
            return current
        }
        guard let descriptor = acquired else { throw .objectClosed() }
        defer { release() }
        return try body(descriptor)
    }

    var isClosed: Bool { state.withLock { $0.current == nil } }

    func close() {
        state.withLock { state in
            guard let current = state.current else { return }
            state.current = nil
            state.retired.append(current)
            if state.inFlight == 0 { Self.closeRetired(&state) }
        }
    }

    private func release() {
        state.withLock { state in
            state.inFlight -= 1
            if state.inFlight == 0 { Self.closeRetired(&state) }
        }
    }

    private static func closeRetired(_ state: inout State) {
        state.retired.forEach { Sys.close($0) }
        state.retired.removeAll()
    }
}

extension ProcessMemoryError {
    static func objectClosed() -> Self {
        Self(.badHandle, message: "the memory object has been closed")
    }

    static func objectLacksRight(_ right: String, offset: UInt64? = nil) -> Self {
        Self(.accessDenied, address: offset, accessDenial: .handleLacksRight,
             message: "the memory object was opened without the \(right) right")
    }
}
