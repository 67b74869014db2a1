import Glibc
import SystemPackage
import ProcessMemoryCore

/// The memory object behind one mapping of another process, and where an address falls in it.
public struct BackingObject: Sendable {
    /// How the object was reached.
    public enum Source: String, Sendable, Hashable, Codable, CaseIterable {
        /// `/proc/PID/map_files/START-END`, which opens exactly the mapping's file. Needs
        /// `CAP_SYS_ADMIN` or `CAP_CHECKPOINT_RESTORE` (root has both).
        case mapFiles
        /// A descriptor the target holds for the object, duplicated with `pidfd_getfd(2)` after its
        /// `/proc/PID/fd/N` link and inode matched the mapping (a memfd the target kept open).
        case targetDescriptor
        /// The mapping's path, opened anew, after its device and inode matched the mapping.
        case path
    }

    /// The object, opened with the rights asked for.
    public var object: MemoryObject
    /// The object offset that corresponds to the address asked about (for a region: its start).
    public var offset: UInt64
    /// The mapping, as the map showed it when the object was opened.
    public var region: MemoryRegion
    /// How the object was reached.
    public var source: Source
}

extension ProcessHandle {
    /// The object behind the mapping that contains `address`, and the object offset of `address`.
    ///
    /// The object is read and written through its own descriptor, not through the mapping, so
    /// pages the target never touched and regions it mapped `PROT_NONE` are read like any others,
    /// and nothing is faulted into the target. Reads past the object's end (the part of the
    /// mapping's last pages beyond the end of the file, where the target would get `SIGBUS`) fail
    /// with `.outOfRange`, exactly at the object's size.
    ///
    /// The object is found through `/proc/PID/map_files/START-END` (root, or `CAP_SYS_ADMIN` or
    /// `CAP_CHECKPOINT_RESTORE`); else, through a descriptor the target holds for it (its
    /// `/proc/PID/fd/N` link and inode must match the mapping; duplicated with `pidfd_getfd`); else
    /// through the mapping's path when its device and inode still match. A private file mapping
    /// gives the file: pages the target modified (copy-on-write) are in its memory, not in the file.
    ///
    /// - Parameters:
    ///   - address: An address inside the mapping.
    ///   - rights: `.read` (the default: the object is opened `O_RDONLY`), or `.readWrite` to write
    ///     the object, which needs a handle with the write right.
    /// - Throws: `.wrongType` (the mapping has no backing object: anonymous private memory, the
    ///   heap, a stack, `[vdso]`), `.protectionFailure` (secret memory), `.notFound` (nothing mapped
    ///   at `address`, or the object could not be reached), `.accessDenied` (a right the handle
    ///   lacks, or every way to the object was refused), `.badHandle`, `.execed`, `.badState`.
    ///
    /// The corresponding C calls are `open("/proc/PID/map_files/START-END")`, `pidfd_getfd` or `open(path)`.
    public func memoryObject(containing address: UInt64, rights: AccessRights = .read) throws(ProcessMemoryError) -> BackingObject {
        try memoryObject(containing: address, rights: rights, sources: BackingObject.Source.allCases)
    }

    /// The object behind `region` (a region of this process's map); `offset` is the object offset
    /// of the region's start.
    ///
    /// - Throws: as ``memoryObject(containing:rights:)``; `.notFound` when the region is no longer
    ///   mapped as it was.
    public func memoryObject(for region: MemoryRegion, rights: AccessRights = .read) throws(ProcessMemoryError) -> BackingObject {
        try memoryObject(for: region, rights: rights, sources: BackingObject.Source.allCases)
    }

    /// ``memoryObject(containing:rights:)`` trying only `sources`, in order.
    func memoryObject(containing address: UInt64, rights: AccessRights, sources: [BackingObject.Source]) throws(ProcessMemoryError) -> BackingObject {
        try checkObjectRights(rights, address: address)
        guard address < AddressSpace.userLimit, let region = try region(containing: address) else {
            if try state() != .alive {
                throw lifecycleError(address: address, bytesTransferred: 0, systemCall: nil, errno: nil)
            }
            throw ProcessMemoryError(.notFound, pid: pid, address: address,
                                     message: "nothing is mapped at 0x\(String(address, radix: 16))")
        }
        return try openBackingObject(region: region, address: address, rights: rights, sources: sources)
    }

