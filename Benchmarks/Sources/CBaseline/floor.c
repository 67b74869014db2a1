#define _GNU_SOURCE 1
#include "CBaseline.h"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

// The floor of a dense core dump: writing `length` bytes that are already in this process's memory
// to a new file (O_CREAT | O_EXCL, 0600) with `chunk`-byte pwrites, then fsync(2) when `sync` is
// set (our cores are fsynced before they take their name), then close. No reading of another
// process at all: what is left is the page cache's cost of taking the bytes, and the disk's.
// With `writeback` non-zero, the writeback of every `writeback` bytes written is started at once
// (sync_file_range SYNC_FILE_RANGE_WRITE), as our dumps do, so the final fsync has little left.
// Returns 0, or -1 with errno set.
int CBaseline_write_floor(const char *path, const void *buffer, size_t length, size_t chunk, int sync, size_t writeback) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return -1;
    size_t done = 0, kicked = 0;
    while (done < length) {
        size_t want = length - done > chunk ? chunk : length - done;
        ssize_t n = pwrite(fd, (const char *)buffer + done, want, (off_t)done);
        if (n <= 0) { close(fd); return -1; }
        done += (size_t)n;
        if (writeback && done - kicked >= writeback) {
            sync_file_range(fd, (off_t)kicked, (off_t)(done - kicked), SYNC_FILE_RANGE_WRITE);
            kicked = done;
        }
    }
    if (sync && fsync(fd) != 0) { close(fd); return -1; }
    return close(fd);
}
