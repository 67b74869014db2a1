import ProcessMemoryCore
import SystemPackage
/// How a process is held still while it is read, so a dump or a diff sees one consistent moment.
///
/// | method | how | trade-offs |
/// |---|---|---|
/// | ``none`` | nothing | the target keeps running: a dump may mix moments |
/// | ``signal`` | `SIGSTOP`, then `SIGCONT` (`pidfd_send_signal(2)`) | works for any process we may signal; the parent and the shell see the stop (`waitpid` `WUNTRACED`), a `SIGCONT` handler runs on resume, and if the dumper is killed with `SIGKILL` the target stays stopped. A target that was already stopped is left stopped. |
/// | ``ptrace`` | `PTRACE_SEIZE` + `PTRACE_INTERRUPT` on every thread, `PTRACE_DETACH` to resume | stops and gives registers in one go; invisible to the parent; the kernel resumes the target by itself if the dumper dies. Fails while another debugger (gdb, strace) traces the target or when Yama forbids it; must be resumed from the thread that stopped it. |
/// | ``cgroupFreezer`` | `cgroup.freeze` of the target's own cgroup v2 | freezes every thread at once, invisible to the target and its parent, no signal is delivered; only when the target has a cgroup of its own (freezing a shared cgroup would stop other processes, so it is refused) and we may write it. A killed dumper leaves it frozen. |
///
/// With every method but ``none``, ``StoppedProcess/registerCapture()`` reads the registers (for
/// ``signal`` and ``cgroupFreezer`` by a brief `PTRACE_SEIZE` of each stopped thread).
public enum StopMethod: String, Sendable, Hashable, CaseIterable, Codable {
    /// Do not stop the target.
    case none
    /// `SIGSTOP` and `SIGCONT`.
    case signal
    /// `PTRACE_SEIZE`, `PTRACE_INTERRUPT` and `PTRACE_DETACH` on every thread.
    case ptrace
    /// The cgroup v2 freezer (`cgroup.freeze`) of the target's own cgroup.
    case cgroupFreezer
}

/// The registers of one stopped thread, as `PTRACE_GETREGSET` returns them: the bytes of the
/// architecture's `user_regs_struct` (`NT_PRSTATUS`) and `user_fpregs_struct` (`NT_PRFPREG`).
public struct ThreadRegisters: Sendable, Hashable {
    /// The thread ID.
    public var tid: Int32
    /// The general-purpose registers (`elf_gregset_t`), in the kernel's layout.
    public var general: [UInt8]
    /// The floating-point registers, when the kernel gave them.
    public var floatingPoint: [UInt8]?
    /// The extended register state (`NT_X86_XSTATE` on x86_64: AVX, AVX-512), when the kernel gave it.
    public var extendedState: [UInt8]? = nil
    /// The thread's `siginfo_t` (`PTRACE_GETSIGINFO`), when it is in a signal-delivery stop;
    /// `nil` in a group stop or a `PTRACE_INTERRUPT` stop, where the kernel has none.
    public var signalInfo: [UInt8]? = nil

    /// Registers as the kernel gave them.
    public init(tid: Int32, general: [UInt8], floatingPoint: [UInt8]?, extendedState: [UInt8]? = nil, signalInfo: [UInt8]? = nil) {
        self.tid = tid
        self.general = general
        self.floatingPoint = floatingPoint
        self.extendedState = extendedState
        self.signalInfo = signalInfo
    }
}

/// The registers ``StoppedProcess/registerCapture()`` could read, and the threads whose registers
/// are absent, each with the reason. A core file writes `NT_PRSTATUS` only for threads in
/// ``registers``; it never writes zeros in place of registers it could not read.
public struct RegisterCapture: Sendable, Hashable {
    /// A thread whose registers could not be read.
    public struct Absent: Sendable, Hashable, Codable {
        /// The thread ID.
        public var tid: Int32
        /// Why: the process was not stopped, the ptrace call that failed and its errno, or a thread
        /// that did not trap in time.
        public var reason: String

        /// Creates an entry.
        public init(tid: Int32, reason: String) {
            self.tid = tid
            self.reason = reason
        }
    }

    /// The registers read, main thread first.
    public var registers: [ThreadRegisters]
    /// The threads without registers, in thread order.
    public var absent: [Absent]

    /// Creates a capture.
    public init(registers: [ThreadRegisters], absent: [Absent]) {
        self.registers = registers
        self.absent = absent
    }
}
