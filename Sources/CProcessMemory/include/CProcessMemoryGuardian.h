// The stop guardian (issue 16): a small process that resumes a target procmem stopped if procmem
// dies first. Declared apart from CProcessMemory.h so the mechanism stays in files of its own.
#ifndef C_PROCESS_MEMORY_GUARDIAN_H
#define C_PROCESS_MEMORY_GUARDIAN_H

#ifdef __linux__

/// Starts a guardian (fork(2) twice, so it is reparented and never left a zombie) that holds one
/// end of a socket pair and waits in poll(2) for that end and for `pidfd`:
/// - the byte 'R' (the caller resumed the target itself): it exits;
/// - the target exited (`pidfd` readable): it exits;
/// - end of file (the caller died, whatever killed it): it resumes the target, writing "0" with
///   pwrite(2) to `freeze_fd` when that is not -1 (the cgroup's `cgroup.freeze`), else sending
///   SIGCONT with pidfd_send_signal(2), and exits.
/// The guardian has a session of its own, ignores SIGINT, SIGHUP, SIGTERM, SIGQUIT and SIGPIPE,
/// and closes every other descriptor it inherited. Only async-signal-safe calls run after fork.
/// On success stores the write end (close-on-exec) in `*control_fd` and returns 0; else -1 and errno.
int CProcessMemory_spawn_guardian(int pidfd, int freeze_fd, int *_Nonnull control_fd);

/// Sends 'R' on `control_fd` with send(2) `MSG_NOSIGNAL` (a guardian already gone gives EPIPE,
/// not SIGPIPE) and closes it.
void CProcessMemory_release_guardian(int control_fd);

#endif
#endif
