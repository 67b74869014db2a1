import ProcessMemoryCore
/// Which regions of a process a scan reads.
///
/// The default, like scanmem's, is writable private memory (heap, stack, anonymous mappings, the
/// writable data of loaded files): where a program keeps its variables. ``all`` is every readable
/// region. Every selected region must be readable and never `[vvar]`, `[vsyscall]` or secret memory.
public struct RegionFilter: Sendable, Hashable {
    /// A kind of region to select.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// `[heap]`.
        case heap
        /// `[stack]`.
        case stack
        /// Anonymous memory, named (`[anon:NAME]`) or not.
        case anonymous
        /// Any file mapping.
        case file
        /// Mappings of the main executable (the file `/proc/PID/exe` names).
        case executable
    }

    /// Permissions every selected region must have (at least these).
    public var permissions: MemoryRegion.Permissions
    /// Kinds to select; empty selects all kinds.
    public var kinds: Set<Kind>
    /// Include shared mappings (`s` in the map).
    public var includeShared: Bool
    /// A substring the region's path must contain.
    public var pathContains: String?
    /// Only the part of each region inside this address range.
    public var addressRange: Range<UInt64>?

    /// Creates a filter.
    public init(permissions: MemoryRegion.Permissions = [.read, .write], kinds: Set<Kind> = [],
                includeShared: Bool = false, pathContains: String? = nil, addressRange: Range<UInt64>? = nil) {
        self.permissions = permissions
        self.kinds = kinds
        self.includeShared = includeShared
        self.pathContains = pathContains
        self.addressRange = addressRange
    }

    /// Writable private memory (scanmem's default).
    public static let `default` = RegionFilter()

    /// Every readable region.
    public static let all = RegionFilter(permissions: [.read], includeShared: true)

    /// The selected regions of `map`, clipped to ``addressRange``; `executablePath` is what
    /// `/proc/PID/exe` names, for ``Kind/executable``.
    public func select(from map: MemoryMap, executablePath: String? = nil) -> [MemoryRegion] {
        var selected: [MemoryRegion] = []
        for var region in map.readableRegions {
            guard region.permissions.isSuperset(of: permissions) else { continue }
            guard includeShared || !region.isShared else { continue }
            if let pathContains, !(region.path?.contains(pathContains) ?? false) { continue }
            if !kinds.isEmpty && !kinds.contains(where: { matches($0, region, executablePath) }) { continue }
            if let range = addressRange {
                let start = max(region.start, range.lowerBound)
                let end = min(region.end, range.upperBound)
                guard start < end else { continue }
                region.start = start
                region.end = end
            }
            selected.append(region)
        }
        return selected
    }

    private func matches(_ kind: Kind, _ region: MemoryRegion, _ executablePath: String?) -> Bool {
        switch kind {
        case .heap: return region.kind == .heap
        case .stack: return region.kind == .stack
        case .anonymous: return region.kind == .anonymous || region.kind == .namedAnonymous
        case .file: return region.kind == .file
        case .executable: return executablePath != nil && region.path == executablePath
        }
    }
}
