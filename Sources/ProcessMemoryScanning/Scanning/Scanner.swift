import Glibc
import ProcessMemoryCore

/// What a scan looks for.
public enum ScanQuery: Sendable, Hashable {
    /// A number (integers by their bytes, floating point within a tolerance).
    case value(ScanValue)
    /// A byte pattern or string.
    case pattern(BytePattern)
}

/// How a scan reads.
public struct ScanOptions: Sendable, Hashable {
    /// Which regions to read.
    public var regions: RegionFilter = .default
    /// Bytes read per `process_vm_readv(2)` call; two buffers of this size are all a scan allocates
    /// besides its matches.
    public var chunkSize: Int = 4 << 20
    /// Values only at addresses that are a multiple of their width (patterns: any offset).
    public var aligned: Bool = true
    /// Matches kept at most, as the user asked (`Int.max`, the default: no limit); the scan stops
    /// there and marks its result partial (``ScanResult/truncated``).
    public var matchLimit: Int = .max
    /// Matches a set keeps in memory (17 bytes each, 25 for byte patterns); past them its matches
    /// move to an unnamed file in a private directory under ``temporaryDirectory`` (``MatchSet/isSpilled``),
    /// so a set of any size costs disk, not memory.
    public var spillThreshold: Int = 262_144
    /// Where sets spill (a fresh directory, mode 0700, removed as soon as its file is open).
    public var temporaryDirectory: String = "/tmp"
    /// Matches a snapshot comparison with an output file keeps in memory (17 bytes each); beyond
    /// them it has no cap and saves a narrowed snapshot (bitmaps) instead of a list.
    public var inMemoryMatchLimit: Int = 1 << 20
    /// Skip chunks none of whose pages is resident or swapped (from `/proc/PID/pagemap`), so memory
    /// the target never touched is not faulted in (a chunk that is read maps the zero page into its
    /// untouched pages, so the granularity is ``chunkSize``). Such memory reads as zeros, so a scan for 0
    /// misses it.
    public var residentOnly: Bool = false

    /// Creates scan options; the defaults scan writable private memory, aligned, in 4 MiB chunks,
    /// with no match limit.
    public init(regions: RegionFilter = .default, chunkSize: Int = 4 << 20, aligned: Bool = true,
                matchLimit: Int = .max, residentOnly: Bool = false) {
        self.residentOnly = residentOnly
        self.regions = regions
        self.chunkSize = chunkSize
        self.aligned = aligned
        self.matchLimit = matchLimit
    }
}

/// How far a scan has come, passed to the progress callback after each chunk: the package's
/// ``WorkProgress`` convention (cumulative bytes against a total), plus the matches so far.
public struct ScanProgress: Sendable, Hashable {
    /// Bytes of the selected regions scanned so far.
    public var bytesDone: UInt64
    /// Bytes of the selected regions in all.
    public var bytesTotal: UInt64
    /// Matches found so far.
    public var matches: Int
}

/// The outcome of a scan or rescan.
public struct ScanResult: Sendable {
    /// Creates a result from its parts; `Scanner.scan` makes these.
    public init(matches: MatchSet, regionsScanned: Int, bytesScanned: UInt64, skipped: [SkippedRange],
                truncated: Bool, interrupted: Bool, elapsed: Double) {
        self.matches = matches
        self.regionsScanned = regionsScanned
        self.bytesScanned = bytesScanned
        self.skipped = skipped
        self.truncated = truncated
        self.interrupted = interrupted
        self.elapsed = elapsed
        self.matchCount = matches.count
    }

    /// The matches found.
    public var matches: MatchSet
    /// Regions read (whole or in part).
    public var regionsScanned: Int
    /// Bytes read and matched.
    public var bytesScanned: UInt64
    /// Ranges that could not be read: regions that vanished, shrank or became unreadable meanwhile.
    public var skipped: [SkippedRange]
    /// The explicit match limit (``ScanOptions/matchLimit``) was reached; more matches may exist.
    public var truncated: Bool
    /// The scan was stopped by its ``Cancellation`` (Ctrl-C); the matches so far are kept.
    public var interrupted: Bool
    /// Wall-clock seconds.
    public var elapsed: Double
    /// Bytes not read because no page of their chunk was resident (``ScanOptions/residentOnly``).
    public var bytesNotResident: UInt64 = 0
    /// The number of matches: ``matches``' count, or more when a snapshot comparison saved them as
    /// a narrowed snapshot (``narrowedTo``) and ``matches`` holds the first ones only.
    public var matchCount: Int
    /// Where a snapshot comparison with more matches than fit in memory saved them as a narrowed
    /// snapshot (``Scanner/compare(snapshotAt:where:as:byteOrder:aligned:output:keepPartial:progress:cancellation:)``); nil otherwise.
    public var narrowedTo: String?

    /// Matches may be missing: the work stopped early (``truncated``, ``interrupted``), or worked
    /// from a set or snapshot that was itself partial (``MatchSet/isPartial``).
    public var isPartial: Bool { truncated || interrupted || matches.isPartial }
}

