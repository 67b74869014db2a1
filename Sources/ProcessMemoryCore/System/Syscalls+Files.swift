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
