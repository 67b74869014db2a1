import ProcessMemoryCore

/// The state of an interactive scan, in the spirit of `scanmem -p PID`: the current match set (or
/// a snapshot awaiting its first comparison), the value type, the scan options, and the earlier
/// generations that ``undo()`` returns to.
///
/// A bare value scans when there is nothing yet and narrows afterwards (``enter(_:cancellation:progress:)``);
/// ``narrow(_:cancellation:progress:)`` applies any ``RescanPredicate``; ``takeSnapshot(cancellation:progress:)``
/// starts an unknown-value search. Every step that changes the state first pushes the old state
/// on the undo stack, kept by ``SessionGenerations`` (small sets in memory, large ones as match
/// files in the session's private directory), so memory stays bounded whatever the scan found.
///
/// Reads go through ``Scanner`` (`process_vm_readv(2)`); ``set(_:matches:mode:)`` writes each
/// match with ``ProcessHandle/writeExactly(_:to:mode:)`` (`pwrite(2)` on `/proc/PID/mem`).
/// Not thread-safe: one thread drives a session (its background jobs are ``ValueJobs``).
public final class ScanSession {
    /// What the session holds now.
    public enum State: Sendable, Hashable {
        /// Nothing yet: a bare value scans, `snapshot` starts an unknown-value search.
        case empty
        /// A snapshot taken with the session's type; the next filter compares against it.
        case snapshot(path: String, type: ScanValueType)
        /// The current matches.
        case matches(MatchSet)
    }

    /// The process scanned (read right; write for ``set(_:matches:mode:)``).
    public let handle: ProcessHandle
    /// How scans read (regions, chunk size, alignment, match limit).
    public var options: ScanOptions
    /// The type the next scan or snapshot looks for. Changing it with ``setType(_:)`` resets the
    /// state (undoable), since matches of one type cannot be narrowed as another.
    public private(set) var type: ScanValueType
    /// The current state.
    public private(set) var state: State = .empty
    private let generations: SessionGenerations

    /// Opens a session on `handle`'s process. Its private directory (mode 0700, a fresh random
    /// name under `temporaryDirectory`, made with `mkdirat(2)`) holds snapshots and large earlier
    /// generations; ``close()`` removes it.
    ///
    /// - Throws: `.accessDenied`, `.io` when the directory cannot be made.
    public init(handle: ProcessHandle, type: ScanValueType = .i32, options: ScanOptions = ScanOptions(),
                temporaryDirectory: String = "/tmp", limits: SessionGenerations.Limits = .init()) throws(ProcessMemoryError) {
        self.handle = handle
        self.type = type
        self.options = options
        self.generations = try SessionGenerations(under: temporaryDirectory, limits: limits)
    }

    /// Removes the private directory and everything in it (`unlinkat(2)`). Idempotent.
    public func close() { generations.close() }

    deinit { generations.close() }

    /// The number of matches now (0 for ``State/empty`` and ``State/snapshot(path:type:)``).
    public var matchCount: Int {
        if case .matches(let set) = state { return set.count }
        return 0
    }

    /// The current matches, if any.
    public var matches: MatchSet? {
        if case .matches(let set) = state { return set }
        return nil
    }

    /// The session's private directory (snapshots, large earlier generations).
    public var directoryPath: String { generations.path }

    /// How many steps ``undo()`` can take back.
    public var undoDepth: Int { generations.depth }

    /// A bare value: scans for it when the session holds nothing, compares a snapshot with it, or
    /// keeps the matches that now equal it.
    public func enter(_ value: ScanValue, cancellation: Cancellation = .never,
                      progress: ((ScanProgress) -> Void)? = nil) throws(ProcessMemoryError) -> ScanResult {
        if case .empty = state {
            let scanner = Scanner(handle: handle, options: options)
            let result = try scanner.scan(.value(value), progress: progress, cancellation: cancellation)
            try replace(with: .matches(result.matches))
            return result
        }
        return try narrow(.equal(value), cancellation: cancellation, progress: progress)
    }

