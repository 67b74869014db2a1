/// A snapshot of a process's mappings, sorted by address, with lookups by address.
///
/// A map is a snapshot: the process can map and unmap at any time after it was taken.
public struct MemoryMap: Sendable, Hashable, RandomAccessCollection {
    /// The regions, sorted by start address.
    public let regions: [MemoryRegion]

    /// Creates a map from regions in any order.
    public init(regions: [MemoryRegion]) {
        self.regions = regions.sorted { $0.start < $1.start }
    }

    /// The first region's index (0).
    public var startIndex: Int { regions.startIndex }
    /// One past the last region's index.
    public var endIndex: Int { regions.endIndex }
    /// The region at `position`, in address order.
    public subscript(position: Int) -> MemoryRegion { regions[position] }

    /// The region containing `address`, found by binary search.
    public func region(containing address: UInt64) -> MemoryRegion? {
        guard let index = index(containing: address) else { return nil }
        return regions[index]
    }

    /// The index of the region containing `address`.
    public func index(containing address: UInt64) -> Int? {
        var low = 0
        var high = regions.count
        while low < high {
            let mid = (low + high) / 2
            if regions[mid].end <= address { low = mid + 1 } else { high = mid }
        }
        return low < regions.count && regions[low].contains(address) ? low : nil
    }

    /// The regions that overlap `range`.
    public func regions(overlapping range: Range<UInt64>) -> ArraySlice<MemoryRegion> {
        var low = 0
        var high = regions.count
        while low < high {
            let mid = (low + high) / 2
            if regions[mid].end <= range.lowerBound { low = mid + 1 } else { high = mid }
        }
        var upper = low
        while upper < regions.count && regions[upper].start < range.upperBound { upper += 1 }
        return regions[low..<upper]
    }

    /// The regions a protection-respecting read can read (`r` set, not `[vvar]` or `[vsyscall]`).
    public var readableRegions: [MemoryRegion] {
        regions.filter { $0.permissions.contains(.read) && $0.kind != .vvar && $0.kind != .vsyscall && $0.kind != .secretMemory }
    }

    /// Total bytes in readable regions.
    public var readableBytes: UInt64 { readableRegions.reduce(0) { $0 + $1.size } }
}
