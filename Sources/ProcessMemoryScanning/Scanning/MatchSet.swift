import ProcessMemoryCore
/// The matches of a scan or rescan: compact, sorted by address, grouped by the region each lies in.
///
/// A match set records the process it came from (pid and start time, so a saved set is never
/// applied to another process that reuses the pid), what was looked for, and per match its address,
/// width and the bytes found there (up to 8, as they lie in memory, first byte lowest), which a
/// narrowing rescan compares against; for byte patterns and strings also the pattern and, per match,
/// a 64-bit digest (FNV-1a) of all the bytes matched, so a rescan can tell whether they changed.
/// Storage is struct-of-arrays: 17 bytes per match (25 for byte patterns).
public struct MatchSet: Sendable, Hashable {
    /// A region that held matches, as it was mapped at scan time.
    public struct Region: Sendable, Hashable {
        /// First address of the region when the set was made.
        public var start: UInt64
        /// One past its last address.
        public var end: UInt64
        /// Its permissions then.
        public var permissions: MemoryRegion.Permissions
        /// Its path or pseudo-name, if any.
        public var path: String?

        /// Describes a region as the match set records it.
        public init(start: UInt64, end: UInt64, permissions: MemoryRegion.Permissions, path: String?) {
            self.start = start
            self.end = end
            self.permissions = permissions
            self.path = path
        }

        init(_ region: MemoryRegion) {
            self.init(start: region.start, end: region.end, permissions: region.permissions, path: region.path)
        }
    }

    /// What the matches are.
    public enum Content: Sendable, Hashable {
        /// Numbers of a type, in a byte order.
        case values(ScanValueType, ScanByteOrder)
        /// Byte sequences of a length (patterns and strings).
        case bytes(length: Int)
    }

    /// One match.
    public struct Match: Sendable, Hashable {
        /// The matched address in the target.
        public var address: UInt64
        /// Bytes the value spans (for byte content: the pattern length, capped at 8 for ``bits``).
        public var width: Int
        /// The first `min(width, 8)` bytes found, first byte lowest.
        public var bits: UInt64
        /// For byte content: FNV-1a 64 of all the pattern-length bytes found; nil for values.
        public var digest: UInt64?
    }

    /// The process the set belongs to.
    public var pid: Int32
    /// The process's start time (field 22 of `/proc/PID/stat`, clock ticks since boot).
    public var processStartTime: UInt64
    /// What was looked for.
    public var content: Content
    /// For byte content: the pattern or string the matches were found with (or last tested against),
    /// which ``RescanPredicate/matches(_:)`` can test again.
    public var pattern: BytePattern?
    /// The set is incomplete: the scan, snapshot or comparison it came from was interrupted or hit
    /// the match limit, so matches may be missing. Rescans keep the mark.
    public var isPartial = false
    /// Regions that hold matches, sorted by start.
    public private(set) var regions: [Region] = []
    private(set) var addresses: [UInt64] = []
    private(set) var bits: [UInt64] = []
    private(set) var widths: [UInt8] = []
    /// Per match, for byte content only.
    private(set) var digests: [UInt64] = []

    /// An empty set.
    public init(pid: Int32, processStartTime: UInt64, content: Content) {
        self.pid = pid
        self.processStartTime = processStartTime
        self.content = content
    }

    /// The number of matches.
    public var count: Int { addresses.count }

    /// Whether there are no matches.
    public var isEmpty: Bool { addresses.isEmpty }

    /// Match `index`, in address order.
    public subscript(index: Int) -> Match {
        Match(address: addresses[index], width: Int(widths[index]), bits: bits[index],
              digest: index < digests.count ? digests[index] : nil)
    }

    /// All matches (allocates an array; prefer indexing for large sets).
    public var matches: [Match] { (0..<count).map { self[$0] } }

    /// Adds a match; addresses must come in increasing order, within `region` (added if new).
    mutating func append(address: UInt64, width: Int, bits value: UInt64, region: Region, digest: UInt64? = nil) {
        if regions.last != region { regions.append(region) }
        addresses.append(address)
        bits.append(value)
        widths.append(UInt8(truncatingIfNeeded: width))
        if case .bytes = content { digests.append(digest ?? 0) }
    }

    /// FNV-1a 64 of `bytes`: the digest byte matches keep.
    static func digest(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var checksum = ScanChecksum()
        checksum.add(bytes)
        return checksum.value
    }

    /// Adds a region with no matches yet (kept only if a match follows; see ``dropEmptyRegions()``).
    mutating func appendRegion(_ region: Region) {
        if regions.last != region { regions.append(region) }
    }

    /// Removes regions that hold no match.
    mutating func dropEmptyRegions() {
        var used = Set<Int>()
        for address in addresses { if let index = regionIndex(containing: address) { used.insert(index) } }
        regions = regions.enumerated().filter { used.contains($0.offset) }.map(\.element)
    }

    /// The region holding `address`, by binary search.
    public func regionIndex(containing address: UInt64) -> Int? {
        var low = 0
        var high = regions.count
        while low < high {
            let mid = (low + high) / 2
            if regions[mid].end <= address { low = mid + 1 } else { high = mid }
        }
        return low < regions.count && regions[low].start <= address && address < regions[low].end ? low : nil
    }

    /// The region of match `index`.
    public func region(ofMatch index: Int) -> Region? {
        regionIndex(containing: addresses[index]).map { regions[$0] }
    }

    /// The value of match `index` as a number, for value content.
    public func number(ofMatch index: Int) -> ScanNumber? {
        guard case .values(let type, let order) = content else { return nil }
        return ScanNumber.decode(bits: bits[index], width: Int(widths[index]), type: type, order: order)
    }
}
