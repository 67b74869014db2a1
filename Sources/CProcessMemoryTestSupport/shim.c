// Out-of-line wrappers: _GNU_SOURCE is defined here only, never in the header Swift imports (it
// conflicts with Glibc's own module there), as in Sources/CProcessMemory/shim.c.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#ifdef __linux__

#include "CProcessMemoryTestSupport.h"

#include <linux/sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

const unsigned int CProcessMemoryTestSupport_MFD_CLOEXEC = MFD_CLOEXEC;
const int CProcessMemoryTestSupport_MADV_GUARD_INSTALL = MADV_GUARD_INSTALL;
const int CProcessMemoryTestSupport_PR_SET_PDEATHSIG = PR_SET_PDEATHSIG;
const int CProcessMemoryTestSupport_PR_SET_DUMPABLE = PR_SET_DUMPABLE;
const int CProcessMemoryTestSupport_PR_SET_VMA = PR_SET_VMA;
const int CProcessMemoryTestSupport_PR_SET_VMA_ANON_NAME = PR_SET_VMA_ANON_NAME;

int CProcessMemoryTestSupport_prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4,
                                    unsigned long arg5) {
    return prctl(option, arg2, arg3, arg4, arg5);
}

pid_t CProcessMemoryTestSupport_clone3_set_tid(uint64_t flags, uint64_t exit_signal, const pid_t *set_tid,
                                               size_t set_tid_size) {
    struct clone_args args;
    memset(&args, 0, sizeof(args));
    args.flags = flags;
    args.exit_signal = exit_signal;
    args.set_tid = (uint64_t)(uintptr_t)set_tid;
    args.set_tid_size = set_tid_size;
    return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
}

int CProcessMemoryTestSupport_memfd_create(const char *name, unsigned int flags) {
    return memfd_create(name, flags);
}

int CProcessMemoryTestSupport_memfd_secret(unsigned int flags) {
    return (int)syscall(SYS_memfd_secret, flags);
}

int CProcessMemoryTestSupport_ioctl_ptr(int fd, unsigned long request, void *arg) {
    return ioctl(fd, request, arg);
}

#endif // __linux__
