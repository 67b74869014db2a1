import ProcessMemoryCore
/// The matches of a scan or rescan: compact, sorted by address, grouped by the region each lies in.
///
/// A match set records the process it came from (pid and start time, so a saved set is never
/// applied to another process that reuses the pid), what was looked for, and per match its address,
/// width and the bytes found there (up to 8, as they lie in memory, first byte lowest), which a
/// narrowing rescan compares against; for byte patterns and strings also the pattern and, per match,
/// a 64-bit digest (FNV-1a) of all the bytes matched, so a rescan can tell whether they changed.
/// Storage is struct-of-arrays: 17 bytes per match (25 for byte patterns), in memory up to
/// ``ScanOptions/spillThreshold`` matches; past it the matches move to an unnamed temporary file
/// (``isSpilled``, `pwrite(2)`/`pread(2)`) and are read back in blocks, so a set of any size costs
/// disk, not memory. Copies share that file.
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
    /// The set is incomplete: the scan, snapshot or comparison it came from was interrupted, failed
    /// or stopped at an explicit match limit, so matches may be missing. Rescans keep the mark.
    public var isPartial = false
    /// Regions that hold matches, sorted by start.
    public private(set) var regions: [Region] = []
    /// Matches per region (parallel to ``regions``).
    private(set) var regionCounts: [Int] = []
    // The matches not spilled (all of them while the set is small), struct-of-arrays.
    private(set) var addresses: [UInt64] = []
    private(set) var bits: [UInt64] = []
    private(set) var widths: [UInt8] = []
    /// Per match, for byte content only.
    private(set) var digests: [UInt64] = []
    /// When and where matches move out of memory (none: the set stays in memory).
    var spillPolicy = SpillPolicy()
    /// The file holding matches `0..<spilledCount` once the set outgrew ``SpillPolicy/threshold``.
    private var spill: (any MatchSpillStorage)?
    /// Matches in ``spill`` that belong to this set (a copy made earlier may own fewer).
    private var spilledCount = 0
    /// A write to the spill file failed: the matches stay in memory from then on, and the code that
    /// builds the set reports the failure (``MatchSpillFile/failure``).
    private(set) var spillFailed = false

    /// An empty set.
    public init(pid: Int32, processStartTime: UInt64, content: Content) {
        self.pid = pid
        self.processStartTime = processStartTime
        self.content = content
    }

    /// An empty set with `other`'s process, content and spill policy.
    init(like other: MatchSet, content: Content? = nil) {
        self.init(pid: other.pid, processStartTime: other.processStartTime, content: content ?? other.content)
        spillPolicy = other.spillPolicy
    }

    /// The number of matches.
    public var count: Int { spilledCount + addresses.count }

    /// Whether there are no matches.
    public var isEmpty: Bool { count == 0 }

    /// Whether some matches live in a file rather than in memory.
    public var isSpilled: Bool { spilledCount > 0 }

    /// The spill file, if the set has one (for reporting its failures).
    var spillStorage: (any MatchSpillStorage)? { spill }

    /// Match `index`, in address order (a spilled match is read back from the set's file, 4096
    /// records per `pread(2)`; should that read fail, the match reads as address 0, and the rescan,
    /// save or load that reads the set throws the failure).
    public subscript(index: Int) -> Match {
        if index >= spilledCount {
            let local = index - spilledCount
            return Match(address: addresses[local], width: Int(widths[local]), bits: bits[local],
                         digest: local < digests.count ? digests[local] : nil)
        }
        guard let record = spill?.record(index) else { return Match(address: 0, width: 1, bits: 0, digest: nil) }
        var match = record
        if case .values = content { match.digest = nil }
        return match
    }

    /// All matches (allocates an array; prefer indexing or ``forEachMatch(_:)`` for large sets).
    public var matches: [Match] { (0..<count).map { self[$0] } }

    /// Calls `body` with each match in address order, reading a spilled set sequentially; stops
    /// when `body` returns false.
    public func forEachMatch(_ body: (Int, Match) throws -> Bool) rethrows {
        for index in 0..<count where try !body(index, self[index]) { return }
    }

    /// Adds a match; addresses must come in increasing order, within `region` (added if new).
    /// Past ``SpillPolicy/threshold`` matches in memory, they move to the spill file.
    mutating func append(address: UInt64, width: Int, bits value: UInt64, region: Region, digest: UInt64? = nil) {
        if regions.last != region {
            regions.append(region)
            regionCounts.append(0)
        }
        regionCounts[regionCounts.count - 1] += 1
        addresses.append(address)
        bits.append(value)
        widths.append(UInt8(truncatingIfNeeded: width))
        if case .bytes = content { digests.append(digest ?? 0) }
        if !spillFailed, addresses.count >= (spill == nil ? spillPolicy.threshold : SpillPolicy.batch) { spillMatches() }
    }

    /// Moves the matches held in memory to the spill file (made on first use).
    private mutating func spillMatches() {
        if spill == nil || spill?.recordCount != spilledCount {
            // None yet, or shared with a copy that appended past this set's part: a file of our own.
            guard let make = spillPolicy.make else { return }
            let digestsKept: Bool
            if case .bytes = content { digestsKept = true } else { digestsKept = false }
            let fresh = make(digestsKept)
            if let old = spill, spilledCount > 0, !fresh.copy(from: old, count: spilledCount) {
                spillFailed = true
                return
            }
            spill = fresh
        }
        guard let spill, spill.append(addresses: addresses, bits: bits, widths: widths, digests: digests) else {
            spillFailed = true
            return
        }
        spilledCount += addresses.count
        let keep = Swift.min(addresses.count, SpillPolicy.batch)
        addresses.removeAll(keepingCapacity: false); addresses.reserveCapacity(keep)
        bits.removeAll(keepingCapacity: false); bits.reserveCapacity(keep)
        widths.removeAll(keepingCapacity: false); widths.reserveCapacity(keep)
        digests.removeAll(keepingCapacity: false)
    }

    /// FNV-1a 64 of `bytes`: the digest byte matches keep.
    static func digest(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var checksum = ScanChecksum()
        checksum.add(bytes)
        return checksum.value
    }

    /// Adds a region with no matches yet (kept only if a match follows; see ``dropEmptyRegions()``).
    mutating func appendRegion(_ region: Region) {
        if regions.last != region {
            regions.append(region)
            regionCounts.append(0)
        }
    }

    /// Removes regions that hold no match.
    mutating func dropEmptyRegions() {
        let used = regionCounts.indices.filter { regionCounts[$0] > 0 }
        guard used.count < regions.count else { return }
        regions = used.map { regions[$0] }
        regionCounts = used.map { regionCounts[$0] }
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
        regionIndex(containing: self[index].address).map { regions[$0] }
    }

    /// The value of match `index` as a number, for value content.
    public func number(ofMatch index: Int) -> ScanNumber? {
        guard case .values(let type, let order) = content else { return nil }
        let match = self[index]
        return ScanNumber.decode(bits: match.bits, width: match.width, type: type, order: order)
    }

    /// Sets are equal when their process, content, marks, regions and matches are (a spilled set
    /// is compared match by match).
    public static func == (lhs: MatchSet, rhs: MatchSet) -> Bool {
        guard lhs.pid == rhs.pid, lhs.processStartTime == rhs.processStartTime, lhs.content == rhs.content,
              lhs.pattern == rhs.pattern, lhs.isPartial == rhs.isPartial, lhs.regions == rhs.regions,
              lhs.count == rhs.count else { return false }
        for index in 0..<lhs.count where lhs[index] != rhs[index] { return false }
        return true
    }

    /// Hashes the process, content, marks, regions and count.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(pid)
        hasher.combine(processStartTime)
        hasher.combine(content)
        hasher.combine(pattern)
        hasher.combine(isPartial)
        hasher.combine(regions)
        hasher.combine(count)
    }
}

