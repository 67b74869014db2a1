import CProcessMemory
import Glibc
import SystemPackage

/// Thin wrappers, one per system call, each returning `Result<_, Errno>` with `EINTR` retried.
///
/// Nothing here interprets an errno; `ErrnoMapping.swift` does that in one place.
enum Sys {
    /// process_vm_readv(2) with one local and one remote iovec.
    static func processVMRead(pid: Int32, local: UnsafeMutableRawPointer, remote: UInt64, count: Int) -> Result<Int, Errno> {
        var localIOV = iovec(iov_base: local, iov_len: count)
        var remoteIOV = iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(remote)), iov_len: count)
        return valueOrErrno { CProcessMemory_process_vm_readv(pid, &localIOV, 1, &remoteIOV, 1, 0) }
    }

    /// process_vm_readv(2) with caller-built iovec arrays (batched gathers).
    static func processVMReadv(pid: Int32, local: UnsafePointer<iovec>?, localCount: Int,
                               remote: UnsafePointer<iovec>?, remoteCount: Int) -> Result<Int, Errno> {
        valueOrErrno { CProcessMemory_process_vm_readv(pid, local, UInt(localCount), remote, UInt(remoteCount), 0) }
    }

    /// pread(2).
    static func pread(_ fd: CInt, _ buffer: UnsafeMutableRawPointer, _ count: Int, at offset: UInt64) -> Result<Int, Errno> {
        valueOrErrno { Glibc.pread(fd, buffer, count, off_t(Int64(bitPattern: offset))) }
    }

    /// pwrite(2).
    static func pwrite(_ fd: CInt, _ buffer: UnsafeRawPointer, _ count: Int, at offset: UInt64) -> Result<Int, Errno> {
        valueOrErrno { Glibc.pwrite(fd, buffer, count, off_t(Int64(bitPattern: offset))) }
    }

    /// read(2).
    static func read(_ fd: CInt, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Result<Int, Errno> {
        valueOrErrno { Glibc.read(fd, buffer, count) }
    }

    /// lseek(2) to an absolute offset.
    static func seek(_ fd: CInt, to offset: Int64) -> Result<Int64, Errno> {
        valueOrErrno(retryOnInterrupt: false) { Int64(Glibc.lseek(fd, off_t(offset), SEEK_SET)) }
    }

    /// openat(2), always with `O_CLOEXEC`.
    static func openat(_ dirfd: CInt, _ path: String, _ flags: CInt) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.openat(dirfd, path, flags | O_CLOEXEC) }
    }

    /// pidfd_open(2).
    static func pidfdOpen(_ pid: Int32, flags: UInt32 = 0) -> Result<CInt, Errno> {
        valueOrErrno { CProcessMemory_pidfd_open(pid, flags) }
    }

    /// poll(2) on one descriptor with a zero timeout; returns the revents.
    static func pollNow(_ fd: CInt, events: Int16 = Int16(POLLIN)) -> Result<Int16, Errno> {
        var entry = pollfd(fd: fd, events: events, revents: 0)
        return valueOrErrno { Glibc.poll(&entry, 1, 0) }.map { $0 > 0 ? entry.revents : 0 }
    }

    /// fcntl(2) `F_DUPFD_CLOEXEC`.
    static func duplicate(_ fd: CInt) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.fcntl(fd, F_DUPFD_CLOEXEC, 0) }
    }

    /// fstatat(2) following links (`map_files` entries are symbolic links to the mapped file).
    static func stat(_ dirfd: CInt, _ path: String) -> Result<stat, Errno> {
        var info = Glibc.stat()
        return valueOrErrno { Glibc.fstatat(dirfd, path, &info, 0) }.map { _ in info }
    }

    /// ioctl(2) PROCMAP_QUERY on a /proc/PID/maps descriptor (Linux 6.11+).
    static func procmapQuery(_ fd: CInt, _ query: inout CProcessMemory_procmap_query) -> Result<CInt, Errno> {
        valueOrErrno { CProcessMemory_ioctl_procmap_query(fd, &query) }
    }

    /// close(2); never retried, as retrying close on Linux can close a descriptor another thread opened.
    static func close(_ fd: CInt) {
        _ = Glibc.close(fd)
    }

    /// Reads a whole (small, /proc) file relative to a directory descriptor.
    static func readFile(_ dirfd: CInt, _ path: String, limit: Int = 64 << 20) -> Result<[UInt8], Errno> {
        switch openat(dirfd, path, O_RDONLY) {
        case .failure(let error): return .failure(error)
        case .success(let fd):
            defer { close(fd) }
            return readAll(fd, limit: limit)
        }
    }

    /// Reads a descriptor from its current position to EOF (at most `limit` bytes).
    static func readAll(_ fd: CInt, limit: Int = 1 << 30) -> Result<[UInt8], Errno> {
        var bytes: [UInt8] = []
        var chunk = 16384
        while bytes.count < limit {
            let start = bytes.count
            bytes.append(contentsOf: repeatElement(0, count: chunk))
            let result = bytes.withUnsafeMutableBytes { raw in
                guard let base = raw.baseAddress else { return Result<Int, Errno>.success(0) }
                return read(fd, base + start, chunk)
            }
            switch result {
            case .failure(let error):
                return .failure(error)
            case .success(let n):
                bytes.removeLast(chunk - n)
                if n == 0 { return .success(bytes) }
                if chunk < (1 << 20) { chunk *= 2 }
            }
        }
        return .success(bytes)
    }
}
