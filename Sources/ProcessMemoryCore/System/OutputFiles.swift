import Glibc
import SystemPackage

// Every file and directory the library (and procmem) writes is created here, so that a link or a
// file planted by another user can never redirect a write made as root, and a failed or killed
// write never destroys the previous output:
//
// - the directory is opened with `O_NOFOLLOW | O_DIRECTORY` and must belong to us (or root);
// - every name in it is created relative to that descriptor with `O_CREAT | O_EXCL | O_NOFOLLOW`,
//   mode 0600 (directories: `mkdirat` 0700, reopened `O_NOFOLLOW | O_DIRECTORY`);
// - a file that replaces an older one is written under a temporary name, `fsync`ed and
//   `renameat`ed over it; an existing name that is a link, not a regular file, or another
//   user's file is refused, never written into.

/// A directory outputs are created in, opened without following a link at its last component.
package struct OutputDirectory {
    package let fd: CInt
    /// The path, for messages.
    package let path: String

    /// Opens `path` as an output directory, creating it (mode 0700) when `create` and missing.
    ///
    /// - Throws: `.accessDenied` when `path` is a symbolic link or belongs to another user (not
    ///   root); `.io`/`.notFound` when it cannot be created or opened.
    package static func open(_ given: String, create: Bool) throws(ProcessMemoryError) -> OutputDirectory {
        // A trailing slash would make the kernel follow a link at the last component despite
        // O_NOFOLLOW ("link/" names the directory the link points to).
        var path = given
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        if create {
            switch Sys.mkdirat(AT_FDCWD, path, mode: 0o700) {
            case .success, .failure(.fileExists): break
            case .failure(let error): throw OutputFile.localError(error, SystemCall(.mkdir, "\(path)"))
            }
        }
        return try opened(AT_FDCWD, path, shown: path)
    }

    /// The directory holding the file `path`, opened as by ``open(_:create:)``, and the file's name in it.
    package static func containing(_ path: String) throws(ProcessMemoryError) -> (directory: OutputDirectory, name: String) {
        let bytes = Array(path.utf8)
        let slash = bytes.lastIndex(of: UInt8(ascii: "/"))
        let name = String(decoding: slash.map { bytes[($0 + 1)...] } ?? bytes[...], as: UTF8.self)
        let parent = slash.map { $0 == 0 ? "/" : String(decoding: bytes[..<$0], as: UTF8.self) } ?? "."
        guard !name.isEmpty, name != ".", name != ".." else {
            throw ProcessMemoryError(.invalidArguments, message: "\(path) does not name a file")
        }
        return (try open(parent, create: false), name)
    }

    /// Opens `name` relative to `dirfd` with `O_NOFOLLOW | O_DIRECTORY` and checks its owner.
    private static func opened(_ dirfd: CInt, _ name: String, shown: String) throws(ProcessMemoryError) -> OutputDirectory {
        let fd: CInt
        switch Sys.openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW) {
        case .success(let opened): fd = opened
        case .failure(.tooManySymbolicLinkLevels):
            throw refusal("\(shown) is a symbolic link; procmem does not write through links")
        case .failure(.notDirectory):
            throw ProcessMemoryError(.invalidArguments, systemCall: SystemCall(.open, shown), errno: .notDirectory,
                                     message: "\(shown) is not a directory (or is a symbolic link)")
        case .failure(let error): throw OutputFile.localError(error, SystemCall(.open, "\(shown)"))
        }
        switch Sys.fstat(fd) {
        case .success(let info) where info.st_uid == Sys.effectiveUserID || info.st_uid == 0:
            return OutputDirectory(fd: fd, path: shown)
        case .success(let info):
            Sys.close(fd)
            throw refusal("\(shown) belongs to uid \(info.st_uid); procmem (uid \(Sys.effectiveUserID)) does not write into another user's directory")
        case .failure(let error):
            Sys.close(fd)
            throw OutputFile.localError(error, SystemCall(.fstat, "\(shown)"))
        }
    }

    package func close() { Sys.close(fd) }

    /// Refuses to replace `name` when it exists as anything but our own regular file (or, with
    /// `directory`, our own directory): a link, a FIFO, a device, another user's file.
    package func checkReplaceable(_ name: String, directory: Bool = false) throws(ProcessMemoryError) {
        let shown = path + "/" + name
        switch Sys.lstat(fd, name) {
        case .failure(.noSuchFileOrDirectory): return
        case .failure(let error): throw OutputFile.localError(error, SystemCall(.stat, "\(shown)"))
        case .success(let info):
            let type = info.st_mode & S_IFMT
            if type == S_IFLNK { throw Self.refusal("\(shown) is a symbolic link; procmem does not write through or over links") }
            guard type == (directory ? S_IFDIR : S_IFREG) else {
                throw Self.refusal("\(shown) exists and is not a \(directory ? "directory" : "regular file"); procmem does not replace it")
            }
            guard info.st_uid == Sys.effectiveUserID else {
                throw Self.refusal("\(shown) belongs to uid \(info.st_uid); procmem (uid \(Sys.effectiveUserID)) does not replace another user's files")
            }
        }
    }

    /// Creates `name`, which must not exist (`O_CREAT | O_EXCL | O_NOFOLLOW`, mode 0600).
    package func createNew(_ name: String) throws(ProcessMemoryError) -> OutputFile {
        switch Sys.create(fd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600) {
        case .success(let file): return OutputFile(fd: file, name: path + "/" + name, directory: nil, temporaryName: nil, finalName: name)
        case .failure(.fileExists):
            throw Self.refusal("\(path)/\(name) already exists; procmem does not reuse files it did not create")
        case .failure(let error): throw OutputFile.localError(error, SystemCall(.open, "\(path)/\(name)"))
        }
    }

    /// Creates a temporary file for `name` in this directory; ``OutputFile/commit()`` renames it
    /// over `name`, ``OutputFile/discard()`` removes it. Checks `name` with ``checkReplaceable(_:directory:)``.
    package func createReplacement(for name: String) throws(ProcessMemoryError) -> OutputFile {
        try checkReplaceable(name)
        let kept: CInt
        switch Sys.duplicate(fd) {
        case .success(let copy): kept = copy
        case .failure(let error): throw OutputFile.localError(error, SystemCall(.fcntl, "\(path)"))
        }
        for _ in 0..<16 {
            let temporary = Self.temporaryName(for: name)
            switch Sys.create(fd, temporary, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600) {
            case .success(let file):
                return OutputFile(fd: file, name: path + "/" + name, directory: kept, temporaryName: temporary, finalName: name)
            case .failure(.fileExists): continue
            case .failure(let error):
                Sys.close(kept)
                throw OutputFile.localError(error, SystemCall(.open, "\(path)/\(temporary)"))
            }
        }
        Sys.close(kept)
        throw OutputFile.localError(.fileExists, SystemCall(.open, "\(path)/\(name)"))
    }

    /// Creates a new private directory (mode 0700) that will replace `name`, and opens it.
    package func createReplacementDirectory(for name: String) throws(ProcessMemoryError) -> (directory: OutputDirectory, name: String) {
        try checkReplaceable(name, directory: true)
        for _ in 0..<16 {
            let temporary = Self.temporaryName(for: name)
            switch Sys.mkdirat(fd, temporary, mode: 0o700) {
            case .success: return (try Self.opened(fd, temporary, shown: path + "/" + temporary), temporary)
            case .failure(.fileExists): continue
            case .failure(let error): throw OutputFile.localError(error, SystemCall(.mkdir, "\(path)/\(temporary)"))
            }
        }
        throw OutputFile.localError(.fileExists, SystemCall(.mkdir, "\(path)/\(name)"))
    }

    /// Puts the directory `temporary` in the place of `name`: an older `name` is renamed aside
    /// first and removed afterwards (`renameat(2)`, `unlinkat(2)`).
    package func replaceDirectory(_ name: String, with temporary: String) throws(ProcessMemoryError) {
        try checkReplaceable(name, directory: true)
        let aside = Self.temporaryName(for: name + ".old")
        var movedAside = false
        switch Sys.renameat(fd, name, aside) {
        case .success: movedAside = true
        case .failure(.noSuchFileOrDirectory): break
        case .failure(let error): throw OutputFile.localError(error, SystemCall(.rename, "\(path)/\(name)"))
        }
        if case .failure(let error) = Sys.renameat(fd, temporary, name) {
            if movedAside { _ = Sys.renameat(fd, aside, name) }
            throw OutputFile.localError(error, SystemCall(.rename, "\(path)/\(temporary)"))
        }
        if movedAside { removeTree(aside) }
    }

    /// Whether `name` exists in this directory as anything (`fstatat(2)` with `AT_SYMLINK_NOFOLLOW`).
    package func exists(_ name: String) -> Bool {
        if case .success = Sys.lstat(fd, name) { return true }
        return false
    }

    /// Renames our own regular file `name` to `newName` in this directory (`renameat(2)`), replacing
    /// a `newName` that is our own regular file too; a missing `name` is no error (returns false).
    /// Links, other kinds of file and other users' files are refused on either side.
    @discardableResult
    package func renameFile(_ name: String, to newName: String) throws(ProcessMemoryError) -> Bool {
        guard exists(name) else { return false }
        try checkReplaceable(name)
        try checkReplaceable(newName)
        if case .failure(let error) = Sys.renameat(fd, name, newName) {
            throw OutputFile.localError(error, SystemCall(.rename, "\(path)/\(name)"))
        }
        return true
    }

    /// Removes our own regular file `name` (`unlinkat(2)`); a missing one is no error.
    package func removeFile(_ name: String) throws(ProcessMemoryError) {
        guard exists(name) else { return }
        try checkReplaceable(name)
        if case .failure(let error) = Sys.unlinkat(fd, name), error != .noSuchFileOrDirectory {
            throw OutputFile.localError(error, SystemCall(.unlink, "\(path)/\(name)"))
        }
    }

    /// Removes `name` and, when it is a directory, everything in it, never following a link.
    package func removeTree(_ name: String) {
        guard case .success(let info) = Sys.lstat(fd, name) else { return }
        if info.st_mode & S_IFMT == S_IFDIR, case .success(let child) = Sys.openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW) {
            let inner = OutputDirectory(fd: child, path: path + "/" + name)
            if case .success(let names) = Sys.listDirectory(child, ".") {
                for entry in names { inner.removeTree(entry) }
            }
            inner.close()
            _ = Sys.unlinkat(fd, name, directory: true)
        } else {
            _ = Sys.unlinkat(fd, name)
        }
    }

    /// `.NAME.procmem-XXXXXXXX`, a name no earlier run predicts.
    private static func temporaryName(for name: String) -> String {
        let digits = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        return "." + name + ".procmem-" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }

    package static func refusal(_ message: String) -> ProcessMemoryError {
        ProcessMemoryError(.accessDenied, message: message)
    }
}

