// CProcessMemory: prototypes of thin wrappers around the Linux calls the library makes that Swift's Glibc
// module does not import (it is imported without _GNU_SOURCE, and variadic functions such as syscall(2) and ptrace(2)
// cannot be called from Swift). Every symbol is prefixed so it can never clash with a libc name.
// The wrappers return the raw result (-1 and errno on failure); retry and errno mapping live in Swift.
// Calls only the fixture, the fault matrix or the tests make live in CProcessMemoryTestSupport.
#ifndef C_PROCESS_MEMORY_H
#define C_PROCESS_MEMORY_H

#ifdef __linux__

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "CProcessMemoryGuardian.h"

/// process_vm_readv(2); declared by glibc only under _GNU_SOURCE.
ssize_t CProcessMemory_process_vm_readv(pid_t pid,
                                        const struct iovec *_Nullable local, unsigned long liovcnt,
                                        const struct iovec *_Nullable remote, unsigned long riovcnt,
                                        unsigned long flags);

/// pidfd_open(2) through syscall(2): glibc 2.36 has a wrapper, older ones do not.
int CProcessMemory_pidfd_open(pid_t pid, unsigned int flags);

/// pidfd_getfd(2) through syscall(2).
int CProcessMemory_pidfd_getfd(int pidfd, int targetfd, unsigned int flags);

/// pidfd_send_signal(2) through syscall(2).
int CProcessMemory_pidfd_send_signal(int pidfd, int sig, unsigned int flags);

/// memfd_create(2); declared by glibc only under _GNU_SOURCE.
int CProcessMemory_memfd_create(const char *_Nonnull name, unsigned int flags);

/// sync_file_range(2) with SYNC_FILE_RANGE_WRITE: starts writeback of the dirty pages of a range
/// without waiting for it; declared by glibc only under _GNU_SOURCE.
int CProcessMemory_start_writeback(int fd, int64_t offset, int64_t count);

/// Whether the file at `path` relative to `dirfd` (links followed) is a DAX file: statx(2) with
/// STATX_ATTR_DAX in stx_attributes (Linux 5.8+). Returns 1 or 0, or -1 with errno set.
int CProcessMemory_is_dax(int dirfd, const char *_Nonnull path);

/// ptrace(2): variadic in glibc, so not callable from Swift.
long CProcessMemory_ptrace(int request, pid_t pid, void *_Nullable addr, void *_Nullable data);

/// Mirror of the kernel's struct procmap_query (linux/fs.h, Linux 6.11+), checked by _Static_assert.
typedef struct {
    uint64_t size;
    uint64_t query_flags;
    uint64_t query_addr;
    uint64_t vma_start;
    uint64_t vma_end;
    uint64_t vma_flags;
    uint64_t vma_page_size;
    uint64_t vma_offset;
    uint64_t inode;
    uint32_t dev_major;
    uint32_t dev_minor;
    uint32_t vma_name_size;
    uint32_t build_id_size;
    uint64_t vma_name_addr;
    uint64_t build_id_addr;
} CProcessMemory_procmap_query;

/// PROCMAP_QUERY ioctl(2) on an open /proc/PID/maps descriptor (Linux 6.11+; ENOTTY before).
int CProcessMemory_ioctl_procmap_query(int maps_fd, CProcessMemory_procmap_query *_Nonnull query);

/// Mirror of the kernel's struct pm_scan_arg (linux/fs.h, Linux 6.7+), checked by _Static_assert.
typedef struct {
    uint64_t size;
    uint64_t flags;
    uint64_t start;
    uint64_t end;
    uint64_t walk_end;
    uint64_t vec;
    uint64_t vec_len;
    uint64_t max_pages;
    uint64_t category_inverted;
    uint64_t category_mask;
    uint64_t category_anyof_mask;
    uint64_t return_mask;
} CProcessMemory_pm_scan_arg;

/// Mirror of the kernel's struct page_region (linux/fs.h, Linux 6.7+): one run of pages whose
/// categories (PAGE_IS_PRESENT 1 << 3, PAGE_IS_SWAPPED 1 << 4, ...) are the same.
typedef struct {
    uint64_t start;
    uint64_t end;
    uint64_t categories;
} CProcessMemory_page_region;