    /// ``memoryObject(for:rights:)`` trying only `sources`, in order.
    func memoryObject(for region: MemoryRegion, rights: AccessRights, sources: [BackingObject.Source]) throws(ProcessMemoryError) -> BackingObject {
        try checkObjectRights(rights, address: region.start)
        guard let current = try self.region(containing: region.start), current.start == region.start, current.end == region.end,
              current.inode == region.inode, current.offset == region.offset else {
            throw ProcessMemoryError(.notFound, pid: pid, address: region.start,
                                     message: "the region 0x\(String(region.start, radix: 16))-0x\(String(region.end, radix: 16)) is no longer mapped as it was")
        }
        return try openBackingObject(region: current, address: current.start, rights: rights, sources: sources)
    }

    private func checkObjectRights(_ rights: AccessRights, address: UInt64) throws(ProcessMemoryError) {
        guard rights.contains(.read) || rights.contains(.write) else {
            throw .invalid("a memory object needs at least one right", pid: pid, address: address)
        }
        if rights.contains(.write) && !self.rights.contains(.write) { throw .missingRight("write", pid: pid) }
        if rights.contains(.read) && !self.rights.contains(.read) { throw .missingRight("read", pid: pid) }
    }

    private func openBackingObject(region: MemoryRegion, address: UInt64, rights: AccessRights,
                                   sources: [BackingObject.Source]) throws(ProcessMemoryError) -> BackingObject {
        let hex = "0x" + String(address, radix: 16)
        let name = region.path ?? region.kind.rawValue
        if region.kind == .secretMemory {
            throw ProcessMemoryError(.protectionFailure, pid: pid, address: address,
                                     message: "\(hex) is secret memory (memfd_secret), which no other process can access")
        }
        guard region.hasBackingObject else {
            throw ProcessMemoryError(.wrongType, pid: pid, address: address,
                                     message: "\(hex) lies in \(Self.describeObjectless(region)), which has no backing object; read it through the process (read(from:)) instead")
        }
        let flags = MemoryObject.openFlags(rights)
        var refusals: [String] = []
        var denied = false
        var mapFilesDenied = false
        for source in sources {
            let attempt: Result<FileDescriptor, Errno>?
            switch source {
            case .mapFiles:
                let entry = "map_files/" + String(region.start, radix: 16) + "-" + String(region.end, radix: 16)
                attempt = try openProcFile(entry, flags)
                if case .failure(let error) = attempt {
                    refusals.append("/proc/\(pid)/\(entry): \(error)")
                    if error == .notPermitted || error == .permissionDenied { denied = true; mapFilesDenied = true }
                }
            case .targetDescriptor:
                attempt = try openTargetDescriptor(region: region, flags: flags, refusals: &refusals, denied: &denied)
            case .path:
                guard let path = region.path, path.hasPrefix("/"), !region.isDeleted, region.kind != .memfd else {
                    attempt = nil
                    break
                }
                // O_NONBLOCK: a FIFO put at the path must not block the open (it fails the inode check).
                attempt = FileDescriptor.open(path: path, flags | O_NOCTTY | O_NONBLOCK)
                if case .failure(let error) = attempt {
                    refusals.append("\(path): \(error)")
                    if error == .notPermitted || error == .permissionDenied { denied = true }
                }
            }
            guard case .success(let fd)? = attempt else { continue }
            // The descriptor must be the mapping's object: same inode (and device, unless the kernel
            // opened the mapping's own file through map_files, where overlay filesystems may differ).
            guard case .success(let info) = fd.status(), UInt64(info.st_ino) == region.inode,
                  source == .mapFiles || DeviceNumber(UInt64(info.st_dev)) == DeviceNumber(major: region.deviceMajor, minor: region.deviceMinor)
            else {
                fd.closeQuietly()
                refusals.append("\(source.rawValue): a different object (the mapping changed)")
                continue
            }
            let object = try MemoryObject(owning: fd)
            // map_files and pidfd_getfd go through the task's current address space; make sure it
            // is still the one the handle is bound to.
            if try state() != .alive {
                object.close()
                throw lifecycleError(address: address, bytesTransferred: 0, systemCall: nil, errno: nil)
            }
            return BackingObject(object: object, offset: region.offset &+ (address - region.start), region: region, source: source)
        }
        // Lookups through /proc/PID fail once the process is gone: say so rather than "not found".
        if try state() != .alive {
            throw lifecycleError(address: address, bytesTransferred: 0, systemCall: nil, errno: nil)
        }
        let tried = refusals.isEmpty ? "" : " (" + refusals.joined(separator: "; ") + ")"
        if denied {
            let why = mapFilesDenied
                ? "/proc/PID/map_files needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE, and no descriptor or path of the target led to it"
                : "access was refused"
            throw ProcessMemoryError(.accessDenied, pid: pid, address: address,
                                     message: "the object behind \(hex) (\(name)) could not be opened: \(why)\(tried)")
        }
        throw ProcessMemoryError(.notFound, pid: pid, address: address,
                                 message: "the object behind \(hex) (\(name)) could not be reached\(tried)")
    }

