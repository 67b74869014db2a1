// CProcessMemoryTestSupport: the Linux calls that only the fixture, the fault matrix and the tests
// make (never the library), as prefixed thin wrappers. Kept apart from CProcessMemory so the shim the
// library links holds the library's own system calls and nothing else. No logic: each wrapper returns
// the raw result (-1 and errno on failure). _GNU_SOURCE is defined in the .c file only.
#ifndef C_PROCESS_MEMORY_TEST_SUPPORT_H
#define C_PROCESS_MEMORY_TEST_SUPPORT_H

#ifdef __linux__

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// prctl(2): variadic in glibc, so not callable from Swift.
int CProcessMemoryTestSupport_prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4,
                                    unsigned long arg5);

/// clone3(2) with only the fields the fixture needs (flags, exit signal, set_tid). Returns 0 in the
/// child. Recreates a process at a chosen PID (needs CAP_SYS_ADMIN in the PID namespace).
pid_t CProcessMemoryTestSupport_clone3_set_tid(uint64_t flags, uint64_t exit_signal,
                                               const pid_t *_Nullable set_tid, size_t set_tid_size);

/// memfd_create(2); declared by glibc only under _GNU_SOURCE.
int CProcessMemoryTestSupport_memfd_create(const char *_Nonnull name, unsigned int flags);

/// memfd_secret(2) through syscall(2): glibc has no wrapper.
int CProcessMemoryTestSupport_memfd_secret(unsigned int flags);

/// ioctl(2) with a pointer argument: variadic in glibc, so not callable from Swift.
int CProcessMemoryTestSupport_ioctl_ptr(int fd, unsigned long request, void *_Nullable arg);

// Constants that are macros with casts or live in headers Swift does not import.
extern const unsigned int CProcessMemoryTestSupport_MFD_CLOEXEC;
extern const int CProcessMemoryTestSupport_MADV_GUARD_INSTALL;
extern const int CProcessMemoryTestSupport_PR_SET_PDEATHSIG;
extern const int CProcessMemoryTestSupport_PR_SET_DUMPABLE;
extern const int CProcessMemoryTestSupport_PR_SET_VMA;
extern const int CProcessMemoryTestSupport_PR_SET_VMA_ANON_NAME;

#endif // __linux__
#endif // C_PROCESS_MEMORY_TEST_SUPPORT_H
