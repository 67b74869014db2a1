// Out-of-line wrappers: _GNU_SOURCE is defined here only, never in the public header, because
// defining it in a header Swift imports conflicts with Glibc's own module (see swift-system's shims.c).
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#ifdef __linux__

#include "CProcessMemory.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

// _IOWR('f', 17, struct procmap_query): written out because Debian 12's linux/fs.h predates it.
_Static_assert(sizeof(CProcessMemory_procmap_query) == 104, "struct procmap_query is 104 bytes");
static const unsigned long CProcessMemory_PROCMAP_QUERY = _IOWR('f', 17, CProcessMemory_procmap_query);
// _IOWR('f', 16, struct pm_scan_arg): written out for the same reason (Linux 6.7+).
_Static_assert(sizeof(CProcessMemory_pm_scan_arg) == 96, "struct pm_scan_arg is 96 bytes");
_Static_assert(sizeof(CProcessMemory_page_region) == 24, "struct page_region is 24 bytes");
static const unsigned long CProcessMemory_PAGEMAP_SCAN = _IOWR('f', 16, CProcessMemory_pm_scan_arg);
const unsigned int CProcessMemory_MFD_CLOEXEC = MFD_CLOEXEC;
const unsigned int CProcessMemory_MFD_ALLOW_SEALING = MFD_ALLOW_SEALING;
const int CProcessMemory_F_ADD_SEALS = F_ADD_SEALS;
const int CProcessMemory_F_GET_SEALS = F_GET_SEALS;
const int CProcessMemory_F_SEAL_SEAL = F_SEAL_SEAL;
const int CProcessMemory_F_SEAL_SHRINK = F_SEAL_SHRINK;
const int CProcessMemory_F_SEAL_GROW = F_SEAL_GROW;
const int CProcessMemory_F_SEAL_WRITE = F_SEAL_WRITE;
const int CProcessMemory_F_SEAL_FUTURE_WRITE = F_SEAL_FUTURE_WRITE;

ssize_t CProcessMemory_process_vm_readv(pid_t pid, const struct iovec *local, unsigned long liovcnt,
                                        const struct iovec *remote, unsigned long riovcnt,
                                        unsigned long flags) {
    return process_vm_readv(pid, local, liovcnt, remote, riovcnt, flags);
}

int CProcessMemory_pidfd_open(pid_t pid, unsigned int flags) {
    return (int)syscall(SYS_pidfd_open, pid, flags);
}

int CProcessMemory_pidfd_getfd(int pidfd, int targetfd, unsigned int flags) {
    return (int)syscall(SYS_pidfd_getfd, pidfd, targetfd, flags);
}

int CProcessMemory_pidfd_send_signal(int pidfd, int sig, unsigned int flags) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, flags);
}

int CProcessMemory_memfd_create(const char *name, unsigned int flags) {
    return memfd_create(name, flags);
}

int CProcessMemory_start_writeback(int fd, int64_t offset, int64_t count) {
    return sync_file_range(fd, (off64_t)offset, (off64_t)count, SYNC_FILE_RANGE_WRITE);
}

#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000
#endif

int CProcessMemory_is_dax(int dirfd, const char *path) {
    struct statx info;
    if (statx(dirfd, path, 0, STATX_BASIC_STATS, &info) != 0) return -1;
    return (info.stx_attributes_mask & STATX_ATTR_DAX) && (info.stx_attributes & STATX_ATTR_DAX) ? 1 : 0;
}

long CProcessMemory_ptrace(int request, pid_t pid, void *addr, void *data) {
    return ptrace((enum __ptrace_request)request, pid, addr, data);
}

int CProcessMemory_ioctl_procmap_query(int maps_fd, CProcessMemory_procmap_query *query) {
    return ioctl(maps_fd, CProcessMemory_PROCMAP_QUERY, query);
}

long CProcessMemory_ioctl_pagemap_scan(int pagemap_fd, CProcessMemory_pm_scan_arg *arg) {
    return ioctl(pagemap_fd, CProcessMemory_PAGEMAP_SCAN, arg);
}

// Memory objects: O_PATH (for refusing O_PATH descriptors) and the SCM_RIGHTS macros.
const int CProcessMemory_O_PATH = O_PATH;

size_t CProcessMemory_CMSG_SPACE(size_t length) {
    return CMSG_SPACE(length);
}

size_t CProcessMemory_CMSG_LEN(size_t length) {
    return CMSG_LEN(length);
}

struct cmsghdr *CProcessMemory_CMSG_FIRSTHDR(struct msghdr *msg) {
    return CMSG_FIRSTHDR(msg);
}

struct cmsghdr *CProcessMemory_CMSG_NXTHDR(struct msghdr *msg, struct cmsghdr *cmsg) {
    return CMSG_NXTHDR(msg, cmsg);
}

unsigned char *CProcessMemory_CMSG_DATA(struct cmsghdr *cmsg) {
    return CMSG_DATA(cmsg);
}


// Dumps: ptrace requests, note types and register-set sizes.
#include <elf.h>
#include <sys/user.h>
#include <sys/wait.h>
const int CProcessMemory_PTRACE_SEIZE = PTRACE_SEIZE;
const int CProcessMemory_PTRACE_INTERRUPT = PTRACE_INTERRUPT;
const int CProcessMemory_PTRACE_DETACH = PTRACE_DETACH;
const int CProcessMemory_PTRACE_GETREGSET = PTRACE_GETREGSET;
const int CProcessMemory_NT_PRSTATUS = NT_PRSTATUS;
const int CProcessMemory_NT_PRFPREG = NT_PRFPREG;
const int CProcessMemory_PTRACE_GETSIGINFO = PTRACE_GETSIGINFO;
#if defined(NT_X86_XSTATE)
const int CProcessMemory_NT_X86_XSTATE = NT_X86_XSTATE;
#else
const int CProcessMemory_NT_X86_XSTATE = 0;
#endif
const int CProcessMemory___WALL = __WALL;
#if defined(__x86_64__)
const size_t CProcessMemory_user_regs_size = sizeof(struct user_regs_struct);
const size_t CProcessMemory_user_fpregs_size = sizeof(struct user_fpregs_struct);
#elif defined(__aarch64__)
const size_t CProcessMemory_user_regs_size = sizeof(struct user_regs_struct);
const size_t CProcessMemory_user_fpregs_size = sizeof(struct user_fpsimd_struct);
#else
const size_t CProcessMemory_user_regs_size = 0;
const size_t CProcessMemory_user_fpregs_size = 0;
#endif

#endif // __linux__

#if defined(__x86_64__)
#include <cpuid.h>
int CProcessMemory_cpuid(unsigned int leaf, unsigned int subleaf, unsigned int *eax, unsigned int *ebx,
                         unsigned int *ecx, unsigned int *edx) {
    return __get_cpuid_count(leaf, subleaf, eax, ebx, ecx, edx);
}
#else
int CProcessMemory_cpuid(unsigned int leaf, unsigned int subleaf, unsigned int *eax, unsigned int *ebx,
                         unsigned int *ecx, unsigned int *edx) {
    (void)leaf; (void)subleaf; *eax = *ebx = *ecx = *edx = 0;
    return 0;
}
#endif