/// PAGEMAP_SCAN ioctl(2) on an open /proc/PID/pagemap descriptor (Linux 6.7+; ENOTTY before).
/// Returns the number of page_region entries filled, or -1 with errno set.
long CProcessMemory_ioctl_pagemap_scan(int pagemap_fd, CProcessMemory_pm_scan_arg *_Nonnull arg);

// Constants that are macros with casts or live in headers Swift does not import.
extern const unsigned int CProcessMemory_MFD_CLOEXEC;
extern const unsigned int CProcessMemory_MFD_ALLOW_SEALING;
extern const int CProcessMemory_F_ADD_SEALS;
extern const int CProcessMemory_F_GET_SEALS;
extern const int CProcessMemory_F_SEAL_SEAL;
extern const int CProcessMemory_F_SEAL_SHRINK;
extern const int CProcessMemory_F_SEAL_GROW;
extern const int CProcessMemory_F_SEAL_WRITE;
extern const int CProcessMemory_F_SEAL_FUTURE_WRITE;

// Memory objects (Objects/): the control-message macros of <sys/socket.h>, which Swift cannot
// import, for passing descriptors with SCM_RIGHTS over a Unix socket.
#include <sys/socket.h>

/// CMSG_SPACE(length): bytes of control buffer one message with `length` data bytes needs.
size_t CProcessMemory_CMSG_SPACE(size_t length);

/// CMSG_LEN(length): the `cmsg_len` of a message with `length` data bytes.
size_t CProcessMemory_CMSG_LEN(size_t length);

/// CMSG_FIRSTHDR(msg): the first control message, or NULL.
struct cmsghdr *_Nullable CProcessMemory_CMSG_FIRSTHDR(struct msghdr *_Nonnull msg);

/// CMSG_NXTHDR(msg, cmsg): the control message after `cmsg`, or NULL.
struct cmsghdr *_Nullable CProcessMemory_CMSG_NXTHDR(struct msghdr *_Nonnull msg, struct cmsghdr *_Nonnull cmsg);

/// CMSG_DATA(cmsg): the data bytes of a control message.
unsigned char *_Nonnull CProcessMemory_CMSG_DATA(struct cmsghdr *_Nonnull cmsg);

/// O_PATH, which <fcntl.h> defines only under _GNU_SOURCE.
extern const int CProcessMemory_O_PATH;


// Dumps (Dumps/): ptrace requests and note types for stopping a process and reading its registers.
extern const int CProcessMemory_PTRACE_SEIZE;
extern const int CProcessMemory_PTRACE_INTERRUPT;
extern const int CProcessMemory_PTRACE_DETACH;
extern const int CProcessMemory_PTRACE_GETREGSET;
extern const int CProcessMemory_NT_PRSTATUS;
extern const int CProcessMemory_NT_PRFPREG;
/// PTRACE_GETSIGINFO: the siginfo of a thread in a signal-delivery stop (a core's NT_SIGINFO).
extern const int CProcessMemory_PTRACE_GETSIGINFO;
/// NT_X86_XSTATE (0x202): the XSAVE area (AVX, AVX-512) through PTRACE_GETREGSET; 0 off x86_64.
extern const int CProcessMemory_NT_X86_XSTATE;
/// __WALL for waitpid(2): wait for every thread, not only the thread-group leader.
extern const int CProcessMemory___WALL;
/// sizeof(struct user_regs_struct) (x86_64) / sizeof(struct user_pt_regs) (arm64): the NT_PRSTATUS regset.
extern const size_t CProcessMemory_user_regs_size;
/// sizeof(struct user_fpregs_struct): the NT_PRFPREG regset.
extern const size_t CProcessMemory_user_fpregs_size;

/// cpuid(leaf, subleaf) (`__get_cpuid_count`); returns 0 when the leaf is not supported or not on
/// x86_64. Leaf 0xD gives each XSAVE component's size and offset (a core's NT_X86_XSTATE layout).
int CProcessMemory_cpuid(unsigned int leaf, unsigned int subleaf, unsigned int *_Nonnull eax, unsigned int *_Nonnull ebx,
                         unsigned int *_Nonnull ecx, unsigned int *_Nonnull edx);

#endif // __linux__
#endif // C_PROCESS_MEMORY_H