/// A file being written: created by ``OutputDirectory``, written with `pwrite(2)` of whole buffers
/// at given offsets (or appended), and, when it replaces an older file, renamed into place by
/// ``commit()``.
package final class OutputFile {
    package let fd: CInt
    /// The final path, for messages.
    package let name: String
    /// A duplicate of the directory descriptor, for the rename (nil: created in place).
    private let directory: CInt?
    private let temporaryName: String?
    private let finalName: String
    private var appendOffset: UInt64 = 0
    private var open = true
    /// Where the bytes written since the last ``writeBack(upTo:)`` that started writeback begin.
    private var writebackStart: UInt64 = 0
    /// How many written bytes ``writeBack(upTo:)`` gathers before it starts their writeback.
    package static let writebackSpan: UInt64 = 8 << 20

    fileprivate init(fd: CInt, name: String, directory: CInt?, temporaryName: String?, finalName: String) {
        self.fd = fd
        self.name = name
        self.directory = directory
        self.temporaryName = temporaryName
        self.finalName = finalName
    }

    /// Writes all of `bytes` at `offset`, looping over short writes.
    package func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(ProcessMemoryError) {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            switch Sys.pwrite(fd, base + done, bytes.count - done, at: offset + UInt64(done)) {
            case .success(let written) where written > 0: done += written
            case .success: throw OutputFile.localError(.noSpace, SystemCall(.pwrite, "\(name)"))
            case .failure(let error): throw OutputFile.localError(error, SystemCall(.pwrite, "\(name)"))
            }
        }
    }

    /// Writes `bytes` at `offset`.
    package func write(_ bytes: [UInt8], at offset: UInt64) throws(ProcessMemoryError) {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(ProcessMemoryError) in try write(raw, at: offset) }
        }
        try result.get()
    }

    /// Writes `bytes` after everything appended so far.
    package func append(_ bytes: UnsafeRawBufferPointer) throws(ProcessMemoryError) {
        try write(bytes, at: appendOffset)
        appendOffset += UInt64(bytes.count)
    }

    /// Makes the file at least `length` bytes long (`ftruncate(2)`), so that pages left as holes at
    /// its end (a sparse dump) still belong to it and read as zeros.
    package func extend(to length: UInt64) throws(ProcessMemoryError) {
        guard case .success(let info) = Sys.fstat(fd), UInt64(info.st_size) < length else { return }
        if case .failure(let error) = Sys.ftruncate(fd, Int64(length)) {
            throw OutputFile.localError(error, SystemCall(.ftruncate, name))
        }
    }

    /// Says that everything up to `end` has been written; once ``writebackSpan`` bytes have
    /// gathered since the last call that did so, starts writing them to the disk without waiting
    /// (`sync_file_range(2)`, `SYNC_FILE_RANGE_WRITE`), so that the `fsync(2)` of ``commit()``
    /// finds little left: a large output is written back while the rest of it is still being
    /// produced, instead of all at the end. Advisory: a failure here is ignored, and ``sync()``
    /// reports write errors.
    package func writeBack(upTo end: UInt64) {
        if end < writebackStart { writebackStart = end }
        guard end - writebackStart >= Self.writebackSpan else { return }
        _ = Sys.startWriteback(fd, offset: writebackStart, count: Int(end - writebackStart))
        writebackStart = end
    }

    /// `fsync(2)`: the bytes are on disk before the file takes its name.
    package func sync() throws(ProcessMemoryError) {
        if case .failure(let error) = Sys.fsync(fd) { throw OutputFile.localError(error, SystemCall(.fsync, "\(name)")) }
    }

    /// Syncs the file and, for a replacement, renames it over its final name (`renameat(2)`),
    /// atomically: a reader sees the old file or the new one, never a mix. Then closes it.
    package func commit() throws(ProcessMemoryError) {
        try sync()
        if let directory, let temporaryName {
            if case .failure(let error) = Sys.renameat(directory, temporaryName, finalName) {
                throw OutputFile.localError(error, SystemCall(.rename, "\(name)"))
            }
            _ = Sys.fsync(directory)
        }
        close()
    }

    /// Closes the file; an uncommitted replacement is removed, so the older file stays as it was.
    package func discard() {
        guard open else { return }
        if let directory, let temporaryName { _ = Sys.unlinkat(directory, temporaryName) }
        close()
    }

    /// Closes the descriptors (a file created in place keeps what was written).
    package func close() {
        guard open else { return }
        open = false
        Sys.close(fd)
        if let directory { Sys.close(directory) }
    }

    deinit { discard() }

    /// An error of our own output (disk full, permissions), not of the target.
    package static func localError(_ error: Errno, _ call: SystemCall) -> ProcessMemoryError {
        let code: ProcessMemoryError.Code
        switch error {
        case .noSpace, .fileTooLarge, .ioError: code = .io
        case .permissionDenied, .notPermitted, .readOnlyFileSystem: code = .accessDenied
        case .noMemory: code = .noMemory
        case .noSuchFileOrDirectory: code = .notFound
        default: code = .io
        }
        return ProcessMemoryError(code, systemCall: call, errno: error, message: "the output could not be written: \(error)")
    }
}

