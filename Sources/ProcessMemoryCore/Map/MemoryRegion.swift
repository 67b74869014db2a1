/// One mapping of a process, as a line of `/proc/PID/maps` (or a `PROCMAP_QUERY` result) describes it.
public struct MemoryRegion: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Access permissions of a mapping (`r`, `w`, `x` in `/proc/PID/maps`).
    public struct Permissions: OptionSet, Sendable, Hashable, Codable, CustomStringConvertible {
        /// The bit pattern.
        public let rawValue: UInt8
        /// Creates a set from its bit pattern.
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// `PROT_READ`.
        public static let read = Permissions(rawValue: 1)
        /// `PROT_WRITE`.
        public static let write = Permissions(rawValue: 2)
        /// `PROT_EXEC`.
        public static let execute = Permissions(rawValue: 4)
        /// `rwx` with `-` for a missing permission.
        public var description: String {
            (contains(.read) ? "r" : "-") + (contains(.write) ? "w" : "-") + (contains(.execute) ? "x" : "-")
        }
    }

    /// What a mapping holds, from its path or pseudo-name.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// Anonymous memory without a name.
        case anonymous
        /// Anonymous memory named with `PR_SET_VMA_ANON_NAME` (`[anon:NAME]`).
        case namedAnonymous
        /// A regular file.
        case file
        /// The `brk` heap (`[heap]`).
        case heap
        /// The main thread's stack (`[stack]`, or `[stack:TID]` on old kernels).
        case stack
        /// The vDSO code page (`[vdso]`).
        case vdso
        /// The vDSO data pages (`[vvar]`, `[vvar_vclock]`).
        case vvar
        /// The legacy vsyscall page (`[vsyscall]`).
        case vsyscall
        /// A memfd (`/memfd:NAME (deleted)`).
        case memfd
        /// Shared memory: System V segments, `/dev/shm` files, shared anonymous memory (`/dev/zero`,
        /// `[anon_shmem:NAME]`).
        case sharedMemory
        /// `memfd_secret(2)` memory, which no other process can read (`/secretmem`).
        case secretMemory
        /// Any other bracketed pseudo-name the kernel may print.
        case other
    }

    /// First address of the mapping.
    public var start: UInt64
    /// One past the last address of the mapping.
    public var end: UInt64
    /// `r`, `w`, `x`.
    public var permissions: Permissions
    /// `s` (shared) rather than `p` (private, copy-on-write).
    public var isShared: Bool
    /// Offset of `start` in the backing file or object.
    public var offset: UInt64
    /// Device major number of the backing file.
    public var deviceMajor: UInt32
    /// Device minor number of the backing file.
    public var deviceMinor: UInt32
    /// Inode of the backing file, 0 for anonymous memory.
    public var inode: UInt64
    /// The path or pseudo-name (`[heap]`), newlines decoded, without the ` (deleted)` suffix.
    public var path: String?
    /// The backing file has been deleted.
    public var isDeleted: Bool
    /// What the mapping holds.
    public var kind: Kind

    /// Creates a region; `kind` is derived from the other fields when not given.
    public init(start: UInt64, end: UInt64, permissions: Permissions, isShared: Bool, offset: UInt64 = 0,
                deviceMajor: UInt32 = 0, deviceMinor: UInt32 = 0, inode: UInt64 = 0, path: String? = nil,
                isDeleted: Bool = false, kind: Kind? = nil) {
        self.start = start
        self.end = end
        self.permissions = permissions
        self.isShared = isShared
        self.offset = offset
        self.deviceMajor = deviceMajor
        self.deviceMinor = deviceMinor
        self.inode = inode
        self.path = path
        self.isDeleted = isDeleted
        self.kind = kind ?? Self.kind(path: path, inode: inode, isShared: isShared)
    }

    /// Size in bytes.
    public var size: UInt64 { end - start }

    /// Whether `address` lies inside the region.
    public func contains(_ address: UInt64) -> Bool { address >= start && address < end }

    /// Whether the region is backed by a file or shared-memory object that has a size (so pages past
    /// its end exist in the mapping but not in the object).
    public var hasBackingObject: Bool {
        switch kind {
        case .file, .memfd, .secretMemory: return true
        case .sharedMemory: return inode != 0
        default: return false
        }
    }

    /// Memory the library never writes: `[vdso]`, `[vvar]`, `[vvar_vclock]`, `[vsyscall]` and secret memory.
    public var isProtectedFromWrites: Bool {
        kind == .vdso || kind == .vvar || kind == .vsyscall || kind == .secretMemory
    }

    /// A pmap-like line: `start-end perms offset dev inode path`.
    public var description: String {
        let hex = { (value: UInt64, width: Int) -> String in
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let dev = hex(UInt64(deviceMajor), 2) + ":" + hex(UInt64(deviceMinor), 2)
        let name = (path ?? "") + (isDeleted ? " (deleted)" : "")
        return "\(hex(start, 12))-\(hex(end, 12)) \(permissions)\(isShared ? "s" : "p") \(hex(offset, 8)) \(dev) \(inode) \(name)"
    }

    package static func kind(path: String?, inode: UInt64, isShared: Bool) -> Kind {
        guard let path, !path.isEmpty else { return isShared ? .sharedMemory : .anonymous }
        switch path {
        case "[heap]": return .heap
        case "[stack]": return .stack
        case "[vdso]": return .vdso
        case "[vvar]", "[vvar_vclock]": return .vvar
        case "[vsyscall]": return .vsyscall
        case "/secretmem", "secretmem": return .secretMemory
        default: break
        }
        if path.hasPrefix("[stack:") { return .stack }
        if path.hasPrefix("[anon:") { return .namedAnonymous }
        if path.hasPrefix("[anon_shmem:") { return .sharedMemory }
        if path.hasPrefix("[") { return .other }
        if path.hasPrefix("/memfd:") { return .memfd }
        if path.hasPrefix("/SYSV") || path.hasPrefix("/dev/shm/") || path == "/dev/zero" { return .sharedMemory }
        if path.hasPrefix("/") { return .file }
        return .other
    }
}
