import Glibc
import SystemPackage

extension ProcessHandle {
    /// The bytes of the file behind `region`, read through the handle's `/proc/PID` descriptor:
    /// `openat(procfd, "map_files/START-END", O_RDONLY)`, then fstat(2) and pread(2).
    ///
    /// `map_files` reaches the inode the process really mapped, even when the path was replaced or
    /// deleted or lives in another mount namespace; it needs `CAP_SYS_ADMIN` or
    /// `CAP_CHECKPOINT_RESTORE`. Without them (`EPERM`), the file is opened as
    /// `root/PATH` under the same descriptor (the process's own root directory) and used only if its
    /// device and inode are the ones in the mapping.
    ///
    /// - Returns: the file's bytes, or why they could not be read (a file larger than `limit`
    ///   fails with `EFBIG`).
    /// - Throws: `.badHandle`, `.execed` when the handle can no longer be used.
    package func mappedFileBytes(of region: MemoryRegion, limit: Int) throws(ProcessMemoryError) -> Result<[UInt8], FileReadFailure> {
        try box.use(pid: pid) { (fds) throws(ProcessMemoryError) -> Result<[UInt8], FileReadFailure> in
            let name = "map_files/" + String(region.start, radix: 16) + "-" + String(region.end, radix: 16)
            let direct = Sys.readRegularFile(fds.procDir, name, limit: limit)
            guard case .failure(let failure) = direct, failure.systemCall == .open,
                  failure.errno == .notPermitted || failure.errno == .permissionDenied,
                  let path = region.path, path.hasPrefix("/"), !region.isDeleted else { return direct }
            // No right to map_files: the same inode through the process's root, checked once open.
            let rooted = "root" + path
            let other = Sys.readRegularFile(fds.procDir, rooted, limit: limit, inode: region.inode)
            if case .failure = other { return direct }
            return other
        }
    }

    /// The file behind `region`, opened as ``mappedFileBytes(of:limit:)`` opens it, for `body` to
    /// read the parts it needs (pread(2)); closed when `body` returns.
    ///
    /// - Returns: what `body` returned, or why the file could not be opened.
    /// - Throws: `.badHandle`, `.execed` when the handle can no longer be used.
    package func withMappedFile<R>(of region: MemoryRegion, limit: Int,
                                   _ body: (RegularFile) -> R) throws(ProcessMemoryError) -> Result<R, FileReadFailure> {
        try box.use(pid: pid) { (fds) throws(ProcessMemoryError) -> Result<R, FileReadFailure> in
            let name = "map_files/" + String(region.start, radix: 16) + "-" + String(region.end, radix: 16)
            let direct = Sys.withRegularFile(fds.procDir, name, limit: limit, body)
            guard case .failure(let failure) = direct, failure.systemCall == .open,
                  failure.errno == .notPermitted || failure.errno == .permissionDenied,
                  let path = region.path, path.hasPrefix("/"), !region.isDeleted else { return direct }
            let other = Sys.withRegularFile(fds.procDir, "root" + path, limit: limit, inode: region.inode, body)
            if case .failure = other { return direct }
            return other
        }
    }
}
