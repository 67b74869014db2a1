// The stop guardian; see CProcessMemoryGuardian.h. Raw system calls only after fork(2): procmem is
// multithreaded, so the child may call nothing that takes a lock.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#ifdef __linux__

#include "CProcessMemoryGuardian.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/// Closes every descriptor but the `count` ascending ones in `keep` (close_range(2), Linux 5.9+).
static void close_all_but(const int *keep, int count) {
    unsigned int from = 0;
    for (int i = 0; i < count; i++) {
        if (keep[i] < 0) continue;
        if ((unsigned int)keep[i] > from) syscall(SYS_close_range, from, (unsigned int)keep[i] - 1, 0);
        from = (unsigned int)keep[i] + 1;
    }
    syscall(SYS_close_range, from, ~0U, 0);
}

static void guard_target(int control, int pidfd, int freeze_fd) {
    setsid();
    struct sigaction ignore;
    memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    int ignored[] = {SIGINT, SIGHUP, SIGTERM, SIGQUIT, SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU};
    for (unsigned i = 0; i < sizeof ignored / sizeof ignored[0]; i++) sigaction(ignored[i], &ignore, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int keep[3] = {control, pidfd, freeze_fd};
    // Ascending order for close_all_but.
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (keep[j] < keep[i]) { int t = keep[i]; keep[i] = keep[j]; keep[j] = t; }
    close_all_but(keep, 3);
    struct pollfd watched[2] = {{.fd = control, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
    for (;;) {
        int ready = poll(watched, 2, -1);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) break;  // cannot wait: resume rather than risk leaving the target stopped
        if (watched[0].revents) {
            char byte = 0;
            ssize_t got = recv(control, &byte, 1, 0);
            if (got < 0 && errno == EINTR) continue;
            if (got == 1 && byte == 'R') _exit(0);
            break;  // end of file: the caller is gone
        }
        if (watched[1].revents) _exit(0);  // the target exited
    }
    if (freeze_fd >= 0) {
        while (pwrite(freeze_fd, "0", 1, 0) < 0 && errno == EINTR) {}
    } else {
        syscall(SYS_pidfd_send_signal, pidfd, SIGCONT, NULL, 0);
    }
    _exit(0);
}

int CProcessMemory_spawn_guardian(int pidfd, int freeze_fd, int *_Nonnull control_fd) {
    // A socket pair, not a pipe: the release is sent with MSG_NOSIGNAL, so a guardian that has
    // already left (its target exited) gives EPIPE, never a SIGPIPE that would kill the caller.
    int ends[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) return -1;
    pid_t child = fork();
    if (child < 0) {
        int saved = errno;
        close(ends[0]);
        close(ends[1]);
        errno = saved;
        return -1;
    }
    if (child == 0) {
        pid_t guardian = fork();
        if (guardian != 0) _exit(guardian < 0 ? 1 : 0);
        guard_target(ends[0], pidfd, freeze_fd);
        _exit(0);
    }
    close(ends[0]);
    int status = 0;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) break;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        close(ends[1]);
        errno = EAGAIN;
        return -1;
    }
    *control_fd = ends[1];
    return 0;
}

void CProcessMemory_release_guardian(int control_fd) {
    char byte = 'R';
    while (send(control_fd, &byte, 1, MSG_NOSIGNAL) < 0 && errno == EINTR) {}
    close(control_fd);
}

#endif
