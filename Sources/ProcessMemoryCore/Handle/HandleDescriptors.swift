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
    /// `/proc/PID/pagemap`, bound to the same address space, or -1 when it could not be opened:
    /// tells a protect-mode read whether a page is populated (see `UserfaultfdGuard`).
    var pagemap: CInt = -1

    func closeAll() {
        for fd in [pidfd, procDir, mem, maps, pagemap] where fd >= 0 { Sys.close(fd) }
    }
}

/// A handle's descriptors, guarded so `close()` and `reopen()` never close one that an operation in
/// another thread is still using, plus the handle's "has exec'd" mark.
final class DescriptorBox: Sendable {
    private let resource: GuardedResource<HandleDescriptors>
    private let execed = Atomic<Bool>(false)

    init(_ descriptors: HandleDescriptors) {
        resource = GuardedResource(descriptors) { $0.closeAll() }
    }

    /// Runs `body` with the current descriptors, or throws `badHandle` / `execed`.
    func use<R>(pid: Int32, _ body: (HandleDescriptors) throws(ProcessMemoryError) -> R) throws(ProcessMemoryError) -> R {
        try resource.use(ifClosed: { .closed(pid: pid) }) { (descriptors) throws(ProcessMemoryError) -> R in
            if execed.load(ordering: .acquiring) { throw .execed(pid: pid) }
            return try body(descriptors)
        }
    }

    /// Runs `body` with the current descriptors even after an exec (state queries, reopen).
    func peek<R>(pid: Int32, _ body: (HandleDescriptors, Bool) throws(ProcessMemoryError) -> R) throws(ProcessMemoryError) -> R {
        try resource.use(ifClosed: { .closed(pid: pid) }) { (descriptors) throws(ProcessMemoryError) -> R in
            try body(descriptors, execed.load(ordering: .acquiring))
        }
    }

    var isClosed: Bool { resource.isClosed }

    func markExeced() { execed.store(true, ordering: .releasing) }

    /// Replaces the address-space descriptors after an exec; the old ones are closed once unused.
    func replace(mem: CInt, maps: CInt, pagemap: CInt) {
        resource.replace({ current in
            var updated = current
            updated.mem = mem
            updated.maps = maps
            updated.pagemap = pagemap
            return (updated, HandleDescriptors(pidfd: -1, procDir: -1, mem: current.mem, maps: current.maps, pagemap: current.pagemap))
        }, orDispose: HandleDescriptors(pidfd: -1, procDir: -1, mem: mem, maps: maps, pagemap: pagemap))
        execed.store(false, ordering: .releasing)
    }

    func close() { resource.close() }
}
