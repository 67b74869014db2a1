import ProcessMemoryCore
/// A narrowing condition: which of the previous matches (or snapshot values) to keep.
///
/// Value sets and snapshots take every case but ``matches(_:)``. Sets of byte patterns and strings
/// take ``changed`` and ``unchanged`` (any of the pattern-length bytes differ, or none) and
/// ``matches(_:)``.
public enum RescanPredicate: Sendable, Hashable {
    /// The value now equals this one (floating point: within its tolerance).
    case equal(ScanValue)
    /// The value (or any byte of a pattern match) differs from before.
    case changed
    /// The value (or every byte of a pattern match) is as before.
    case unchanged
    /// For byte-pattern and string sets: this pattern now matches at the match's address (the set's
    /// own ``MatchSet/pattern``: it still matches; another: a new string or pattern there).
    case matches(BytePattern)
    case increased
    case decreased
    /// The value grew by exactly this amount (floating point: within its tolerance).
    case increasedBy(ScanValue)
    /// The value shrank by exactly this amount.
    case decreasedBy(ScanValue)
    /// The value now lies in the closed range.
    case inRange(ScanValue, ScanValue)
    /// The value now differs from this one (floating point: lies outside its tolerance).
    case notEqual(ScanValue)
    /// The value is now below this one.
    case lessThan(ScanValue)
    /// The value is now above this one.
    case greaterThan(ScanValue)

    /// Whether `newBits` (now) passes against `oldBits` (before), both `width` bytes of `type`.
    func accepts(oldBits: UInt64, newBits: UInt64, width: Int, type: ScanValueType, order: ScanByteOrder) -> Bool {
        let mask: UInt64 = width >= 8 ? .max : (1 << UInt64(width * 8)) - 1
        func new() -> ScanNumber { ScanNumber.decode(bits: newBits, width: width, type: type, order: order) }
        func old() -> ScanNumber { ScanNumber.decode(bits: oldBits, width: width, type: type, order: order) }
        switch self {
        case .changed: return oldBits & mask != newBits & mask
        case .unchanged: return oldBits & mask == newBits & mask
        case .equal(let value): return Self.equal(new(), newBits & mask, value, width: width, type: type)
        case .increased: return oldBits & mask != newBits & mask && new().compare(old()) == 1
        case .decreased: return oldBits & mask != newBits & mask && new().compare(old()) == -1
        case .increasedBy(let amount): return Self.same(new().difference(old()), amount)
        case .decreasedBy(let amount): return Self.same(old().difference(new()), amount)
        case .matches: return false
        case .inRange(let low, let high):
            let value = new()
            guard let a = value.compare(low.number), let b = value.compare(high.number) else { return false }
            return a >= 0 && b <= 0
        case .notEqual(let value): return !Self.equal(new(), newBits & mask, value, width: width, type: type)
        case .lessThan(let value): return new().compare(value.number) == -1
        case .greaterThan(let value): return new().compare(value.number) == 1
        }
    }

    /// Whether the test fails for any value whose bytes did not change (so equal stretches of
    /// memory can be skipped without decoding a value).
    var failsOnEqualBytes: Bool {
        switch self {
        case .changed, .increased, .decreased: return true
        case .increasedBy(let amount), .decreasedBy(let amount):
            switch amount.number {
            case .integer(let value): return value != 0
            case .floatingPoint: return !amount.matches(0)
            }
        default: return false
        }
    }

    private static func equal(_ new: ScanNumber, _ bits: UInt64, _ value: ScanValue, width: Int, type: ScanValueType) -> Bool {
        if case .floatingPoint(let candidate) = new { return value.matches(candidate) }
        if type == .anyInt {
            // Any width: compare bit patterns, so -5 matches 0xFB at width 1.
            guard value.widths.contains(width) else { return false }
            let bytes = value.integerBytes(width: width)
            // integerBytes are in memory order already; bits hold memory bytes first-lowest.
            var expected: UInt64 = 0
            for (index, byte) in bytes.enumerated() { expected |= UInt64(byte) << (8 * UInt64(index)) }
            return expected == bits
        }
        return new.compare(value.number) == 0
    }

    private static func same(_ difference: ScanNumber, _ amount: ScanValue) -> Bool {
        switch difference {
        case .integer: return difference.compare(amount.number) == 0
        case .floatingPoint(let d):
            guard case .floatingPoint = amount.number else { return difference.compare(amount.number) == 0 }
            return amount.matches(d)
        }
    }
}

