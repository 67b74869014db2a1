import CProcessMemory
import Glibc
import SystemPackage

// Output and input files (System/OutputFiles.swift, System/InputFiles.swift): created without
// following links, renamed into place, read only when regular.
extension Sys {
    /// write(2).
    static func write(_ fd: CInt, _ buffer: UnsafeRawPointer, _ count: Int) -> Result<Int, Errno> {
        valueOrErrno { Glibc.write(fd, buffer, count) }
    }

    /// fsync(2).
    static func fsync(_ fd: CInt) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.fsync(fd) }
    }

    /// sync_file_range(2) with `SYNC_FILE_RANGE_WRITE`: starts writing the range's dirty pages to
    /// the disk and returns without waiting for them.
    static func startWriteback(_ fd: CInt, offset: UInt64, count: Int) -> Result<CInt, Errno> {
        valueOrErrno { CProcessMemory_start_writeback(fd, Int64(bitPattern: offset), Int64(count)) }
    }

    /// renameat(2) within one directory: replaces `new` atomically (a link at `new` is replaced,
    /// never followed).
    static func renameat(_ dirfd: CInt, _ old: String, _ new: String) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.renameat(dirfd, old, dirfd, new) }
    }

    /// unlinkat(2); `AT_REMOVEDIR` when `directory`.
    static func unlinkat(_ dirfd: CInt, _ path: String, directory: Bool = false) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.unlinkat(dirfd, path, directory ? AT_REMOVEDIR : 0) }
    }

    /// fstatat(2) with `AT_SYMLINK_NOFOLLOW`: a link is described, not its target.
    static func lstat(_ dirfd: CInt, _ path: String) -> Result<stat, Errno> {
        var info = Glibc.stat()
        return valueOrErrno { Glibc.fstatat(dirfd, path, &info, AT_SYMLINK_NOFOLLOW) }.map { _ in info }
    }

    /// geteuid(2) (cannot fail).
    static var effectiveUserID: uid_t { Glibc.geteuid() }
}

// MARK: - Whole files (Handle/ProcessHandle+MappedFiles.swift)

extension Sys {
    /// pread(2) in a loop from offset 0 until `count` bytes or end of file: the bytes read.
    static func preadWhole(_ fd: CInt, count: Int) -> Result<[UInt8], Errno> {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let result = bytes.withUnsafeMutableBytes { raw -> Result<Int, Errno> in
                guard let base = raw.baseAddress else { return .success(0) }
                return pread(fd, base + done, count - done, at: UInt64(done))
            }
            switch result {
            case .failure(let error): return .failure(error)
            case .success(0):
                bytes.removeLast(count - done)
                return .success(bytes)
            case .success(let n): done += n
            }
        }
        return .success(bytes)
    }

    /// openat(2) read-only, fstat(2) for the size (a regular file no larger than `limit`), then
    /// pread(2) to the end: the file's bytes.
    /// With `inode`, a file whose inode differs is refused (`ESTALE`).
    static func readRegularFile(_ dirfd: CInt, _ path: String, limit: Int, inode: UInt64? = nil) -> Result<[UInt8], FileReadFailure> {
        withRegularFile(dirfd, path, limit: limit, inode: inode) { file in
            preadWhole(file.fd, count: file.size).mapError { FileReadFailure(systemCall: .pread, errno: $0) }
        }.flatMap { $0 }
    }

    /// openat(2) read-only and fstat(2) as ``readRegularFile(_:_:limit:inode:)``, then `body` with
    /// the open file, which reads the parts it needs with pread(2); closed when `body` returns.
    static func withRegularFile<R>(_ dirfd: CInt, _ path: String, limit: Int, inode: UInt64? = nil,
                                   _ body: (RegularFile) -> R) -> Result<R, FileReadFailure> {
        let fd: CInt
        switch openat(dirfd, path, O_RDONLY) {
        case .success(let opened): fd = opened
        case .failure(let error): return .failure(FileReadFailure(systemCall: .open, errno: error))
        }
        defer { close(fd) }
        let info: stat
        switch fstat(fd) {
        case .success(let value): info = value
        case .failure(let error): return .failure(FileReadFailure(systemCall: .fstat, errno: error))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            return .failure(FileReadFailure(systemCall: .fstat, errno: .invalidArgument, notRegular: true))
        }
        if let inode, UInt64(info.st_ino) != inode {
            return .failure(FileReadFailure(systemCall: .fstat, errno: .staleNFSFileHandle))
        }
        guard info.st_size >= 0, info.st_size <= limit else {
            return .failure(FileReadFailure(systemCall: .fstat, errno: .fileTooLarge, size: UInt64(max(0, info.st_size))))
        }
        return .success(body(RegularFile(fd: fd, size: Int(info.st_size))))
    }
}

