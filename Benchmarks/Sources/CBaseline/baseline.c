#define _GNU_SOURCE 1
#include "CBaseline.h"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

ssize_t CBaseline_bulk_process_vm_readv(pid_t pid, uint64_t remote, void *buffer, size_t length) {
    size_t done = 0;
    while (done < length) {
        size_t want = length - done > (1u << 30) ? (1u << 30) : length - done;
        struct iovec local = {(char *)buffer + done, want};
        struct iovec rem = {(void *)(uintptr_t)(remote + done), want};
        ssize_t n = process_vm_readv(pid, &local, 1, &rem, 1, 0);
        if (n <= 0) return done ? (ssize_t)done : n;
        done += (size_t)n;
        if ((size_t)n < want) break;
    }
    return (ssize_t)done;
}

ssize_t CBaseline_bulk_pread(int mem_fd, uint64_t remote, void *buffer, size_t length) {
    size_t done = 0;
    while (done < length) {
        size_t want = length - done > (1u << 30) ? (1u << 30) : length - done;
        ssize_t n = pread(mem_fd, (char *)buffer + done, want, (off_t)(remote + done));
        if (n <= 0) return done ? (ssize_t)done : n;
        done += (size_t)n;
        if ((size_t)n < want) break;
    }
    return (ssize_t)done;
}

size_t CBaseline_single_pread(int mem_fd, const uint64_t *addresses, size_t count, size_t size, void *buffer) {
    size_t ok = 0;
    for (size_t i = 0; i < count; i++)
        if (pread(mem_fd, (char *)buffer + i * size, size, (off_t)addresses[i]) == (ssize_t)size) ok++;
    return ok;
}

size_t CBaseline_single_process_vm_readv(pid_t pid, const uint64_t *addresses, size_t count, size_t size, void *buffer) {
    size_t ok = 0;
    for (size_t i = 0; i < count; i++) {
        struct iovec local = {(char *)buffer + i * size, size};
        struct iovec rem = {(void *)(uintptr_t)addresses[i], size};
        if (process_vm_readv(pid, &local, 1, &rem, 1, 0) == (ssize_t)size) ok++;
    }
    return ok;
}

size_t CBaseline_batched_process_vm_readv(pid_t pid, const uint64_t *addresses, size_t count, size_t size, void *buffer) {
    struct iovec local[1024], rem[1024];
    size_t ok = 0, next = 0;
    while (next < count) {
        size_t n = count - next > 1024 ? 1024 : count - next;
        for (size_t i = 0; i < n; i++) {
            local[i].iov_base = (char *)buffer + (next + i) * size;
            local[i].iov_len = size;
            rem[i].iov_base = (void *)(uintptr_t)addresses[next + i];
            rem[i].iov_len = size;
        }
        ssize_t got = process_vm_readv(pid, local, n, rem, n, 0);
        size_t whole = got > 0 ? (size_t)got / size : 0;
        ok += whole;
        next += whole < n ? whole + 1 : n;  // skip the failing iovec and resume after it
    }
    return ok;
}

long CBaseline_peak_rss(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) { sscanf(line + 6, "%ld", &kb); break; }
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

void CBaseline_reset_peak_rss(void) {
    int fd = open("/proc/self/clear_refs", O_WRONLY);
    if (fd >= 0) { (void)write(fd, "5", 1); close(fd); }
}
