import Glibc
import Synchronization

/// The descriptors that bind a handle to one process and one address space.
package struct HandleDescriptors: Sendable {
    /// pidfd_open(2): tells whether the process has exited, immune to PID reuse.
    package var pidfd: CInt
    /// `/proc/PID` as a directory: lookups through it fail once the process is gone, even if the
    /// PID is reused.
    package var procDir: CInt
    /// `/proc/PID/mem`, bound to the address space that was current when it was opened.
    package var mem: CInt
    /// `/proc/PID/maps`, bound to the same address space (reads return nothing after exec or exit).
    package var maps: CInt

    package func closeAll() {
        for fd in [pidfd, procDir, mem, maps] where fd >= 0 { Sys.close(fd) }
    }
}

/// A handle's descriptors, guarded so `close()` and `reopen()` never close one that an operation in
/// another thread is still using, plus the handle's "has exec'd" mark.
package final class DescriptorBox: Sendable {
    private let resource: GuardedResource<HandleDescriptors>
    private let execed = Atomic<Bool>(false)

    package init(_ descriptors: HandleDescriptors) {
        resource = GuardedResource(descriptors) { $0.closeAll() }
    }

    /// Runs `body` with the current descriptors, or throws `badHandle` / `execed`.
    package func use<R>(pid: Int32, _ body: (HandleDescriptors) throws(ProcessMemoryError) -> R) throws(ProcessMemoryError) -> R {
        try resource.use(ifClosed: { .closed(pid: pid) }) { (descriptors) throws(ProcessMemoryError) -> R in
            if execed.load(ordering: .acquiring) { throw .execed(pid: pid) }
            return try body(descriptors)
        }
    }

    /// Runs `body` with the current descriptors even after an exec (state queries, reopen).
    package func peek<R>(pid: Int32, _ body: (HandleDescriptors, Bool) throws(ProcessMemoryError) -> R) throws(ProcessMemoryError) -> R {
        try resource.use(ifClosed: { .closed(pid: pid) }) { (descriptors) throws(ProcessMemoryError) -> R in
            try body(descriptors, execed.load(ordering: .acquiring))
        }
    }

    package var isClosed: Bool { resource.isClosed }

    package func markExeced() { execed.store(true, ordering: .releasing) }

    /// Replaces the address-space descriptors after an exec; the old ones are closed once unused.
    package func replace(mem: CInt, maps: CInt) {
        resource.replace({ current in
            var updated = current
            updated.mem = mem
            updated.maps = maps
            return (updated, HandleDescriptors(pidfd: -1, procDir: -1, mem: current.mem, maps: current.maps))
        }, orDispose: HandleDescriptors(pidfd: -1, procDir: -1, mem: mem, maps: maps))
        execed.store(false, ordering: .releasing)
    }

    package func close() { resource.close() }
}
