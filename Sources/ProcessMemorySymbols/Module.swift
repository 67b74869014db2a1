import ProcessMemoryCore

/// One ELF module mapped into a process: the executable, a shared object, or the vDSO.
///
/// Found in `/proc/PID/maps`: consecutive mappings of one file (same path, device and inode) of
/// which at least one is executable, plus an unnamed anonymous mapping right after them (the
/// module's `.bss`); and the `[vdso]` mapping.
public struct Module: Sendable, Hashable, CustomStringConvertible {
    /// The file name (`libc.so.6`), or `[vdso]`.
    public var name: String
    /// The path as the process sees it (`nil` for the vDSO).
    public var path: String?
    /// The file's mappings, by address.
    public var regions: [MemoryRegion]
    /// The lowest mapped address: `MODULE+OFFSET` counts from here.
    public var start: UInt64
    /// One past the highest address of the module's mappings, including its `.bss`.
    public var end: UInt64
    /// The file was deleted or replaced after it was mapped (it is still read, through `map_files`).
    public var isDeleted: Bool

    /// Whether this is the vDSO, read from the process's memory rather than from a file.
    public var isVDSO: Bool { regions.first?.kind == .vdso }

    /// Whether `address` lies in the module's mappings or its `.bss`.
    public func contains(_ address: UInt64) -> Bool { address >= start && address < end }

    /// `name (start-end)`.
    public var description: String { "\(name) (0x\(String(start, radix: 16))-0x\(String(end, radix: 16)))" }

    /// The modules of `map`, by address.
    public static func modules(in map: MemoryMap) -> [Module] {
        var modules: [Module] = []
        let regions = map.regions
        var index = 0
        while index < regions.count {
            let region = regions[index]
            if region.kind == .vdso {
                modules.append(Module(name: "[vdso]", path: nil, regions: [region], start: region.start, end: region.end,
                                      isDeleted: false))
                index += 1
                continue
            }
            guard region.kind == .file || region.kind == .memfd, let path = region.path else {
                index += 1
                continue
            }
            var group = [region]
            var next = index + 1
            while next < regions.count, regions[next].path == path, regions[next].inode == region.inode,
                  regions[next].deviceMajor == region.deviceMajor, regions[next].deviceMinor == region.deviceMinor {
                group.append(regions[next])
                next += 1
            }
            var end = group[group.count - 1].end
            if next < regions.count, regions[next].kind == .anonymous, regions[next].start == end {
                end = regions[next].end
                next += 1
            }
            if group.contains(where: { $0.permissions.contains(.execute) }) {
                let name = path.split(separator: "/").last.map(String.init) ?? path
                modules.append(Module(name: name, path: path, regions: group, start: region.start, end: end,
                                      isDeleted: region.isDeleted))
            }
            index = next
        }
        return modules
    }
}
