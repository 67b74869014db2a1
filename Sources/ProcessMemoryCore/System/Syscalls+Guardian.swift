import CProcessMemory
import Glibc
import SystemPackage

// The stop guardian (Dumps/StopGuardian.swift).
extension Sys {
    /// Starts a guardian process (fork(2) twice, C code only after the fork) that resumes the
    /// target behind `pidfd` when the returned socket closes without the byte `R`:
    /// pwrite(2) of "0" to `freezeFD` when given, else pidfd_send_signal(2) `SIGCONT`.
    static func spawnGuardian(pidfd: CInt, freezeFD: CInt?) -> Result<CInt, Errno> {
        var control: CInt = -1
        return valueOrErrno { CProcessMemory_spawn_guardian(pidfd, freezeFD ?? -1, &control) }.map { _ in control }
    }

    /// send(2) of the byte `R` with `MSG_NOSIGNAL`, then close(2): the guardian leaves without acting.
    static func releaseGuardian(_ control: CInt) {
        CProcessMemory_release_guardian(control)
    }
}

/// The stop guardian as the dumps module sees it: a process that resumes a stopped target when the
/// process that stopped it dies (see `Sys.spawnGuardian`).
package enum GuardianProcess {
    /// Starts a guardian for the process behind `pidfd`; returns the control socket.
    package static func spawn(pidfd: FileDescriptor, freezeFile: FileDescriptor?) -> Result<FileDescriptor, Errno> {
        Sys.spawnGuardian(pidfd: pidfd.rawValue, freezeFD: freezeFile?.rawValue).map(FileDescriptor.init(rawValue:))
    }

    /// Tells the guardian behind `control` that the target was resumed, and closes the socket.
    package static func release(_ control: FileDescriptor) {
        Sys.releaseGuardian(control.rawValue)
    }
}
