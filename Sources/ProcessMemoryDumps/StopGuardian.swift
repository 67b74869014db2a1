import Glibc
import ProcessMemoryCore
import SystemPackage

/// Keeps a target from being left stopped when the process that stopped it dies.
///
/// `SIGSTOP` and the cgroup freezer outlive their sender: a procmem killed with SIGKILL or SIGHUP
/// while it held a target left it stopped (state `T`) or its cgroup frozen (issue 16). Before
/// such a stop, ``start(pid:pidfd:freezeFile:)`` spawns a guardian process that holds one end of a
/// socket pair; the stopper holds the other. ``release()`` (after the stopper resumed the target itself)
/// tells the guardian to leave; if instead the stopper dies, however, the kernel closes its end and
/// the guardian resumes the target (`SIGCONT` through the pidfd, immune to PID reuse, or `0` into
/// `cgroup.freeze` through a descriptor opened beforehand). ptrace needs none: the kernel detaches
/// a dead tracer's tracees.
struct StopGuardian {
    private let control: FileDescriptor
    /// The freezer's `cgroup.freeze`, opened for the guardian (nil for the signal method).
    private let freezeFD: FileDescriptor?

    /// Starts a guardian for the target behind `pidfd`, stopped with SIGSTOP or, with `freezeFile`,
    /// frozen through that `cgroup.freeze`.
    ///
    /// - Throws: `.io`/`.noMemory` when the guardian cannot be started (the stop is then not made).
    static func start(pid: Int32, pidfd: FileDescriptor, freezeFile: String?) throws(ProcessMemoryError) -> StopGuardian {
        var freezeFD: FileDescriptor?
        if let freezeFile {
            switch FileDescriptor.open(path: freezeFile, O_WRONLY | O_NOFOLLOW) {
            case .success(let fd): freezeFD = fd
            case .failure(let error):
                throw ProcessMemoryError(ErrnoMapping.code(for: error, systemCall: SystemCall(.open)), pid: pid, systemCall: SystemCall(.open, freezeFile),
                                         errno: error, message: "\(freezeFile) cannot be opened: \(error)")
            }
        }
        switch GuardianProcess.spawn(pidfd: pidfd, freezeFile: freezeFD) {
        case .success(let control):
            return StopGuardian(control: control, freezeFD: freezeFD)
        case .failure(let error):
            if let freezeFD { freezeFD.closeQuietly() }
            throw ProcessMemoryError(error == .noMemory ? .noMemory : .io, pid: pid, systemCall: SystemCall(.fork), errno: error,
                                     message: "the guardian that resumes the process if procmem dies could not be started: \(error); the process was not stopped")
        }
    }

    /// Tells the guardian the target was resumed, so it leaves without acting.
    func release() {
        GuardianProcess.release(control)
        if let freezeFD { freezeFD.closeQuietly() }
    }
}
