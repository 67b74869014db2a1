import CProcessMemory
import Glibc
import SystemPackage

extension ProcessHandle {
    /// The process's mappings, read from `/proc/PID/maps` through the descriptor opened with the handle.
    ///
    /// - Throws: `.badHandle`, `.execed` or `.badState` when the address space is gone.
    ///
    /// The corresponding C call is `pread` on `/proc/PID/maps`.
    public func memoryMap() throws(ProcessMemoryError) -> MemoryMap {
        try box.use(pid: pid) { (fds) throws(ProcessMemoryError) -> MemoryMap in try readMap(fds) }
    }

    /// The region that contains `address`, or `nil` when nothing is mapped there.
    ///
    /// Uses the `PROCMAP_QUERY` ioctl (Linux 6.11+), which costs about as much as one small read,
    /// and falls back to parsing `/proc/PID/maps` on older kernels.
    public func region(containing address: UInt64) throws(ProcessMemoryError) -> MemoryRegion? {
        try box.use(pid: pid) { (fds) throws(ProcessMemoryError) -> MemoryRegion? in try lookUpRegion(fds, address) }
    }

    /// Per-region details from `/proc/PID/smaps` (RSS, swap, `VmFlags`), which cost more than the map.
    ///
    /// The smaps file is opened now, so the handle checks afterwards that the process has not exec'd.
    /// The corresponding C call is `openat(procfd, "smaps")`.
    public func regionDetails() throws(ProcessMemoryError) -> [RegionDetails] {
        try box.use(pid: pid) { (fds) throws(ProcessMemoryError) -> [RegionDetails] in
            let bytes: [UInt8]
            switch Sys.readFile(fds.procDir, "smaps", limit: 1 << 30) {
            case .success(let read): bytes = read
            case .failure(let error):
                if error == .noSuchProcess || error == .noSuchFileOrDirectory {
                    throw lifecycleError(address: nil, bytesTransferred: 0, systemCall: SystemCall(.read, "/proc/\(pid)/smaps"), errno: error)
                }
                throw ErrnoMapping.openFailure(error, systemCall: SystemCall(.open, "/proc/\(pid)/smaps"), pid: pid, procDir: fds.procDir)
            }
            if liveState(fds) != .alive {
                throw lifecycleError(address: nil, bytesTransferred: 0, systemCall: SystemCall(.read, "/proc/\(pid)/smaps"), errno: nil)
            }
            return SmapsParser.parse(bytes)
        }
    }

    func readMap(_ fds: HandleDescriptors) throws(ProcessMemoryError) -> MemoryMap {
        var bytes: [UInt8] = []
        var chunk = 1 << 16
        while true {
            let start = bytes.count
            bytes.append(contentsOf: repeatElement(0, count: chunk))
            let result = bytes.withUnsafeMutableBytes { raw in
                guard let base = raw.baseAddress else { return Result<Int, Errno>.success(0) }
                return Sys.pread(fds.maps, base + start, chunk, at: UInt64(start))
            }
            switch result {
            case .success(let n):
                bytes.removeLast(chunk - n)
                if n == 0 {
                    if bytes.isEmpty {
                        // An address space always has mappings; empty means it is gone.
                        throw lifecycleError(address: nil, bytesTransferred: 0, systemCall: SystemCall(.pread, "/proc/\(pid)/maps"), errno: nil)
                    }
                    return MemoryMap(regions: MapsParser.parse(bytes).regions)
                }
                if chunk < 1 << 22 { chunk *= 2 }
            case .failure(let error):
                throw ProcessMemoryError(ErrnoMapping.code(for: error, systemCall: SystemCall(.pread)), pid: pid,
                                         systemCall: SystemCall(.pread, "/proc/\(pid)/maps"), errno: error,
                                         message: "the memory map could not be read: \(error)")
            }
        }
    }

    func lookUpRegion(_ fds: HandleDescriptors, _ address: UInt64) throws(ProcessMemoryError) -> MemoryRegion? {
        switch Self.procmapQuery(fds.maps, address) {
        case .found(let region): return region
        case .none: return nil
        case .unsupported: return try readMap(fds).region(containing: address)
        }
    }

