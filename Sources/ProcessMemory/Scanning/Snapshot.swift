import Glibc

/// The unknown-initial-value search: snapshot the selected regions to a file on disk, then compare
/// the live process against it.
///
/// The target is never held in RAM: regions stream through ``Scanner``'s two buffers straight into
/// the file, all-zero pages are stored as one byte, and a comparison reads the file page by page
/// alongside the live memory. Values are compared at aligned offsets of the snapshot's type.
extension Scanner {
    /// Writes a snapshot of the selected regions to `path` (created or truncated, mode 0600).
    ///
    /// - Returns: a result with no matches whose counters say what was saved and skipped.
    /// - Throws: `.invalidArguments` for `any-int` (a snapshot needs one width), `.io` when the
    ///   file cannot be written, `.badState`/`.execed` when the process goes away.
    ///
    /// The corresponding C calls are `process_vm_readv(2)`, `open(2)` and `write(2)`.
    public func snapshot(as type: ScanValueType, byteOrder: ScanByteOrder = .little, to path: String,
                         progress: ((ScanProgress) -> Bool)? = nil) throws(ProcessMemoryError) -> ScanResult {
        let clock = ContinuousClock.now
        guard type.width != nil else {
            throw .invalid("a snapshot needs a value type of one width, not any-int", pid: handle.pid)
        }
        let page = Int(AddressSpace.pageSize)
        // Whole pages: a region clipped to an address range is widened to its pages, which lie
        // inside the mapping (mappings are page-aligned).
        let regions = try selectedRegions().map { region -> MemoryRegion in
            var whole = region
            whole.start = AddressSpace.pageStart(region.start)
            whole.end = (region.end + UInt64(page) - 1) / UInt64(page) * UInt64(page)
            return whole
        }
        let header = SnapshotFileFormat.Header(type: type, byteOrder: byteOrder, pid: handle.pid,
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
        let stream = RegionStream(handle: handle, regions: regions, chunkSize: options.chunkSize, overlap: 0)
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
                    skipped.append(SkippedRange(start: from, end: region.end, path: region.path, reason: stop))
                    for _ in 0..<Int((region.end - from) / UInt64(page)) { try file.write(tag: .unreadable, &checksum) }
                    done += region.end - from
                }
            } catch {
                writeFailure = error
                return false
            }
            done += UInt64(chunk.ownCount)
            if let progress, !progress(ScanProgress(bytesDone: done, bytesTotal: total, matches: 0)) {
                interrupted = true
                return false
            }
            return true
        }
        if let fatal { throw fatal }
        if let writeFailure { throw writeFailure }
        if interrupted {
            throw ProcessMemoryError(.io, pid: handle.pid, message: "the snapshot was interrupted; \(path) is incomplete")
        }
        try file.write(Self.littleEndian(checksum.value))
        try file.finish()
        let elapsed = ContinuousClock.now - clock
        return ScanResult(matches: MatchSet(pid: handle.pid, processStartTime: header.processStartTime, content: .values(type, byteOrder)),
                          regionsScanned: scanned.count, bytesScanned: done, skipped: skipped, truncated: false,
                          interrupted: false,
                          elapsed: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// Compares the live process with the snapshot at `path`: every aligned value whose current
    /// value passes `predicate` against the snapshot's becomes a match (up to the match limit).
    ///
    /// - Throws: `.invalidArguments` for a file that is not a snapshot of this process, is corrupt
    ///   or truncated (checked by checksums, the last one at the end, when the result is discarded).
    public func compare(snapshotAt path: String, where predicate: RescanPredicate,
                        progress: ((ScanProgress) -> Bool)? = nil) throws(ProcessMemoryError) -> ScanResult {
        let clock = ContinuousClock.now
        let input = try ScanFileInput(path: path)
        defer { input.close() }
        let header = try input.snapshotHeader()
        try checkOwner(pid: header.pid, startTime: header.processStartTime)
        let page = header.pageSize
        let width = header.type.width ?? 4
        let regions = header.regions.map {
            MemoryRegion(start: $0.start, end: $0.end, permissions: $0.permissions, isShared: false, path: $0.path)
        }
        var set = MatchSet(pid: header.pid, processStartTime: header.processStartTime, content: .values(header.type, header.byteOrder))
        var checksum = ScanChecksum()
        var position = (region: 0, address: regions.first?.start ?? 0)
        var failure: ProcessMemoryError?
        var skipped: [SkippedRange] = []
        var truncated = false
        var interrupted = false
        var done: UInt64 = 0
        let limit = options.matchLimit
        let old = UnsafeMutableRawBufferPointer.allocate(byteCount: page, alignment: 64)
        defer { old.deallocate() }
        let total = regions.reduce(UInt64(0)) { $0 + $1.size }

        /// Reads the next page record into `old`; false when it was unreadable.
        func nextPage() throws(ProcessMemoryError) -> Bool {
            switch try input.tag(&checksum) {
            case .zero:
                old.initializeMemory(as: UInt8.self, repeating: 0)
                return true
            case .data:
                try input.read(into: old, &checksum)
                return true
            case .unreadable:
                return false
            }
        }
        /// Skips page records up to (region, address).
        func skip(to region: Int, _ address: UInt64) throws(ProcessMemoryError) {
            while position.region < region || (position.region == region && position.address < address) {
                if position.region >= regions.count { return }
                if position.address >= regions[position.region].end {
                    position.region += 1
                    position.address = position.region < regions.count ? regions[position.region].start : 0
                    continue
                }
                _ = try nextPage()
                position.address += UInt64(page)
            }
        }

        let stream = RegionStream(handle: handle, regions: regions, chunkSize: options.chunkSize, overlap: 0)
        stream.run { chunk in
            let region = regions[chunk.regionIndex]
            let info = MatchSet.Region(region)
            do throws(ProcessMemoryError) {
                try skip(to: chunk.regionIndex, chunk.address)
                var offset = 0
                while offset + page <= chunk.ownCount {
                    let valid = try nextPage()
                    position.address += UInt64(page)
                    if valid, !truncated {
                        guard let base = chunk.bytes.baseAddress, let oldBase = old.baseAddress else { break }
                        var element = 0
                        while element + width <= page {
                            let newBits = ChunkMatcher.bits(base, offset + element, width)
                            let oldBits = ChunkMatcher.bits(oldBase, element, width)
                            if predicate.accepts(oldBits: oldBits, newBits: newBits, width: width, type: header.type, order: header.byteOrder) {
                                guard set.count < limit else { truncated = true; break }
                                set.append(address: chunk.address + UInt64(offset + element), width: width, bits: newBits, region: info)
                            }
                            element += width
                        }
                    }
                    offset += page
                }
            } catch {
                failure = error
                return false
            }
            done += UInt64(chunk.ownCount)
            if let stop = chunk.stop {
                if stop.code == .badState || stop.code == .execed || stop.code == .badHandle { failure = stop; return false }
                let from = chunk.address + UInt64(chunk.ownCount)
                skipped.append(SkippedRange(start: from, end: region.end, path: region.path, reason: stop))
                done += region.end - from
            }
            if let progress, !progress(ScanProgress(bytesDone: done, bytesTotal: total, matches: set.count)) {
                interrupted = true
                return false
            }
            return !truncated
        }
        if let failure { throw failure }
        if !interrupted && !truncated {
            try skip(to: regions.count, 0)
            try input.verifyTrailer(checksum.value)
        }
        set.dropEmptyRegions()
        let elapsed = ContinuousClock.now - clock
        return ScanResult(matches: set, regionsScanned: regions.count - Set(skipped.map(\.start)).count, bytesScanned: done,
                          skipped: skipped, truncated: truncated, interrupted: interrupted,
                          elapsed: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

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