/// Finds values, strings and byte patterns in a process's memory.
///
/// There is no match cap unless one is asked for: a set that outgrows
/// ``ScanOptions/spillThreshold`` moves its matches to a temporary file (``MatchSet/isSpilled``).
///
/// Regions chosen by a ``RegionFilter`` are streamed in large chunks through two reused buffers
/// (`process_vm_readv(2)` on a reader thread while the caller's thread matches), so memory stays
/// bounded whatever the target's size. Candidates come from `memchr(3)` on one known byte; floating
/// point values are compared at each aligned offset. A region that vanishes or fails mid-scan is
/// skipped and listed in ``ScanResult/skipped``.
public struct Scanner: Sendable {
    /// The process to scan.
    public let handle: ProcessHandle
    /// How to scan.
    public var options: ScanOptions

    /// A scanner over `handle`'s process; reads use process_vm_readv in `options.chunkSize` chunks.
    public init(handle: ProcessHandle, options: ScanOptions = ScanOptions()) {
        self.handle = handle
        self.options = options
    }

    /// The regions ``options`` select in the process now.
    ///
    /// The corresponding C calls are `pread` on `/proc/PID/maps` and `readlinkat(/proc/PID/exe)`.
    ///
    /// Regions registered with userfaultfd (`VmFlags` `um`, `uw`, `ui` in `/proc/PID/smaps`) are
    /// left out: reading them could block forever.
    public func selectedRegions() throws(ProcessMemoryError) -> [MemoryRegion] {
        try selectedRegionsSkippingUserfaultfd().regions
    }

    /// ``selectedRegions()``, and the userfaultfd-registered regions it left out, as skipped ranges.
    func selectedRegionsSkippingUserfaultfd() throws(ProcessMemoryError) -> (regions: [MemoryRegion], skipped: [SkippedRange]) {
        let map = try handle.memoryMap()
        let exe = options.regions.kinds.contains(.executable) ? handle.executablePath() : nil
        let selected = options.regions.select(from: map, executablePath: exe)
        let registered = handle.userfaultfdRegions()
        guard !registered.isEmpty else { return (selected, []) }
        var kept: [MemoryRegion] = []
        var skipped: [SkippedRange] = []
        for region in selected {
            if let entry = registered.first(where: { $0.key < region.end && $0.value.end > region.start }) {
                skipped.append(SkippedRange(start: region.start, end: region.end, path: region.path,
                                            reason: handle.userfaultfdSkip(start: region.start, reason: entry.value.reason)))
            } else {
                kept.append(region)
            }
        }
        return (kept, skipped)
    }

    /// Scans for `query` in `regions` (default: ``selectedRegions()``). `progress` is called on
    /// this thread after each chunk; once `cancellation` is cancelled the scan stops, keeping what
    /// was found.
    ///
    /// - Throws: `.badState` or `.execed` when the process exits or execs during the scan; what
    ///   opening the map throws.
    public func scan(_ query: ScanQuery, regions given: [MemoryRegion]? = nil,
                     progress: ((ScanProgress) -> Void)? = nil,
                     cancellation: Cancellation = .never) throws(ProcessMemoryError) -> ScanResult {
        let clock = ContinuousClock.now
        let regions: [MemoryRegion]
        var userfaultfdSkipped: [SkippedRange] = []
        if let given { regions = given } else { (regions, userfaultfdSkipped) = try selectedRegionsSkippingUserfaultfd() }
        let startTime = try handle.processStartTime()
        let matcher = ChunkMatcher(query: query, aligned: options.aligned)
        var set = MatchSet(pid: handle.pid, processStartTime: startTime, content: matcher.content)
        set.spillPolicy = options.spillPolicy
        var patternLength = 0
        if case .pattern(let pattern) = query {
            set.pattern = pattern
            patternLength = pattern.count
        }
        let total = regions.reduce(UInt64(0)) { $0 + $1.size }
        var done: UInt64 = 0
        var skipped: [SkippedRange] = userfaultfdSkipped
        var scanned = Set<Int>()
        var truncated = false
        var interrupted = false
        var fatal: ProcessMemoryError?
        let limit = options.matchLimit
        var notResident: UInt64 = 0
        let stream = RegionStream(handle: handle, regions: regions, chunkSize: options.chunkSize, overlap: matcher.overlap,
                                  residentOnly: options.residentOnly)
        stream.run { chunk in
            notResident += UInt64(chunk.notResident)
            done += UInt64(chunk.notResident)
            let region = regions[chunk.regionIndex]
            let info = MatchSet.Region(region)
            if chunk.count > 0 { scanned.insert(chunk.regionIndex) }
            matcher.forEachMatch(in: UnsafeRawBufferPointer(rebasing: chunk.bytes[0..<chunk.count]),
                                 own: chunk.ownCount, address: chunk.address) { offset, width, bits in
                guard set.count < limit else { truncated = true; return false }
                var digest: UInt64?
                if patternLength > 0 {
                    digest = MatchSet.digest(UnsafeRawBufferPointer(rebasing: chunk.bytes[offset..<(offset + patternLength)]))
                }
                set.append(address: chunk.address + UInt64(offset), width: width, bits: bits, region: info, digest: digest)
                return true
            }
            done += UInt64(chunk.ownCount)
            if set.spillFailed {
                do throws(ProcessMemoryError) { try set.checkSpill() } catch { fatal = error }
                return false
            }
            if let stop = chunk.stop {
                if stop.code == .badState || stop.code == .execed || stop.code == .badHandle {
                    fatal = stop
                    return false
                }
                let from = chunk.address + UInt64(chunk.count)
                skipped.append(SkippedRange(start: from, end: chunk.resumeAt, path: region.path, reason: stop))
                done += chunk.resumeAt - from
            }
            if truncated { return false }
            progress?(ScanProgress(bytesDone: done, bytesTotal: total, matches: set.count))
            if cancellation.isCancelled {
                interrupted = true
                return false
            }
            return true
        }
        if let fatal { throw fatal }
        set.isPartial = truncated || interrupted
        set.dropEmptyRegions()
        let elapsed = ContinuousClock.now - clock
        var result = ScanResult(matches: set, regionsScanned: scanned.count, bytesScanned: done, skipped: skipped,
                                truncated: truncated, interrupted: interrupted,
                                elapsed: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        result.bytesNotResident = notResident
        return result
    }
}

/// Matching within one chunk, for any query.
struct ChunkMatcher {
    enum Mode {
        case patterns([(pattern: BytePattern, width: Int, alignment: Int)])
        case float(ScanValue, width: Int, alignment: Int)
    }

