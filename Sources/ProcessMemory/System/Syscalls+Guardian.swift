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