    /// Finds a descriptor of the target whose link and inode match `region`, duplicates it with
    /// pidfd_getfd(2), and reopens it through `/proc/self/fd/N` when its access mode differs from
    /// `flags`.
    private func openTargetDescriptor(region: MemoryRegion, flags: CInt, refusals: inout [String],
                                      denied: inout Bool) throws(ProcessMemoryError) -> Result<FileDescriptor, Errno>? {
        guard case .success(let names) = try procDirectoryEntries("fd") else { return nil }
        let wantedLink = region.path.map { $0 + (region.isDeleted ? " (deleted)" : "") }
        for name in names {
            guard let number = CInt(name) else { continue }
            if let wantedLink, wantedLink.hasPrefix("/") {
                guard case .success(let link) = try procLink("fd/" + name), link == wantedLink else { continue }
            }
            guard case .success(let info) = try procStat("fd/" + name), UInt64(info.st_ino) == region.inode,
                  DeviceNumber(UInt64(info.st_dev)) == DeviceNumber(major: region.deviceMajor, minor: region.deviceMinor)
            else { continue }
            let copy: FileDescriptor
            switch try copyTargetDescriptor(number) {
            case .success(let fd): copy = fd
            case .failure(let error):
                refusals.append("pidfd_getfd(\(number)): \(error)")
                if error == .notPermitted || error == .permissionDenied { denied = true }
                continue
            }
            guard case .success(let status) = copy.statusFlags(), status & O_ACCMODE != flags else { return .success(copy) }
            // Another access mode: a new open file description through the duplicate, checked
            // against the inode's permissions (an access mode cannot be changed in place).
            defer { copy.closeQuietly() }
            switch FileDescriptor.open(path: "/proc/self/fd/\(copy.rawValue)", flags) {
            case .success(let reopened): return .success(reopened)
            case .failure(let error):
                refusals.append("reopening descriptor \(number) of the target: \(error)")
                if error == .notPermitted || error == .permissionDenied { denied = true }
            }
        }
        if !refusals.contains(where: { $0.contains("descriptor") }) {
            refusals.append("no descriptor of the target refers to the object")
        }
        return nil
    }

    /// `anonymous private memory ([anon:NAME])`, `the heap ([heap])`, …
    private static func describeObjectless(_ region: MemoryRegion) -> String {
        let name = region.path.map { " (\($0))" } ?? ""
        switch region.kind {
        case .anonymous, .namedAnonymous: return "anonymous private memory\(name)"
        case .heap: return "the heap\(name)"
        case .stack: return "a stack\(name)"
        case .vdso, .vvar, .vsyscall: return "kernel-provided memory\(name)"
        case .sharedMemory: return "shared memory without an inode\(name)"
        default: return "a mapping of kind \(region.kind.rawValue)\(name)"
        }
    }
}

extension DeviceNumber {
    init(major: UInt32, minor: UInt32) {
        self.major = major
        self.minor = minor
    }
}