    /// Keeps the matches (or, after a snapshot, the values) that pass `predicate`.
    ///
    /// - Throws: `.invalidArguments` when the session holds nothing yet (scan a value or take a
    ///   snapshot first); what the rescan or comparison throws.
    public func narrow(_ predicate: RescanPredicate, cancellation: Cancellation = .never,
                       progress: ((ScanProgress) -> Void)? = nil) throws(ProcessMemoryError) -> ScanResult {
        let scanner = Scanner(handle: handle, options: options)
        if case .empty = state {
            throw .invalid("there is nothing to narrow yet: enter a value to scan for it, or take a snapshot for an unknown value",
                           pid: handle.pid)
        }
        // The old state goes on the undo stack first, so a large set is written out (and its
        // encoding freed) before the narrowed set is built: at most two sets in memory at once.
        try generations.push(SessionGenerations.Generation(state: state, type: type))
        let result: ScanResult
        do throws(ProcessMemoryError) {
            switch state {
            case .empty: throw .invalid("there is nothing to narrow yet", pid: handle.pid)
            case .snapshot(let path, let type):
                result = try scanner.compare(snapshotAt: path, where: predicate, as: type, progress: progress, cancellation: cancellation)
            case .matches(let set):
                result = try scanner.rescan(set, where: predicate, progress: progress, cancellation: cancellation)
            }
        } catch {
            generations.discardLast()
            throw error
        }
        state = .matches(result.matches)
        return result
    }

    /// Takes a snapshot of the selected regions for an unknown initial value; the next filter
    /// (`changed`, `decreased`, ...) compares against it.
    public func takeSnapshot(cancellation: Cancellation = .never,
                             progress: ((ScanProgress) -> Void)? = nil) throws(ProcessMemoryError) -> ScanResult {
        let path = generations.newSnapshotPath()
        let scanner = Scanner(handle: handle, options: options)
        let result = try scanner.snapshot(as: type, to: path, progress: progress, cancellation: cancellation)
        try replace(with: .snapshot(path: path, type: type))
        return result
    }

    /// Goes back one step; false when there is nothing to undo.
    ///
    /// - Throws: `.io` or `.invalidArguments` when a generation kept on disk cannot be read back.
    public func undo() throws(ProcessMemoryError) -> Bool {
        guard let previous = try generations.pop(spill: options.spillPolicy) else { return false }
        generations.release(state)
        state = previous.state
        type = previous.type
        return true
    }

    /// Forgets the matches (undoable).
    public func reset() throws(ProcessMemoryError) {
        try replace(with: .empty)
    }

    /// Sets the type of the next scan; the state is reset (undoable) when it held anything.
    public func setType(_ newType: ScanValueType) throws(ProcessMemoryError) {
        if case .empty = state {
            type = newType
            return
        }
        try replace(with: .empty)
        type = newType
    }

    /// Removes the matches at `indices` (positions in the current set, as ``MatchSet`` orders
    /// them); undoable.
    ///
    /// - Throws: `.invalidArguments` for an index out of range or when there are no matches.
    public func delete(_ indices: [Int]) throws(ProcessMemoryError) {
        guard case .matches(let set) = state else { throw .invalid("there are no matches to delete", pid: handle.pid) }
        try Self.check(indices, count: set.count, pid: handle.pid)
        try replace(with: .matches(set.removing(Set(indices))))
    }

    /// Writes `text`, as the type of each match, to the matches at `indices` (all when `nil`):
    /// integers by the match's width, floating point as its type. Each write is all or nothing.
    ///
    /// - Returns: per match written, its index and the error if the write failed (an array as long
    ///   as the matches written: for all matches of a large set, prefer ``set(_:matches:mode:each:)``).
    /// - Throws: `.invalidArguments` for a value that does not fit, an index out of range, or no
    ///   value matches; `.accessDenied` when the handle lacks the write right.
    public func set(_ text: String, matches indices: [Int]? = nil,
                    mode: WriteMode = .default) throws(ProcessMemoryError) -> [(index: Int, error: ProcessMemoryError?)] {
        var done: [(index: Int, error: ProcessMemoryError?)] = []
        try set(text, matches: indices, mode: mode) { index, error in done.append((index, error)) }
        return done
    }