extension MatchSet {
    /// When a set's matches leave memory: past ``threshold`` matches they go to storage that
    /// ``make`` creates (a file in a private temporary directory, ``MatchSpillFile``), in batches.
    struct SpillPolicy: Sendable {
        /// Matches kept in memory before the set spills (no spill without ``make``).
        var threshold: Int = .max
        /// Creates empty storage; the argument says whether records carry a digest.
        var make: (@Sendable (Bool) -> any MatchSpillStorage)?
        /// Matches gathered in memory between writes once spilled.
        static let batch = 65_536
    }
}

/// Storage for the matches of a set that outgrew memory: fixed-size records in order, appended in
/// batches and read back by index (``MatchSpillFile``). Failures are kept by the storage and
/// reported by the code that builds the set; this file stays free of system calls.
protocol MatchSpillStorage: AnyObject, Sendable {
    /// Records written so far.
    var recordCount: Int { get }
    /// Appends one record per element of the arrays (`digests` empty when records have none);
    /// false when the write failed.
    func append(addresses: [UInt64], bits: [UInt64], widths: [UInt8], digests: [UInt64]) -> Bool
    /// Copies the first `count` records of `other`; false when that failed.
    func copy(from other: any MatchSpillStorage, count: Int) -> Bool
    /// Record `index`, or nil when it cannot be read back.
    func record(_ index: Int) -> MatchSet.Match?
}
