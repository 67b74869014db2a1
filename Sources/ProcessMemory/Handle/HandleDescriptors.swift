import Glibc
import Synchronization

/// The descriptors that bind a handle to one process and one address space.
struct HandleDescriptors: Sendable {
    /// pidfd_open(2): tells whether the process has exited, immune to PID reuse.
    var pidfd: CInt
    /// `/proc/PID` as a directory: lookups through it fail once the process is gone, even if the
    /// PID is reused.
    var procDir: CInt
    /// `/proc/PID/mem`, bound to the address space that was current when it was opened.
    var mem: CInt
    /// `/proc/PID/maps`, bound to the same address space (reads return nothing after exec or exit).
    var maps: CInt

    func closeAll() {
        for fd in [pidfd, procDir, mem, maps] where fd >= 0 { Sys.close(fd) }
    }
}

/// Guards the descriptors so `close()` and `reopen()` never close one that an operation in another
/// thread is still using: retired descriptors are closed when the last operation using them ends.
final class DescriptorBox: Sendable {
    private struct State {
        var current: HandleDescriptors?
        var execed = false
        var inFlight = 0
        var retired: [HandleDescriptors] = []
    }

    private let state: Mutex<State>

    init(_ descriptors: HandleDescriptors) {
        state = Mutex(State(current: descriptors))
    }

    deinit {
        state.withLock { state in
            state.current?.closeAll()
            state.retired.forEach { $0.closeAll() }
        }
    }

    /// Runs `body` with the current descriptors, or throws `badHandle` / `execed`.
    func use<R>(pid: Int32, _ body: (HandleDescriptors) throws(ProcessMemoryError) -> R) throws(ProcessMemoryError) -> R {
        let acquired: Result<HandleDescriptors, ProcessMemoryError> = state.withLock { state in
            guard let current = state.current else { return .failure(.closed(pid: pid)) }
            if state.execed { return .failure(.execed(pid: pid)) }
            state.inFlight += 1
            return .success(current)
        }
        let descriptors = try acquired.get()
        defer { release() }
        return try body(descriptors)
    }

    /// Runs `body` with the current descriptors even after an exec (state queries, reopen).
    func peek<R>(pid: Int32, _ body: (HandleDescriptors, Bool) throws(ProcessMemoryError) -> R) throws(ProcessMemoryError) -> R {
        let acquired: Result<(HandleDescriptors, Bool), ProcessMemoryError> = state.withLock { state in
            guard let current = state.current else { return .failure(.closed(pid: pid)) }
            state.inFlight += 1
            return .success((current, state.execed))
        }
        let (descriptors, execed) = try acquired.get()
        defer { release() }
        return try body(descriptors, execed)
    }

    var isClosed: Bool { state.withLock { $0.current == nil } }

    func markExeced() { state.withLock { $0.execed = true } }

    /// Replaces the address-space descriptors after an exec.
    func replace(mem: CInt, maps: CInt) {
        state.withLock { state in
            guard var current = state.current else {
                Sys.close(mem)
                Sys.close(maps)
                return
            }
            state.retired.append(HandleDescriptors(pidfd: -1, procDir: -1, mem: current.mem, maps: current.maps))
            current.mem = mem
            current.maps = maps
            state.current = current
            state.execed = false
            if state.inFlight == 0 { Self.closeRetired(&state) }
        }
    }

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
        state.retired.forEach { $0.closeAll() }
        state.retired.removeAll()
    }
}