/// A regular file open for reading, valid only inside the `body` it was passed to: its size when
/// opened and reads of parts of it.
package struct RegularFile {
    let fd: CInt
    /// The size fstat(2) gave when the file was opened.
    package let size: Int

    /// `count` bytes from `offset` (fewer at the end of the file) with pread(2), retried until done.
    package func read(offset: Int, count: Int) -> Result<[UInt8], FileReadFailure> {
        guard count >= 0 else { return .failure(FileReadFailure(systemCall: .pread, errno: .invalidArgument)) }
        var failure: FileReadFailure?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            switch read(offset: offset, into: UnsafeMutableRawBufferPointer(buffer)) {
            case .success(let done): initialized = done
            case .failure(let error):
                failure = error
                initialized = 0
            }
        }
        if let failure { return .failure(failure) }
        return .success(bytes)
    }

    /// Fills `buffer` from `offset` with pread(2), retried until full or the end of the file:
    /// the number of bytes read.
    package func read(offset: Int, into buffer: UnsafeMutableRawBufferPointer) -> Result<Int, FileReadFailure> {
        guard offset >= 0 else { return .failure(FileReadFailure(systemCall: .pread, errno: .invalidArgument)) }
        guard let base = buffer.baseAddress else { return .success(0) }
        var done = 0
        while done < buffer.count {
            switch Sys.pread(fd, base + done, buffer.count - done, at: UInt64(offset + done)) {
            case .failure(let error): return .failure(FileReadFailure(systemCall: .pread, errno: error))
            case .success(0): return .success(done)
            case .success(let n): done += n
            }
        }
        return .success(done)
    }
}

/// Why a whole file could not be read: the call that failed and its errno.
package struct FileReadFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// `openat`, `fstat` or `pread`.
    package var systemCall: SystemCall.Name
    /// The errno the call returned.
    package var errno: Errno
    /// The path is not a regular file.
    package var notRegular = false
    /// The file's size when it exceeded the limit.
    package var size: UInt64? = nil

    package var description: String {
        if notRegular { return "not a regular file" }
        if let size { return "the file has \(size) bytes, more than the limit" }
        return "\(systemCall): \(errno)"
    }
}

/// Files of the debugger's own file system (separate debug files under `/usr/lib/debug`), read
/// through the `Sys` layer like every other file the library opens.
package enum LocalFiles {
    /// The whole regular file at `path`: openat(2) with `AT_FDCWD`, fstat(2), pread(2).
    package static func read(_ path: String, limit: Int = 1 << 30) -> Result<[UInt8], FileReadFailure> {
        Sys.readRegularFile(AT_FDCWD, path, limit: limit)
    }

    /// The regular file at `path` open for `body`, which reads the parts it needs: openat(2) with
    /// `AT_FDCWD`, fstat(2), then pread(2) for each part.
    package static func withFile<R>(_ path: String, limit: Int = 1 << 30, _ body: (RegularFile) -> R) -> Result<R, FileReadFailure> {
        Sys.withRegularFile(AT_FDCWD, path, limit: limit, body)
    }

    /// Whether `path` names a regular file (fstatat(2)).
    package static func isRegularFile(_ path: String) -> Bool {
        guard case .success(let info) = Sys.stat(AT_FDCWD, path) else { return false }
        return (info.st_mode & S_IFMT) == S_IFREG
    }
}
