// Raw baselines: the plainest C a reader of another process would write, no checks beyond the kernel's.
#ifndef C_BASELINE_H
#define C_BASELINE_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// Reads `length` bytes at `remote` with process_vm_readv into `buffer`, in calls of at most 1 GiB.
ssize_t CBaseline_bulk_process_vm_readv(pid_t pid, uint64_t remote, void *_Nonnull buffer, size_t length);

/// Reads `length` bytes at `remote` with pread on an open /proc/PID/mem descriptor.
ssize_t CBaseline_bulk_pread(int mem_fd, uint64_t remote, void *_Nonnull buffer, size_t length);

/// One pread(2) of `size` bytes per address on a kept /proc/PID/mem descriptor; returns reads done.
size_t CBaseline_single_pread(int mem_fd, const uint64_t *_Nonnull addresses, size_t count, size_t size,
                              void *_Nonnull buffer);

/// One process_vm_readv(2) of `size` bytes per address; returns reads done.
size_t CBaseline_single_process_vm_readv(pid_t pid, const uint64_t *_Nonnull addresses, size_t count, size_t size,
                                         void *_Nonnull buffer);

/// Batched process_vm_readv: 1024 remote iovecs per call, each into its own slot of `buffer`;
/// on a short count it resumes after the failing iovec. Returns the number of entries read whole.
size_t CBaseline_batched_process_vm_readv(pid_t pid, const uint64_t *_Nonnull addresses, size_t count, size_t size,
                                          void *_Nonnull buffer);

/// Peak resident set size of this process (VmHWM) in bytes, and a reset of it (clear_refs 5).
long CBaseline_peak_rss(void);
void CBaseline_reset_peak_rss(void);
/// A raw scan: process_vm_readv of `length` bytes at `remote` in 4 MiB chunks into one buffer,
/// memchr on the needle's last byte, memcmp; counts matches whose address is a multiple of `alignment`.
size_t CBaseline_scan_bytes(pid_t pid, uint64_t remote, size_t length, const uint8_t *_Nonnull needle,
                            size_t needle_len, size_t alignment);
/// The floor of a dense core dump: writes `length` bytes of `buffer` to a new file at `path`
/// (O_CREAT | O_EXCL, 0600) with `chunk`-byte pwrites, starting the writeback of every `writeback`
/// bytes written (sync_file_range) when `writeback` is non-zero, fsyncs it when `sync` is non-zero.
/// Returns 0, or -1 with errno set.
int CBaseline_write_floor(const char *_Nonnull path, const void *_Nonnull buffer, size_t length, size_t chunk, int sync,
                          size_t writeback);
#endif