    let mode: Mode
    let content: MatchSet.Content
    /// Bytes a match may extend past its chunk's own part.
    let overlap: Int

    init(query: ScanQuery, aligned: Bool) {
        switch query {
        case .pattern(let pattern):
            mode = .patterns([(pattern, min(pattern.count, 8), 1)])
            content = .bytes(length: pattern.count)
            overlap = pattern.count - 1
        case .value(let value):
            content = .values(value.type, value.byteOrder)
            if value.type.isFloatingPoint {
                let width = value.type.width ?? 4
                mode = .float(value, width: width, alignment: aligned ? width : 1)
                overlap = width - 1
            } else {
                let widths = value.widths
                mode = .patterns(widths.map { width in
                    let bytes = value.integerBytes(width: width)
                    return (BytePattern(bytes: bytes, mask: Array(repeating: 0xFF, count: width),
                                        folded: Array(repeating: false, count: width)), width, aligned ? width : 1)
                })
                overlap = (widths.max() ?? 1) - 1
            }
        }
    }

    /// Calls `emit(offset, width, bits)` for each match starting in the chunk's own part, in
    /// increasing offset order; `emit` returns false to stop.
    func forEachMatch(in buffer: UnsafeRawBufferPointer, own: Int, address: UInt64,
                      _ emit: (Int, Int, UInt64) -> Bool) {
        guard let base = buffer.baseAddress else { return }
        switch mode {
        case .patterns(let patterns) where patterns.count == 1:
            let (pattern, width, alignment) = patterns[0]
            let starts = min(own, buffer.count - pattern.count + 1)
            pattern.forEachMatch(in: buffer, starts: starts, address: address, alignment: alignment) { start in
                emit(start, width, Self.bits(base, start, width))
            }
        case .patterns(let patterns):
            // Several widths (any-int): collect per width, then merge by offset so output stays sorted.
            var found: [(Int, Int)] = []
            for (pattern, width, alignment) in patterns {
                let starts = min(own, buffer.count - pattern.count + 1)
                pattern.forEachMatch(in: buffer, starts: starts, address: address, alignment: alignment) { start in
                    found.append((start, width))
                    return true
                }
            }
            found.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            for (start, width) in found where !emit(start, width, Self.bits(base, start, width)) { return }
        case .float(let value, let width, let alignment):
            let starts = min(own, buffer.count - width + 1)
            guard starts > 0 else { return }
            var start = Int((UInt64(alignment) - address % UInt64(alignment)) % UInt64(alignment))
            while start < starts {
                let bits = Self.bits(base, start, width)
                if case .floatingPoint(let candidate) = ScanNumber.decode(bits: bits, width: width, type: value.type, order: value.byteOrder),
                   value.matches(candidate), !emit(start, width, bits) { return }
                start += alignment
            }
        }
    }

    /// Up to 8 bytes at `start`, first byte lowest.
    @inline(__always)
    static func bits(_ base: UnsafeRawPointer, _ start: Int, _ width: Int) -> UInt64 {
        switch width {
        case 1: return UInt64(base.load(fromByteOffset: start, as: UInt8.self))
        case 2: return UInt64(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: start, as: UInt16.self)))
        case 4: return UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: start, as: UInt32.self)))
        case 8: return UInt64(littleEndian: base.loadUnaligned(fromByteOffset: start, as: UInt64.self))
        default:
            var value: UInt64 = 0
            for index in 0..<min(width, 8) {
                value |= UInt64(base.load(fromByteOffset: start + index, as: UInt8.self)) << (8 * UInt64(index))
            }
            return value
        }
    }
}