    /// ``set(_:matches:mode:)``, calling `each` with every match's index and its write's error (nil:
    /// written) instead of collecting them, so setting every match of a set of any size needs no
    /// memory per match. Each write is `pwrite(2)` on `/proc/PID/mem` (``ProcessHandle/writeExactly(_:to:mode:)``).
    ///
    /// - Throws: as ``set(_:matches:mode:)``; `.io` when a spilled set cannot be read back.
    public func set(_ text: String, matches indices: [Int]? = nil, mode: WriteMode = .default,
                    each: (Int, ProcessMemoryError?) -> Void) throws(ProcessMemoryError) {
        guard case .matches(let set) = state else { throw .invalid("there are no matches to set", pid: handle.pid) }
        guard case .values(let type, let order) = set.content else {
            throw .invalid("these matches are byte patterns; set writes values", pid: handle.pid)
        }
        if let indices { try Self.check(indices, count: set.count, pid: handle.pid) }
        let total = indices?.count ?? set.count
        for position in 0..<total {
            let index = indices?[position] ?? position
            let match = set[index]
            let bytes = try SessionValues.encode(text, type: type, width: match.width, order: order, pid: handle.pid)
            do throws(ProcessMemoryError) {
                try handle.writeExactly(bytes, to: match.address, mode: mode)
                each(index, nil)
            } catch {
                if error.code == .badState || error.code == .execed || error.code == .accessDenied && error.accessDenial == .handleLacksRight {
                    throw error
                }
                each(index, error)
            }
            if set.isSpilled, position % 4096 == 4095 { try set.checkSpill() }
        }
        if set.isSpilled { try set.checkSpill() }
    }

    /// The values now at the matches `range` (read again, one `process_vm_readv(2)` batch).
    ///
    /// - Returns: per match its index, the match and the number now there (`nil`: unreadable).
    public func current(_ range: Range<Int>) throws(ProcessMemoryError) -> [(index: Int, match: MatchSet.Match, now: ScanNumber?)] {
        guard case .matches(let set) = state else { return [] }
        let chosen = range.clamped(to: 0..<set.count)
        guard !chosen.isEmpty else { return [] }
        let batch = ReadBatch(capacity: chosen.count, bytes: chosen.count * 8)
        for index in chosen { batch.add(address: set[index].address, count: min(8, set[index].width)) }
        try handle.read(batch)
        return chosen.enumerated().map { slot, index in
            let match = set[index]
            var now: ScanNumber?
            if batch.outcome(slot) == .ok, case .values(let type, let order) = set.content,
               let bits = Scanner.narrowLoad(batch, slot, min(8, match.width)) {
                now = ScanNumber.decode(bits: bits, width: match.width, type: type, order: order)
            }
            return (index, match, now)
        }
    }

    /// Pointer chains from static data to match `index` (``ProcessHandle/scanPointers(to:options:progress:cancellation:baseNames:)``:
    /// `pread(2)` on `/proc/PID/mem` over the writable regions, then a bounded backward search).
    ///
    /// - Throws: `.invalidArguments` for an index out of range; what the pointer scan throws.
    public func scanPointers(toMatch index: Int, options: PointerScanOptions = PointerScanOptions(),
                             cancellation: Cancellation = .never,
                             baseNames: ((UInt64) -> String?)? = nil) throws(ProcessMemoryError) -> PointerScanResult {
        guard case .matches(let set) = state else { throw .invalid("there are no matches to scan pointers to", pid: handle.pid) }
        try Self.check([index], count: set.count, pid: handle.pid)
        return try handle.scanPointers(to: set[index].address, options: options, cancellation: cancellation, baseNames: baseNames)
    }

    private func replace(with next: State) throws(ProcessMemoryError) {
        try generations.push(SessionGenerations.Generation(state: state, type: type))
        state = next
    }

    static func check(_ indices: [Int], count: Int, pid: Int32) throws(ProcessMemoryError) {
        if let bad = indices.first(where: { $0 < 0 || $0 >= count }) {
            throw .invalid(count == 0 ? "there are no matches" : "there is no match \(bad): matches are numbered 0 ... \(count - 1)", pid: pid)
        }
    }
}

extension MatchSet {
    /// The set without the matches at `indices`.
    func removing(_ indices: Set<Int>) -> MatchSet {
        var kept = MatchSet(like: self)
        kept.pattern = pattern
        kept.isPartial = isPartial
        for index in 0..<count where !indices.contains(index) {
            let match = self[index]
            guard let region = region(ofMatch: index) else { continue }
            kept.append(address: match.address, width: match.width, bits: match.bits, region: region, digest: match.digest)
        }
        return kept
    }
}