    enum QueryOutcome { case found(MemoryRegion), none, unsupported }

    /// One PROCMAP_QUERY ioctl for the VMA covering `address`.
    static func procmapQuery(_ mapsFD: CInt, _ address: UInt64) -> QueryOutcome {
        var query = CProcessMemory_procmap_query()
        query.size = UInt64(MemoryLayout<CProcessMemory_procmap_query>.size)
        query.query_addr = address
        var name = [UInt8](repeating: 0, count: 4096)
        let result = name.withUnsafeMutableBytes { raw -> Result<CInt, Errno> in
            query.vma_name_addr = UInt64(UInt(bitPattern: raw.baseAddress))
            query.vma_name_size = UInt32(raw.count)
            return Sys.procmapQuery(mapsFD, &query)
        }
        switch result {
        case .failure(.noSuchFileOrDirectory): return .none
        case .failure: return .unsupported
        case .success:
            var permissions: MemoryRegion.Permissions = []
            if query.vma_flags & 1 != 0 { permissions.insert(.read) }
            if query.vma_flags & 2 != 0 { permissions.insert(.write) }
            if query.vma_flags & 4 != 0 { permissions.insert(.execute) }
            let length = Int(min(query.vma_name_size, UInt32(name.count)))
            let raw = length > 0 ? Array(name[0..<(length - 1)]) : []
            let (path, deleted) = MapsParser.decodePath(ArraySlice(raw))
            return .found(MemoryRegion(start: query.vma_start, end: query.vma_end, permissions: permissions,
                                       isShared: query.vma_flags & 8 != 0, offset: query.vma_offset,
                                       deviceMajor: query.dev_major, deviceMinor: query.dev_minor,
                                       inode: query.inode, path: path, isDeleted: deleted))
        }
    }

    /// The start of the first mapping above `address` (PROCMAP_QUERY with COVERING_OR_NEXT_VMA), or
    /// `nil` when there is none or the kernel lacks the query.
    static func nextRegionStart(_ mapsFD: CInt, after address: UInt64) -> UInt64? {
        var query = CProcessMemory_procmap_query()
        query.size = UInt64(MemoryLayout<CProcessMemory_procmap_query>.size)
        query.query_addr = address
        query.query_flags = 0x10  // PROCMAP_QUERY_COVERING_OR_NEXT_VMA
        guard case .success = Sys.procmapQuery(mapsFD, &query) else { return nil }
        return query.vma_start > address ? query.vma_start : nil
    }

    /// The size of the file or object behind a region, from `/proc/PID/map_files` (root or
    /// `CAP_CHECKPOINT_RESTORE`), else from the path when its device and inode still match.
    func backingObjectSize(_ fds: HandleDescriptors, _ region: MemoryRegion) -> UInt64? {
        let name = String(region.start, radix: 16) + "-" + String(region.end, radix: 16)
        if case .success(let info) = Sys.stat(fds.procDir, "map_files/" + name) {
            return UInt64(info.st_size)
        }
        if let path = region.path, path.hasPrefix("/"), !region.isDeleted,
           case .success(let info) = Sys.stat(AT_FDCWD, path), UInt64(info.st_ino) == region.inode {
            return UInt64(info.st_size)
        }
        return nil
    }

    /// Whether `/proc/PID/pagemap` marks the page at `address` as a guard region (bit 58).
    func isGuardPage(_ fds: HandleDescriptors, _ address: UInt64) -> Bool {
        guard case .success(let fd) = Sys.openat(fds.procDir, "pagemap", O_RDONLY) else { return false }
        defer { Sys.close(fd) }
        var entry: UInt64 = 0
        let offset = (address / AddressSpace.pageSize) * 8
        guard case .success(8) = Sys.pread(fd, &entry, 8, at: offset) else { return false }
        return entry & (1 << 58) != 0
    }
}
