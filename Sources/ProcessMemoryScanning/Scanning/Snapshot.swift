import Glibc
import ProcessMemoryCore

/// The unknown-initial-value search: snapshot the selected regions to a file on disk, then compare
/// the live process against it.
///
/// The target is never held in RAM: regions stream through ``Scanner``'s two buffers straight into
/// the file, all-zero pages are stored as one byte, and a comparison reads the file page by page
/// alongside the live memory. The file holds pages, not values, so what a comparison looks at is
/// its own choice: one type's width or every integer width (any-int, like scanmem's `int`), at
/// aligned offsets or at every byte offset (values that cross a page boundary included).
extension Scanner {
    /// Writes a snapshot of the selected regions to `path` (mode 0600), under a temporary name
    /// renamed over `path` when written, as ``MatchSet/save(to:)`` does; with `keepingGenerations`
    /// above 0, a file it replaces is kept as `path.1` (``MatchFileGenerations``).
    ///
    /// `type`, `byteOrder` and ``ScanOptions/aligned`` are recorded as the defaults of later
    /// comparisons (``compare(snapshotAt:where:as:byteOrder:aligned:progress:cancellation:)`` may override them).
    ///
    /// When `cancellation` is cancelled (Ctrl-C) the snapshot stops cleanly: the file is closed with an
    /// end record after the pages taken so far and its checksum, so it is valid and marked partial
    /// (a comparison against it covers those pages only and is marked partial too), and the result
    /// is ``ScanResult/interrupted``.
    ///
    /// - Returns: a result with no matches whose counters say what was saved and skipped.
    /// - Throws: `.io` when the file cannot be written, `.badState`/`.execed` when the process goes away.
    ///
    /// The corresponding C calls are `process_vm_readv(2)`, `openat(2)`, `pwrite(2)` and `renameat(2)`.
    public func snapshot(as type: ScanValueType, byteOrder: ScanByteOrder = .little, to path: String,
                         keepingGenerations: Int = 0,
                         progress: ((ScanProgress) -> Void)? = nil,
                         cancellation: Cancellation = .never) throws(ProcessMemoryError) -> ScanResult {
        let clock = ContinuousClock.now
        let page = Int(AddressSpace.pageSize)
        // Whole pages: a region clipped to an address range is widened to its pages, which lie
        // inside the mapping (mappings are page-aligned).
        let regions = try selectedRegions().map { region -> MemoryRegion in
            var whole = region
            whole.start = AddressSpace.pageStart(region.start)
            whole.end = (region.end + UInt64(page) - 1) / UInt64(page) * UInt64(page)
            return whole
        }
        let header = SnapshotFileFormat.Header(type: type, byteOrder: byteOrder, unaligned: !options.aligned, pid: handle.pid,
                                               processStartTime: try handle.processStartTime(), pageSize: page,
                                               regions: regions.map(MatchSet.Region.init))
        let file = try ScanFileOutput(path: path)
        defer { file.close() }
        try file.write(SnapshotFileFormat.encode(header))
        var checksum = ScanChecksum()
        var writeFailure: ProcessMemoryError?
        var fatal: ProcessMemoryError?
        var skipped: [SkippedRange] = []
        var scanned = Set<Int>()
        var done: UInt64 = 0
        var interrupted = false
        let total = regions.reduce(UInt64(0)) { $0 + $1.size }
        let stream = RegionStream(handle: handle, regions: regions, chunkSize: Self.pageMultiple(options.chunkSize, page), overlap: 0)
        stream.run { chunk in
            let region = regions[chunk.regionIndex]
            if chunk.count > 0 { scanned.insert(chunk.regionIndex) }
            do throws(ProcessMemoryError) {
                var offset = 0
                while offset + page <= chunk.ownCount {
                    let bytes = UnsafeRawBufferPointer(rebasing: chunk.bytes[offset..<(offset + page)])
                    if Self.isZero(bytes) {
                        try file.write(tag: .zero, &checksum)
                    } else {
                        try file.write(tag: .data, &checksum)
                        try file.write(bytes, &checksum)
                    }
                    offset += page
                }
                if let stop = chunk.stop {
                    if stop.code == .badState || stop.code == .execed || stop.code == .badHandle { fatal = stop; return false }
                    let from = chunk.address + UInt64(offset)
                    let until = max(from, min(chunk.resumeAt, region.end))
                    skipped.append(SkippedRange(start: from, end: until, path: region.path, reason: stop))
                    for _ in 0..<Int((until - from) / UInt64(page)) { try file.write(tag: .unreadable, &checksum) }
                    done += until - from
                }
            } catch {
                writeFailure = error
                return false
            }
            done += UInt64(chunk.ownCount)
            progress?(ScanProgress(bytesDone: done, bytesTotal: total, matches: 0))
            if cancellation.isCancelled {
                interrupted = true
                return false
            }
            return true
        }
        if let fatal { throw fatal }
        if let writeFailure { throw writeFailure }
        // Interrupted: the pages written so far stay, an end record says the rest were not taken,
        // and the checksum closes the file as usual, so it is a valid, partial snapshot.
        if interrupted { try file.write(tag: .end, &checksum) }
        try file.write(Self.littleEndian(checksum.value))
        try file.finish(beforeCommit: { () throws(ProcessMemoryError) in
            try MatchFileGenerations(path: path, limit: keepingGenerations).shift()
        })
        let elapsed = ContinuousClock.now - clock
        var empty = MatchSet(pid: handle.pid, processStartTime: header.processStartTime, content: .values(type, byteOrder))
        empty.isPartial = interrupted
        return ScanResult(matches: empty, regionsScanned: scanned.count, bytesScanned: done, skipped: skipped, truncated: false,
                          interrupted: interrupted,
                          elapsed: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// Compares the live process with the snapshot at `path`: every value whose current value
    /// passes `predicate` against the snapshot's becomes a match.
    ///
    /// `type`, `byteOrder` and `aligned` default to what the snapshot recorded. With
    /// ``ScanValueType/anyInt`` a match is an address and a width (1, 2, 4 or 8) for which the test
    /// holds, and one address may match at several widths; integers of any-int compare as unsigned
    /// (``RescanPredicate/equal(_:)`` matches a negative value's bit pattern). Aligned means each
    /// width at multiples of itself; unaligned means every byte offset, values that cross a page
    /// boundary included (not a region boundary, nor an unreadable page).
    ///
    /// Without `output`, every match is kept (spilling to a temporary file past
    /// ``ScanOptions/spillThreshold``), up to an explicit ``ScanOptions/matchLimit`` (then the result
    /// is ``ScanResult/truncated``). With `output` there is no cap: the first
    /// ``ScanOptions/inMemoryMatchLimit`` matches are kept in memory, and when there are more, the
    /// comparison is saved to `output` as a narrowed snapshot instead of a list: the pages that hold
    /// matches, as they are now, with a bitmap of the values still matching (at most 4 bits per byte
    /// of memory), which later comparisons narrow further like a snapshot. The result then says
    /// where (``ScanResult/narrowedTo``) and how many matches there are (``ScanResult/matchCount``);
    /// ``ScanResult/matches`` holds the first ones. A narrowed snapshot compares the type, byte order
    /// and alignment it was narrowed with; others are refused. The save keeps the file it replaces
    /// as a generation (``MatchFileGenerations``); an interrupted comparison saves only when
    /// `keepPartial`.
    ///
    /// Memory stays bounded: two live chunks, one chunk of snapshot pages and two chunks' bitmaps.
    /// Against a partial snapshot (interrupted while taken) only the pages it holds are compared, and
    /// the result's set is marked ``MatchSet/isPartial``.
    ///
    /// The corresponding C calls are `process_vm_readv(2)` for the live memory, `read(2)` for the
    /// file, and `openat(2)`, `pwrite(2)`, `fsync(2)`, `renameat(2)` for `output`.
    ///
    /// - Throws: `.invalidArguments` for a file that is not a snapshot of this process, is corrupt
    ///   or truncated (checked by checksums, the last one at the end, when the result is discarded),
    ///   for ``RescanPredicate/matches(_:)``, which applies to byte patterns only, or for another
    ///   type than a narrowed snapshot's.
    public func compare(snapshotAt path: String, where predicate: RescanPredicate,
                        as type: ScanValueType? = nil, byteOrder: ScanByteOrder? = nil, aligned: Bool? = nil,
                        output: MatchFileGenerations? = nil, keepPartial: Bool = true,
                        progress: ((ScanProgress) -> Void)? = nil,
                        cancellation: Cancellation = .never) throws(ProcessMemoryError) -> ScanResult {
        let clock = ContinuousClock.now
        if case .matches = predicate {
            throw .invalid("a snapshot compares values; matching a pattern applies to sets of byte patterns and strings", pid: handle.pid)
        }
        let input = try ScanFileInput(path: path)
        defer { input.close() }
        let header = try input.snapshotHeader()
        try checkOwner(pid: header.pid, startTime: header.processStartTime)
        if header.narrowed && ((type.map { $0 != header.type } ?? false) || (byteOrder.map { $0 != header.byteOrder } ?? false)
                               || (aligned.map { $0 == header.unaligned } ?? false)) {
            throw .invalid("\(path) is a narrowed snapshot of \(header.type.rawValue)\(header.unaligned ? ", unaligned" : "") values: it compares those only",
                           pid: handle.pid)
        }
        let type = type ?? header.type
        let order = byteOrder ?? header.byteOrder
        let aligned = aligned ?? !header.unaligned
        let page = header.pageSize
        guard page == Int(AddressSpace.pageSize) else {
            throw .invalid("the snapshot was taken with \(page)-byte pages; this system's are \(AddressSpace.pageSize)", pid: handle.pid)
        }
        // The widths compared: the type's, or for any-int every width (only those that can hold
        // the value, for an equality test). The bitmap has a plane for each of the type's widths.
        let planeWidths = type.width.map { [$0] } ?? [1, 2, 4, 8]
        var widths = planeWidths
        if type == .anyInt, case .equal(let value) = predicate { widths = widths.filter(value.widths.contains) }
        let planeOf = widths.map { width in planeWidths.firstIndex(of: width) ?? 0 }
        let maxWidth = widths.last ?? 1
        let step = aligned && widths.count == 1 ? maxWidth : 1
        let overlap = aligned ? 0 : maxWidth - 1
        let skipsEqualBytes = predicate.failsOnEqualBytes
        // An equality test needs no old value: the live chunk is searched as a first scan would
        // (memchr on the value's bytes), then matches on pages the snapshot lacks are dropped.
        var equality: ChunkMatcher?
        if case .equal(let value) = predicate {
            let retyped = ScanValue(type: type, byteOrder: order, number: value.number, tolerance: value.tolerance)
            equality = ChunkMatcher(query: .value(retyped), aligned: aligned)
        }
        let regions = header.regions.map {
            MemoryRegion(start: $0.start, end: $0.end, permissions: $0.permissions, isShared: false, path: $0.path)
        }
        var set = MatchSet(pid: header.pid, processStartTime: header.processStartTime, content: .values(type, order))
        set.spillPolicy = options.spillPolicy
        let pages = SnapshotPageReader(input: input, regions: regions, pageSize: page, narrowed: header.narrowed, planes: planeWidths.count)
        var failure: ProcessMemoryError?
        var skipped: [SkippedRange] = []
        var truncated = false
        var interrupted = false
        var done: UInt64 = 0
        let limit = output == nil ? options.matchLimit : min(options.matchLimit, options.inMemoryMatchLimit)
        var count = 0
        let chunkSize = Self.pageMultiple(options.chunkSize, page)
        let pagesPerChunk = chunkSize / page
        // The snapshot's pages for one chunk and the page after it (values crossing into it).
        let old = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize + page, alignment: 64)
        defer { old.deallocate() }
        var valid = [Bool](repeating: false, count: pagesPerChunk + 1)
        let before = CandidateMasks(pages: pagesPerChunk + 1, pageSize: page, widths: planeWidths)
        let after = CandidateMasks(pages: pagesPerChunk, pageSize: page, widths: planeWidths)
        // Candidates of a page that is all candidates (every width at every offset it is compared at).
        let perFullPage = widths.reduce(0) { $0 + (aligned ? page / $1 : page) }
        var narrowedHeader = header
        (narrowedHeader.type, narrowedHeader.byteOrder, narrowedHeader.unaligned, narrowedHeader.narrowed) = (type, order, !aligned, true)
        let writer = try output.map { (output) throws(ProcessMemoryError) in try NarrowedSnapshotWriter(path: output.path, header: narrowedHeader) }
        defer { writer?.discard() }
        let total = regions.reduce(UInt64(0)) { $0 + $1.size }

        let stream = RegionStream(handle: handle, regions: regions, chunkSize: chunkSize, overlap: overlap)
        stream.run { chunk in
            let region = regions[chunk.regionIndex]
            let info = MatchSet.Region(region)
            do throws(ProcessMemoryError) {
                guard let base = chunk.bytes.baseAddress, let oldBase = old.baseAddress else { return false }
                let ownPages = chunk.ownCount / page
                // The page after the chunk's own part, when live bytes of it were read.
                let loaded = ownPages + (chunk.count > ownPages * page ? 1 : 0)
                for index in 0..<loaded {
                    valid[index] = try pages.load(region: chunk.regionIndex, address: chunk.address + UInt64(index * page),
                                                  into: oldBase + index * page, keep: index == ownPages, masks: before, maskPage: index)
                }
                for index in 0..<ownPages { after.setState(index, .bits) }
                /// Records a match; false when the in-memory limit stops the comparison.
                func record(_ offset: Int, _ width: Int, _ plane: Int, _ bits: UInt64) -> Bool {
                    if set.count < limit {
                        set.append(address: chunk.address + UInt64(offset), width: width, bits: bits, region: info)
                    } else if writer == nil {
                        truncated = true
                        return false
                    }
                    after.insert(offset / page, plane, offset % page)
                    count += 1
                    return true
                }
                if let equality {
                    let own = ownPages * page
                    let readable = min(chunk.count, loaded * page)
                    // In windows of 64 KiB: with several widths (any-int) the matcher gathers a
                    // window's matches before sorting them, so a value that is everywhere (0)
                    // costs a window's worth of memory, not a chunk's.
                    var window = 0
                    var going = true
                    while going && window < own {
                        let ownHere = min(64 << 10, own - window)
                        let end = min(readable, window + ownHere + maxWidth - 1)
                        equality.forEachMatch(in: UnsafeRawBufferPointer(rebasing: chunk.bytes[window..<end]), own: ownHere,
                                              address: chunk.address + UInt64(window)) { relative, width, bits in
                            let offset = window + relative
                            for index in (offset / page)...((offset + width - 1) / page) where !valid[index] { return true }
                            guard let plane = planeWidths.firstIndex(of: width), before.contains(offset / page, plane, offset % page) else { return true }
                            going = record(offset, width, plane, bits)
                            return going
                        }
                        window += ownHere
                    }
                }
                var pageIndex = 0
                while equality == nil && pageIndex < ownPages && !truncated {
                    defer { pageIndex += 1 }
                    guard valid[pageIndex], before.state(pageIndex) != .none else { continue }
                    let pageStart = pageIndex * page
                    // Bytes readable in both: this page, and the start of the next if it is valid too.
                    var available = pageStart + page
                    if pageIndex + 1 < loaded && valid[pageIndex + 1] { available = min(chunk.count, available + overlap) }
                    let equal = memcmp(base + pageStart, oldBase + pageStart, available - pageStart) == 0
                    if skipsEqualBytes && equal { continue }
                    // Unchanged bytes, every value readable, matches beyond those kept in memory:
                    // the page's candidates carry over as they are, without testing each value.
                    if case .unchanged = predicate, equal, available == pageStart + page + overlap, set.count >= limit, writer != nil {
                        after.copy(pageIndex, from: before, pageIndex)
                        count += before.state(pageIndex) == .all ? perFullPage : before.population(pageIndex)
                        continue
                    }
                    let restricted = before.state(pageIndex) == .bits
                    var offset = pageStart
                    let pageEnd = pageStart + page
                    while offset < pageEnd {
                        for (slot, width) in widths.enumerated() {
                            if offset + width > available { break }
                            if aligned && offset % width != 0 { continue }
                            if restricted && !before.contains(pageIndex, planeOf[slot], offset - pageStart) { continue }
                            let newBits = ChunkMatcher.bits(base, offset, width)
                            let oldBits = ChunkMatcher.bits(oldBase, offset, width)
                            if predicate.accepts(oldBits: oldBits, newBits: newBits, width: width, type: type, order: order),
                               !record(offset, width, planeOf[slot], newBits) { break }
                        }
                        if truncated { break }
                        offset += step
                    }
                }
                if let writer {
                    for index in 0..<ownPages {
                        after.normalize(index)
                        try writer.write(region: chunk.regionIndex, address: chunk.address + UInt64(index * page),
                                         bytes: UnsafeRawBufferPointer(rebasing: chunk.bytes[(index * page)..<((index + 1) * page)]),
                                         masks: after, maskPage: index)
                    }
                }
            } catch {
                failure = error
                return false
            }
            done += UInt64(chunk.ownCount)
            if set.spillFailed {
                do throws(ProcessMemoryError) { try set.checkSpill() } catch { failure = error }
                return false
            }
            if let stop = chunk.stop {
                if stop.code == .badState || stop.code == .execed || stop.code == .badHandle { failure = stop; return false }
                let from = chunk.address + UInt64(chunk.ownCount)
                skipped.append(SkippedRange(start: from, end: chunk.resumeAt, path: region.path, reason: stop))
                done += chunk.resumeAt - from
            }
            progress?(ScanProgress(bytesDone: done, bytesTotal: total, matches: count))
            if cancellation.isCancelled {
                interrupted = true
                return false
            }
            return !truncated
        }
        if let failure { throw failure }
        if !interrupted && !truncated {
            try pages.finish()
        }
        // From a snapshot that was itself interrupted (its end record was reached), or stopped early.
        set.isPartial = pages.ended || interrupted || truncated
        set.dropEmptyRegions()
        var narrowedTo: String?
        if let writer, let output, count > set.count, !interrupted || keepPartial {
            try writer.close(complete: !interrupted && !pages.ended)
            try writer.finish(beforeCommit: { () throws(ProcessMemoryError) in try output.shift() })
            narrowedTo = output.path
        }
        let elapsed = ContinuousClock.now - clock
        var result = ScanResult(matches: set, regionsScanned: regions.count - Set(skipped.map(\.start)).count, bytesScanned: done,
                                skipped: skipped, truncated: truncated, interrupted: interrupted,
                                elapsed: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        result.narrowedTo = narrowedTo
        result.matchCount = count
        return result
    }

    /// `size` rounded down to a multiple of `page`, at least one page: snapshot chunks are whole pages.
    static func pageMultiple(_ size: Int, _ page: Int) -> Int { max(page, size / page * page) }

    static func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var index = 0
        while index + 8 <= bytes.count {
            if base.loadUnaligned(fromByteOffset: index, as: UInt64.self) != 0 { return false }
            index += 8
        }
        while index < bytes.count {
            if base.load(fromByteOffset: index, as: UInt8.self) != 0 { return false }
            index += 1
        }
        return true
    }

    static func littleEndian(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }
}
