import ProcessMemory
import Synchronization

extension Mach {
    /// A send right to a task port (`vm_task_t`, `task_t`): on Linux, the core library's
    /// `ProcessHandle`, bound to one process and its address space.
    ///
    /// ``portDeallocate(_:)`` releases it; later calls through it return
    /// ``KernReturn/sendInvalidDest``, as a send to a dead name does. Thread-safe.
    public final class Task: Sendable, CustomStringConvertible {
        private let slot: Mutex<ProcessHandle?>
        /// The process ID the port was obtained for.
        public let pid: Int32

        /// A task port for the process behind `processHandle` (which must carry the read right for
        /// `vm_read`).
        public init(_ processHandle: ProcessHandle) {
            self.pid = processHandle.pid
            self.slot = Mutex(processHandle)
        }

        /// The core handle, or `nil` once the port was deallocated.
        public var processHandle: ProcessHandle? { slot.withLock { $0 } }

        fileprivate func deallocate() -> Bool {
            slot.withLock { handle in
                guard let current = handle else { return false }
                current.close()
                handle = nil
                return true
            }
        }

        /// `task(PID)`, or `task(dead)` once deallocated.
        public var description: String { processHandle == nil ? "task(dead)" : "task(\(pid))" }
    }

    /// `task_for_pid(mach_task_self(), pid, &task)`: a task port for the process `pid`.
    ///
    /// Like the real call it says only ``KernReturn/failure`` for every refusal: no such process,
    /// access denied, a kernel thread (pid 2 and its children, which have no address space, as the
    /// kernel task cannot be obtained on macOS), a process that is exiting. On failure `task` is not
    /// changed.
    public static func taskForPid(_ pid: Int32, _ task: inout Task?) -> KernReturn {
        guard pid > 0 else { return .failure }
        do {
            task = Task(try ProcessHandle(pid: pid, rights: .read))
            return .success
        } catch {
            return .failure
        }
    }

    /// `mach_port_deallocate(mach_task_self(), task)`: releases the task port.
    ///
    /// Returns ``KernReturn/invalidName`` when it was already deallocated.
    @discardableResult
    public static func portDeallocate(_ task: Task) -> KernReturn {
        task.deallocate() ? .success : .invalidName
    }
}
