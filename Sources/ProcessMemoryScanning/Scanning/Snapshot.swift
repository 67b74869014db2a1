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
    /// renamed over `path` when written, as ``MatchSet/save(to:)`` does.
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
        try file.finish()
        let elapsed = ContinuousClock.now - clock
        var empty = MatchSet(pid: handle.pid, processStartTime: header.processStartTime, content: .values(type, byteOrder))
        empty.isPartial = interrupted
        return ScanResult(matches: empty, regionsScanned: scanned.count, bytesScanned: done, skipped: skipped, truncated: false,
                          interrupted: interrupted,
                          elapsed: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// Compares the live process with the snapshot at `path`: every value whose current value
    /// passes `predicate` against the snapshot's becomes a match (up to the match limit).
    ///
    /// `type`, `byteOrder` and `aligned` default to what the snapshot recorded. With
    /// ``ScanValueType/anyInt`` a match is an address and a width (1, 2, 4 or 8) for which the test
    /// holds, and one address may match at several widths; integers of any-int compare as unsigned
    /// (``RescanPredicate/equal(_:)`` matches a negative value's bit pattern). Aligned means each
    /// width at multiples of itself; unaligned means every byte offset, values that cross a page
    /// boundary included (not a region boundary, nor an unreadable page).
    ///
    /// Memory stays bounded: two live chunks and one chunk of snapshot pages. Against a partial
    /// snapshot (interrupted while taken) only the pages it holds are compared, and the result's
    /// set is marked ``MatchSet/isPartial``.
    ///
    /// The corresponding C calls are `process_vm_readv(2)` for the live memory and `read(2)` for the file.
    ///
    /// - Throws: `.invalidArguments` for a file that is not a snapshot of this process, is corrupt
    ///   or truncated (checked by checksums, the last one at the end, when the result is discarded),
    ///   or for ``RescanPredicate/matches(_:)``, which applies to byte patterns only.
    public func compare(snapshotAt path: String, where predicate: RescanPredicate,
                        as type: ScanValueType? = nil, byteOrder: ScanByteOrder? = nil, aligned: Bool? = nil,
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
        let type = type ?? header.type
        let order = byteOrder ?? header.byteOrder
        let aligned = aligned ?? !header.unaligned
        let page = header.pageSize
        guard page == Int(AddressSpace.pageSize) else {
            throw .invalid("the snapshot was taken with \(page)-byte pages; this system's are \(AddressSpace.pageSize)", pid: handle.pid)
        }
        // The widths compared: the type's, or for any-int every width (only those that can hold
        // the value, for an equality test).
        var widths = type.width.map { [$0] } ?? [1, 2, 4, 8]
        if type == .anyInt, case .equal(let value) = predicate { widths = widths.filter(value.widths.contains) }
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
        let pages = SnapshotPageReader(input: input, regions: regions, pageSize: page)
        var failure: ProcessMemoryError?
        var skipped: [SkippedRange] = []
        var truncated = false
        var interrupted = false
        var done: UInt64 = 0
        let limit = options.matchLimit
        let chunkSize = Self.pageMultiple(options.chunkSize, page)
        // The snapshot's pages for one chunk and the page after it (values crossing into it).
        let old = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize + page, alignment: 64)
        defer { old.deallocate() }
        var valid = [Bool](repeating: false, count: chunkSize / page + 1)
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
                                                  into: oldBase + index * page, keep: index == ownPages)
                }
                if let equality {
                    let own = ownPages * page
                    let readable = min(chunk.count, loaded * page)
                    equality.forEachMatch(in: UnsafeRawBufferPointer(rebasing: chunk.bytes[0..<readable]), own: own,
                                          address: chunk.address) { offset, width, bits in
                        for index in (offset / page)...((offset + width - 1) / page) where !valid[index] { return true }
                        guard set.count < limit else { truncated = true; return false }
                        set.append(address: chunk.address + UInt64(offset), width: width, bits: bits, region: info)
                        return true
                    }
                }
                var pageIndex = 0
                while equality == nil && pageIndex < ownPages && !truncated {
                    defer { pageIndex += 1 }
                    guard valid[pageIndex] else { continue }
                    let pageStart = pageIndex * page
                    // Bytes readable in both: this page, and the start of the next if it is valid too.
                    var available = pageStart + page
                    if pageIndex + 1 < loaded && valid[pageIndex + 1] { available = min(chunk.count, available + overlap) }
                    if skipsEqualBytes && memcmp(base + pageStart, oldBase + pageStart, available - pageStart) == 0 { continue }
                    var offset = pageStart
                    let pageEnd = pageStart + page
                    while offset < pageEnd {
                        for width in widths {
                            if offset + width > available { break }
                            if aligned && offset % width != 0 { continue }
                            let newBits = ChunkMatcher.bits(base, offset, width)
                            let oldBits = ChunkMatcher.bits(oldBase, offset, width)
                            if predicate.accepts(oldBits: oldBits, newBits: newBits, width: width, type: type, order: order) {
                                guard set.count < limit else { truncated = true; break }
                                set.append(address: chunk.address + UInt64(offset), width: width, bits: newBits, region: info)
                            }
                        }
                        if truncated { break }
                        offset += step
                    }
                }
            } catch {
                failure = error
                return false
            }
            done += UInt64(chunk.ownCount)
            if let stop = chunk.stop {
                if stop.code == .badState || stop.code == .execed || stop.code == .badHandle { failure = stop; return false }
                let from = chunk.address + UInt64(chunk.ownCount)
                skipped.append(SkippedRange(start: from, end: chunk.resumeAt, path: region.path, reason: stop))
                done += chunk.resumeAt - from
            }
            progress?(ScanProgress(bytesDone: done, bytesTotal: total, matches: set.count))
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
        let elapsed = ContinuousClock.now - clock
        return ScanResult(matches: set, regionsScanned: regions.count - Set(skipped.map(\.start)).count, bytesScanned: done,
                          skipped: skipped, truncated: truncated, interrupted: interrupted,
                          elapsed: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
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

/// Reads a snapshot's page records in order, on request: ``load(region:address:into:keep:)`` skips
/// the records before the page asked for. One page may be kept aside to be asked for again (the page
/// after a chunk, which is the first of the next).
final class SnapshotPageReader {
    private let input: ScanFileInput
    private let regions: [MemoryRegion]
    private let page: Int
    private var checksum = ScanChecksum()
    /// The page of the next record.
    private var region = 0
    private var address: UInt64
    /// The end record was read: the pages left were not taken (an interrupted snapshot).
    private(set) var ended = false
    private var kept: (region: Int, address: UInt64, valid: Bool)?
    private let keptBytes: UnsafeMutableRawBufferPointer

    init(input: ScanFileInput, regions: [MemoryRegion], pageSize: Int) {
        self.input = input
        self.regions = regions
        self.page = pageSize
        self.address = regions.first?.start ?? 0
        keptBytes = UnsafeMutableRawBufferPointer.allocate(byteCount: pageSize, alignment: 64)
    }

    deinit { keptBytes.deallocate() }

    /// Copies the snapshot's page at (`region`, `address`) to `target` (page size bytes); false when
    /// the page was unreadable or not taken. Pages must be asked for in increasing order.
    func load(region wanted: Int, address wantedAddress: UInt64, into target: UnsafeMutableRawPointer,
              keep: Bool) throws(ProcessMemoryError) -> Bool {
        if let kept, kept.region == wanted, kept.address == wantedAddress {
            if let source = keptBytes.baseAddress { target.copyMemory(from: source, byteCount: page) }
            return kept.valid
        }
        try skip(to: wanted, wantedAddress)
        guard region == wanted, address == wantedAddress else { return false }
        let valid = try next(into: target)
        address += UInt64(page)
        if keep {
            if let destination = keptBytes.baseAddress { destination.copyMemory(from: UnsafeRawPointer(target), byteCount: page) }
            kept = (wanted, wantedAddress, valid)
        }
        return valid
    }

    /// Reads the rest of the records and checks the trailer's checksum and the end of the file.
    func finish() throws(ProcessMemoryError) {
        try skip(to: regions.count, 0)
        try input.verifyTrailer(checksum.value)
    }

    /// Reads one record into `target` (nil: discard); false for an unreadable page or past the end.
    private func next(into target: UnsafeMutableRawPointer?) throws(ProcessMemoryError) -> Bool {
        if ended { return false }
        switch try input.tag(&checksum) {
        case .zero:
            target?.initializeMemory(as: UInt8.self, repeating: 0, count: page)
            return true
        case .data:
            try input.read(into: target.map { UnsafeMutableRawBufferPointer(start: $0, count: page) }, count: page, &checksum)
            return true
        case .unreadable:
            return false
        case .end:
            ended = true
            return false
        }
    }

    /// Discards records up to the page (`wanted`, `wantedAddress`).
    private func skip(to wanted: Int, _ wantedAddress: UInt64) throws(ProcessMemoryError) {
        while region < wanted || (region == wanted && address < wantedAddress) {
            if region >= regions.count { return }
            if address >= regions[region].end {
                region += 1
                address = region < regions.count ? regions[region].start : 0
                continue
            }
            _ = try next(into: nil)
            address += UInt64(page)
        }
    }
}
