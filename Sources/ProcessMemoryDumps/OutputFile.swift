import Glibc
import SystemPackage
import ProcessMemoryCore

/// A file a dump writes: `pwrite(2)` of whole buffers at given offsets, errors as ``ProcessMemoryError``.
struct OutputFile {
    let fd: FileDescriptor
    let name: String

    /// Creates (or truncates) `name` relative to `directory` (`openat(2)` with `O_CREAT | O_TRUNC`).
    static func create(_ directory: FileDescriptor, _ name: String) throws(ProcessMemoryError) -> OutputFile {
        switch directory.create(relative: name, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644) {
        case .success(let fd): return OutputFile(fd: fd, name: name)
        case .failure(let error): throw localError(error, SystemCall(.open, name))
        }
    }

    /// Writes all of `bytes` at `offset`, looping over short writes.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(ProcessMemoryError) {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            switch fd.pwrite(base + done, bytes.count - done, at: offset + UInt64(done)) {
            case .success(let written) where written > 0: done += written
            case .success: throw OutputFile.localError(.noSpace, SystemCall(.pwrite, name))
            case .failure(let error): throw OutputFile.localError(error, SystemCall(.pwrite, name))
            }
        }
    }

    /// Writes `bytes` at `offset`.
    func write(_ bytes: [UInt8], at offset: UInt64) throws(ProcessMemoryError) {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(ProcessMemoryError) in try write(raw, at: offset) }
        }
        try result.get()
    }

    /// Makes the file at least `length` bytes long (`ftruncate(2)`), so trailing holes read as zeros.
    func extend(to length: UInt64) throws(ProcessMemoryError) {
        guard case .success(let info) = fd.status(), UInt64(info.st_size) < length else { return }
        if case .failure(let error) = fd.truncate(to: Int64(length)) {
            throw OutputFile.localError(error, SystemCall(.ftruncate, name))
        }
    }

    func close() { fd.closeQuietly() }

    /// An error of our own output (disk full, permissions), not of the target.
    static func localError(_ error: Errno, _ call: SystemCall) -> ProcessMemoryError {
        let code: ProcessMemoryError.Code
        switch error {
        case .noSpace, .fileTooLarge, .ioError: code = .io
        case .permissionDenied, .notPermitted, .readOnlyFileSystem: code = .accessDenied
        case .noMemory: code = .noMemory
        default: code = .io
        }
        return ProcessMemoryError(code, systemCall: call, errno: error, message: "the dump output could not be written: \(error)")
    }
}

/// Opens (creating if needed) a directory and returns its descriptor (`mkdirat(2)`, `openat(2)`).
func openOutputDirectory(_ path: String) throws(ProcessMemoryError) -> FileDescriptor {
    switch FileDescriptor.currentDirectory.makeDirectory(relative: path, mode: 0o755) {
    case .success, .failure(.fileExists): break
    case .failure(let error): throw OutputFile.localError(error, SystemCall(.mkdir, path))
    }
    switch FileDescriptor.open(path: path, O_RDONLY | O_DIRECTORY) {
    case .success(let fd): return fd
    case .failure(let error): throw OutputFile.localError(error, SystemCall(.open, path))
    }
}
