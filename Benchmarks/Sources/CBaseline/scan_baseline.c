// Raw scan baselines: process_vm_readv in 4 MiB chunks through one reused buffer, memchr on one
// byte of the needle, then a compare; the loop a C programmer would write, single-threaded.
#define _GNU_SOURCE
#include "CBaseline.h"
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define SCAN_CHUNK (4u << 20)

size_t CBaseline_scan_bytes(pid_t pid, uint64_t remote, size_t length, const uint8_t *needle, size_t needle_len,
                            size_t alignment) {
    if (needle_len == 0 || needle_len > 4096) return 0;
    uint8_t *buffer = malloc(SCAN_CHUNK + needle_len);
    if (!buffer) return 0;
    size_t matches = 0;
    size_t anchor = needle_len - 1;  // the last byte (the most significant of a little-endian value)
    for (size_t done = 0; done < length; done += SCAN_CHUNK) {
        size_t own = length - done < SCAN_CHUNK ? length - done : SCAN_CHUNK;
        size_t want = length - done < SCAN_CHUNK + needle_len - 1 ? length - done : SCAN_CHUNK + needle_len - 1;
        struct iovec local = { buffer, want };
        struct iovec far = { (void *)(uintptr_t)(remote + done), want };
        ssize_t got = process_vm_readv(pid, &local, 1, &far, 1, 0);
        if (got < (ssize_t)needle_len) break;
        size_t starts = (size_t)got - needle_len + 1 < own ? (size_t)got - needle_len + 1 : own;
        const uint8_t *cursor = buffer + anchor;
        const uint8_t *end = buffer + starts + anchor;
        while (cursor < end) {
            const uint8_t *hit = memchr(cursor, needle[anchor], (size_t)(end - cursor));
            if (!hit) break;
            size_t start = (size_t)(hit - buffer) - anchor;
            cursor = hit + 1;
            if (((remote + done + start) % alignment) != 0) continue;
            if (memcmp(buffer + start, needle, needle_len) == 0) matches++;
        }
    }
    free(buffer);
    return matches;
}
