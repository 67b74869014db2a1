import Glibc
import SystemPackage

/// Files read back (match files, snapshots, dump indexes, region files): regular files only, so a
/// FIFO, a device such as `/dev/zero` or a directory fails at once instead of blocking or never
/// ending; the size is known before anything is read.
public enum InputFiles {
    /// The whole of the regular file at `path`, at most `limit` bytes: `openat(2)` with
    /// `O_NONBLOCK`, `fstat(2)` (a FIFO, a device or a directory is refused at once), `read(2)`.
    ///
    /// - Throws: `.invalidArguments` for a file that is not regular or is larger than `limit`;
    ///   `.notFound`/`.accessDenied`/`.io` when it cannot be read.
    public static func read(_ path: String, limit: Int) throws(ProcessMemoryError) -> [UInt8] {
        let opened = try openRegular(AT_FDCWD, path, shown: path)
        defer { Sys.close(opened.fd) }
        guard opened.size <= UInt64(max(0, limit)) else {
            throw ProcessMemoryError(.invalidArguments, message: "\(path) holds \(opened.size) bytes, more than the \(limit) this file may hold")
        }
        switch Sys.readAll(opened.fd, limit: Int(opened.size)) {
        case .success(let bytes): return bytes
        case .failure(let error):
            throw ProcessMemoryError(.io, systemCall: SystemCall(.read, path), errno: error, message: "\(path) cannot be read: \(error)")
        }
    }

    /// Opens `name` relative to `dirfd` read-only with `O_NONBLOCK` (a FIFO cannot block the open)
    /// and, when `noFollow`, `O_NOFOLLOW`; then `fstat(2)`s it and refuses anything but a regular file.
    ///
    /// - Throws: `.invalidArguments` for a link (with `noFollow`) or a file that is not regular;
    ///   `.notFound`/`.accessDenied`/`.io` when it cannot be opened.
    package static func openRegular(_ dirfd: CInt, _ name: String, shown: String,
                            noFollow: Bool = false) throws(ProcessMemoryError) -> (fd: CInt, size: UInt64) {
        // With `noFollow`, every directory on the way is opened without following a link too.
        var parent = dirfd
        var leaf = name
        if noFollow, let slash = name.utf8.lastIndex(of: UInt8(ascii: "/")) {
            leaf = String(name[name.utf8.index(after: slash)...])
            var current = dirfd
            for component in name[..<slash].split(separator: "/") {
                let next = Sys.openat(current, String(component), O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
                if current != dirfd { Sys.close(current) }
                switch next {
                case .success(let opened): current = opened
                case .failure(let error) where error == .tooManySymbolicLinkLevels || error == .notDirectory:
                    throw ProcessMemoryError(.invalidArguments, systemCall: SystemCall(.open, shown), errno: error,
                                             message: "\(shown) lies under a symbolic link or a non-directory; procmem reads only the files a dump wrote, not links")
                case .failure(let error):
                    throw ProcessMemoryError(error == .permissionDenied ? .accessDenied : (error == .noSuchFileOrDirectory ? .notFound : .io),
                                             systemCall: SystemCall(.open, shown), errno: error, message: "\(shown): \(error)")
                }
            }
            parent = current
        }
        defer { if parent != dirfd { Sys.close(parent) } }
        let fd: CInt
        switch Sys.openat(parent, leaf, O_RDONLY | O_NONBLOCK | (noFollow ? O_NOFOLLOW : 0)) {
        case .success(let opened): fd = opened
        case .failure(.tooManySymbolicLinkLevels) where noFollow:
            throw ProcessMemoryError(.invalidArguments, systemCall: SystemCall(.open, shown), errno: .tooManySymbolicLinkLevels,
                                     message: "\(shown) is a symbolic link; procmem reads only the files a dump wrote, not links")
        case .failure(let error):
            throw ProcessMemoryError(error == .permissionDenied ? .accessDenied : (error == .noSuchFileOrDirectory ? .notFound : .io),
                                     systemCall: SystemCall(.open, shown), errno: error, message: "\(shown): \(error)")
        }
        switch Sys.fstat(fd) {
        case .success(let info) where info.st_mode & S_IFMT == S_IFREG:
            return (fd, UInt64(max(0, info.st_size)))
        case .success(let info):
            Sys.close(fd)
            throw ProcessMemoryError(.invalidArguments, systemCall: SystemCall(.fstat, shown),
                                     message: "\(shown) is \(describe(info.st_mode)), not a regular file; procmem reads only regular files")
        case .failure(let error):
            Sys.close(fd)
            throw ProcessMemoryError(.io, systemCall: SystemCall(.fstat, shown), errno: error, message: "\(shown): \(error)")
        }
    }

    /// "a FIFO", "a character device", …
    package static func describe(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFDIR: return "a directory"
        case S_IFSOCK: return "a socket"
        case S_IFLNK: return "a symbolic link"
        default: return "not a regular file"
        }
    }
}

extension InputFiles {
    /// ``openRegular(_:_:shown:noFollow:)`` with typed descriptors, for the tool modules.
    package static func openRegular(_ directory: FileDescriptor, _ name: String, shown: String,
                                    noFollow: Bool = false) throws(ProcessMemoryError) -> (fd: FileDescriptor, size: UInt64) {
        let opened = try openRegular(directory.rawValue, name, shown: shown, noFollow: noFollow)
        return (FileDescriptor(rawValue: opened.fd), opened.size)
    }
}