extension Scanner {
    /// Narrows `previous` to the matches whose value now passes `predicate`, reading every match
    /// again with batched `process_vm_readv(2)` (``ReadBatch``, up to 4096 matches per round).
    /// A spilled set is read back in order and the result spills past ``ScanOptions/spillThreshold``,
    /// so memory stays bounded whatever the set's size.
    /// Matches that can no longer be read are dropped and their ranges listed as skipped.
    ///
    /// A set of byte patterns or strings is narrowed by its bytes: ``RescanPredicate/changed`` and
    /// ``RescanPredicate/unchanged`` compare all pattern-length bytes (by digest) with those found,
    /// ``RescanPredicate/matches(_:)`` tests a pattern there (the set's own, or a new one, whose
    /// length the result then has). An interrupted rescan's set is marked ``MatchSet/isPartial``,
    /// and a partial input gives a partial result.
    ///
    /// - Throws: `.invalidArguments` when `previous` belongs to another process (pid or start
    ///   time differ), for a value test on byte patterns or a pattern test on values;
    ///   `.badState` / `.execed` when the process goes away; `.io` when a spill file cannot be
    ///   written or read.
    public func rescan(_ previous: MatchSet, where predicate: RescanPredicate,
                       progress: ((ScanProgress) -> Void)? = nil,
                       cancellation: Cancellation = .never) throws(ProcessMemoryError) -> ScanResult {
        let clock = ContinuousClock.now
        try checkOwner(pid: previous.pid, startTime: previous.processStartTime)
        guard case .values(let type, let order) = previous.content else {
            return try rescanBytes(previous, where: predicate, progress: progress, cancellation: cancellation, clock: clock)
        }
        if case .matches = predicate {
            throw ProcessMemoryError(.invalidArguments, pid: handle.pid,
                                     message: "matching a pattern applies to sets of byte patterns and strings; this set holds values (test them with equal)")
        }
        var next = MatchSet(pid: previous.pid, processStartTime: previous.processStartTime, content: previous.content)
        next.spillPolicy = options.spillPolicy
        next.isPartial = previous.isPartial
        var skipped: [SkippedRange] = []
        let batch = ReadBatch(capacity: 4096, bytes: 4096 * 8)
        var index = 0
        var interrupted = false
        var scannedRegions = Set<Int>()
        var bytesRead: UInt64 = 0
        var lastRegion = -1
        while index < previous.count {
            batch.removeAll()
            let end = min(previous.count, index + 4096)
            // Each match fetched once per round (a spilled set reads it back from its file).
            let round = (index..<end).map { previous[$0] }
            for match in round { batch.add(address: match.address, count: match.width) }
            try handle.read(batch)
            for (slot, match) in round.enumerated() {
                let i = index + slot
                guard batch.outcome(slot) == .ok, let now = Self.narrowLoad(batch, slot, match.width) else {
                    let reason = batch.error(slot) ?? ProcessMemoryError(.io, pid: handle.pid, address: match.address, message: "the match could not be read")
                    if reason.code == .badState || reason.code == .execed { throw reason }
                    skipped.append(SkippedRange(start: match.address, end: match.address + UInt64(match.width),
                                                path: previous.region(ofMatch: i)?.path, reason: reason))
                    continue
                }
                let mask: UInt64 = match.width >= 8 ? .max : (1 << UInt64(match.width * 8)) - 1
                let bits = now & mask
                bytesRead += UInt64(match.width)
                guard predicate.accepts(oldBits: match.bits, newBits: bits, width: match.width, type: type, order: order) else { continue }
                // Matches come in address order: the region of the last kept match usually holds this one too.
                if lastRegion < 0 || !(previous.regions[lastRegion].start <= match.address && match.address < previous.regions[lastRegion].end) {
                    lastRegion = previous.regionIndex(containing: match.address) ?? -1
                    if lastRegion >= 0 { scannedRegions.insert(lastRegion) }
                }
                if lastRegion >= 0 {
                    next.append(address: match.address, width: match.width, bits: bits, region: previous.regions[lastRegion])
                }
            }
            index = end
            if previous.isSpilled || next.spillFailed {
                try previous.checkSpill()
                try next.checkSpill()
            }
            progress?(ScanProgress(bytesDone: UInt64(index), bytesTotal: UInt64(previous.count), matches: next.count))
            if cancellation.isCancelled {
                interrupted = index < previous.count
                break
            }
        }
        return Self.finish(next, regionsScanned: scannedRegions.count, bytesRead: bytesRead, skipped: skipped,
                           interrupted: interrupted, since: clock)
    }