/// Writing whole files from outside the library (procmem's pointer lists), through the same
/// mechanism as every other output.
public enum OutputFiles {
    /// Writes `bytes` to `path`, replacing an older file atomically: a temporary file created with
    /// `openat(2)` `O_CREAT | O_EXCL | O_NOFOLLOW` (mode 0600) in the directory opened with
    /// `O_NOFOLLOW | O_DIRECTORY`, `pwrite(2)`, `fsync(2)`, then `renameat(2)` over `path`.
    ///
    /// - Throws: `.accessDenied` when `path` or its directory is a symbolic link, not a regular
    ///   file, or belongs to another user; `.io`/`.notFound` when it cannot be written.
    public static func write(_ bytes: [UInt8], to path: String) throws(ProcessMemoryError) {
        let (directory, name) = try OutputDirectory.containing(path)
        defer { directory.close() }
        let file = try directory.createReplacement(for: name)
        defer { file.discard() }
        try file.write(bytes, at: 0)
        try file.commit()
    }

    /// Writes all of `bytes` to the open descriptor `fd` (stdout, stderr), looping over short
    /// writes with `write(2)`; gives up at the first error, which it returns.
    @discardableResult
    public static func writeAll(_ fd: CInt, _ bytes: [UInt8]) -> Errno? {
        bytes.withUnsafeBytes { raw -> Errno? in
            guard let base = raw.baseAddress else { return nil }
            var offset = 0
            while offset < raw.count {
                switch Sys.write(fd, base + offset, raw.count - offset) {
                case .success(let written) where written > 0: offset += written
                case .success: return .ioError
                case .failure(let error): return error
                }
            }
            return nil
        }
    }
}