    /// Narrows a set of byte-pattern or string matches: `changed`/`unchanged` compare the digest of
    /// the pattern-length bytes now at each match with the one saved; `matches(p)` tests `p` there
    /// (the result then holds `p` and its length).
    private func rescanBytes(_ previous: MatchSet, where predicate: RescanPredicate,
                             progress: ((ScanProgress) -> Void)?, cancellation: Cancellation, clock: ContinuousClock.Instant) throws(ProcessMemoryError) -> ScanResult {
        guard case .bytes(let oldLength) = previous.content else { throw .invalid("not a byte-pattern set", pid: handle.pid) }
        var pattern: BytePattern?
        switch predicate {
        case .changed, .unchanged: break
        case .matches(let given): pattern = given
        default:
            throw ProcessMemoryError(.invalidArguments, pid: handle.pid,
                                     message: "this match set holds byte patterns or strings, which have no value to compare: test them with changed, unchanged or a pattern")
        }
        let length = pattern?.count ?? oldLength
        var next = MatchSet(pid: previous.pid, processStartTime: previous.processStartTime, content: .bytes(length: length))
        next.spillPolicy = options.spillPolicy
        next.pattern = pattern ?? previous.pattern
        next.isPartial = previous.isPartial
        var skipped: [SkippedRange] = []
        // Up to 4096 matches or 4 MiB per round.
        let perRound = max(1, min(4096, (4 << 20) / max(1, length)))
        let batch = ReadBatch(capacity: perRound, bytes: perRound * length)
        var index = 0
        var interrupted = false
        var scannedRegions = Set<Int>()
        var bytesRead: UInt64 = 0
        while index < previous.count {
            batch.removeAll()
            let end = min(previous.count, index + perRound)
            for i in index..<end { batch.add(address: previous[i].address, count: length) }
            try handle.read(batch)
            for (slot, i) in (index..<end).enumerated() {
                let match = previous[i]
                let kept: (bits: UInt64, digest: UInt64, passes: Bool)? = batch.withBytes(slot) { raw in
                    guard batch.outcome(slot) == .ok, raw.count >= length, let base = raw.baseAddress else { return nil }
                    let digest = MatchSet.digest(UnsafeRawBufferPointer(rebasing: raw[0..<length]))
                    let passes: Bool
                    switch predicate {
                    case .changed: passes = digest != match.digest
                    case .unchanged: passes = digest == match.digest
                    default: passes = pattern?.matches(base, at: 0) ?? false
                    }
                    return (ChunkMatcher.bits(base, 0, min(length, 8)), digest, passes)
                }
                guard let kept else {
                    let reason = batch.error(slot) ?? ProcessMemoryError(.io, pid: handle.pid, address: match.address, message: "the match could not be read")
                    if reason.code == .badState || reason.code == .execed { throw reason }
                    skipped.append(SkippedRange(start: match.address, end: match.address + UInt64(length),
                                                path: previous.region(ofMatch: i)?.path, reason: reason))
                    continue
                }
                bytesRead += UInt64(length)
                if kept.passes, let regionIndex = previous.regionIndex(containing: match.address) {
                    scannedRegions.insert(regionIndex)
                    next.append(address: match.address, width: min(length, 8), bits: kept.bits,
                                region: previous.regions[regionIndex], digest: kept.digest)
                }
            }
            index = end
            if previous.isSpilled || next.spillFailed {
                try previous.checkSpill()
                try next.checkSpill()
            }
            progress?(ScanProgress(bytesDone: UInt64(index), bytesTotal: UInt64(previous.count), matches: next.count))
            if cancellation.isCancelled {
                interrupted = index < previous.count
                break
            }
        }
        return Self.finish(next, regionsScanned: scannedRegions.count, bytesRead: bytesRead, skipped: skipped,
                           interrupted: interrupted, since: clock)
    }

    /// The result of a rescan: empty regions dropped, marked partial when interrupted.
    private static func finish(_ set: MatchSet, regionsScanned: Int, bytesRead: UInt64, skipped: [SkippedRange],
                               interrupted: Bool, since clock: ContinuousClock.Instant) -> ScanResult {
        var next = set
        next.dropEmptyRegions()
        if interrupted { next.isPartial = true }
        let elapsed = ContinuousClock.now - clock
        return ScanResult(matches: next, regionsScanned: regionsScanned, bytesScanned: bytesRead,
                          skipped: skipped, truncated: false, interrupted: interrupted,
                          elapsed: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// A value narrower than 8 bytes, first byte lowest.
    static func narrowLoad(_ batch: ReadBatch, _ slot: Int, _ width: Int) -> UInt64? {
        batch.withBytes(slot) { raw in
            guard raw.count >= width, let base = raw.baseAddress else { return nil }
            return ChunkMatcher.bits(base, 0, width)
        }
    }

    /// Refuses a saved set or snapshot taken from another process.
    func checkOwner(pid: Int32, startTime: UInt64) throws(ProcessMemoryError) {
        guard pid == handle.pid else {
            throw ProcessMemoryError(.invalidArguments, pid: handle.pid,
                                     message: "the saved file belongs to pid \(pid), not \(handle.pid)")
        }
        let now = try handle.processStartTime()
        guard now == startTime else {
            throw ProcessMemoryError(.invalidArguments, pid: handle.pid,
                                     message: "the saved file belongs to an earlier process with pid \(pid) (start time \(startTime), now \(now)); the pid was reused")
        }
    }
}
