import ProcessMemoryCore

/// Which values of a run of snapshot pages are still candidates: per page, none, all, or a bitmap
/// with one plane per width compared (bit `o` of plane `w`: the value of the `w`-th width that
/// starts at page offset `o`). A narrowed snapshot stores these instead of a list of matches, so a
/// broad filter (any-int, unaligned, unchanged) costs at most 4 bits per byte of memory on disk and
/// one chunk's worth in RAM, whatever the number of matches.
final class CandidateMasks {
    enum State: UInt8 { case none = 0, all = 1, bits = 2 }

    let pageSize: Int
    /// The widths compared, one plane each, in increasing order.
    let widths: [Int]
    let pages: Int
    /// Bytes of one page's bitmap: a plane of `pageSize` bits per width.
    let bytesPerPage: Int
    private(set) var states: [State]
    private let storage: UnsafeMutableRawBufferPointer

    init(pages: Int, pageSize: Int, widths: [Int]) {
        self.pages = pages
        self.pageSize = pageSize
        self.widths = widths
        bytesPerPage = widths.count * pageSize / 8
        states = [State](repeating: .none, count: pages)
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, pages * bytesPerPage), alignment: 8)
    }

    deinit { storage.deallocate() }

    /// The plane of `width`, or nil when it is not compared.
    func plane(_ width: Int) -> Int? { widths.firstIndex(of: width) }

    func state(_ page: Int) -> State { states[page] }

    func setState(_ page: Int, _ state: State) {
        states[page] = state
        if state == .bits, let base = storage.baseAddress {
            (base + page * bytesPerPage).initializeMemory(as: UInt8.self, repeating: 0, count: bytesPerPage)
        }
    }

    /// Sets the state of `page` to `.bits` keeping the bitmap bytes as they are (read into it).
    func markBits(_ page: Int) { states[page] = .bits }

    /// Whether the value of plane `plane` at `offset` of `page` is a candidate.
    @inline(__always)
    func contains(_ page: Int, _ plane: Int, _ offset: Int) -> Bool {
        switch states[page] {
        case .none: return false
        case .all: return true
        case .bits:
            let bit = plane * pageSize + offset
            return storage[page * bytesPerPage + bit >> 3] & (1 << UInt8(bit & 7)) != 0
        }
    }

    /// Marks a candidate (the page must be in state `.bits`).
    @inline(__always)
    func insert(_ page: Int, _ plane: Int, _ offset: Int) {
        let bit = plane * pageSize + offset
        storage[page * bytesPerPage + bit >> 3] |= 1 << UInt8(bit & 7)
    }

    /// The bitmap bytes of `page`.
    func bytes(_ page: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: storage[(page * bytesPerPage)..<((page + 1) * bytesPerPage)])
    }

    /// Copies `page` of `other` (same shape) to `page` here.
    func copy(_ page: Int, from other: CandidateMasks, _ otherPage: Int) {
        states[page] = other.states[otherPage]
        if states[page] == .bits { bytes(page).copyMemory(from: UnsafeRawBufferPointer(other.bytes(otherPage))) }
    }

    /// The number of bits set in `page`'s bitmap (for `.bits`; 0 for `.none`, and for `.all`
    /// the caller knows the count).
    func population(_ page: Int) -> Int {
        guard states[page] == .bits, let base = bytes(page).baseAddress else { return 0 }
        var total = 0
        var index = 0
        while index + 8 <= bytesPerPage {
            total += base.load(fromByteOffset: index, as: UInt64.self).nonzeroBitCount
            index += 8
        }
        return total
    }

    /// Turns a `.bits` page whose bits are all set into `.all`, and one with none into `.none`.
    func normalize(_ page: Int) {
        guard states[page] == .bits, let base = bytes(page).baseAddress else { return }
        var anySet = false
        var allSet = true
        var index = 0
        while index + 8 <= bytesPerPage {
            let word = base.load(fromByteOffset: index, as: UInt64.self)
            if word != 0 { anySet = true }
            if word != .max { allSet = false }
            index += 8
        }
        states[page] = allSet ? .all : (anySet ? .bits : .none)
    }

    /// Whether `page` has a candidate whose value reaches into the next page.
    func crossesIntoNext(_ page: Int) -> Bool {
        guard states[page] != .none, let widest = widths.last, widest > 1 else { return false }
        for (plane, width) in widths.enumerated() where width > 1 {
            for offset in (pageSize - width + 1)..<pageSize where contains(page, plane, offset) { return true }
        }
        return false
    }
}

/// Writes a narrowed snapshot (version 3 of ``SnapshotFileFormat``): per page of the header's
/// regions, in order, the current bytes of the pages that hold candidates (or that a candidate of
/// the page before reaches into) and each page's ``CandidateMasks`` state. Pages are given in
/// order; any page skipped over is recorded as unreadable, so the records always line up.
final class NarrowedSnapshotWriter {
    private let file: ScanFileOutput
    private let regions: [MatchSet.Region]
    private let page: Int
    private var checksum = ScanChecksum()
    private var region = 0
    private var address: UInt64
    /// The page before the next one holds a candidate that reaches into it.
    private var previousCrosses = false

    init(path: String, header: SnapshotFileFormat.Header) throws(ProcessMemoryError) {
        file = try ScanFileOutput(path: path)
        regions = header.regions
        page = header.pageSize
        address = header.regions.first?.start ?? 0
        try file.write(SnapshotFileFormat.encode(header))
    }

    /// Records unreadable pages up to the page at (`wanted`, `wantedAddress`).
    private func fill(to wanted: Int, _ wantedAddress: UInt64) throws(ProcessMemoryError) {
        while region < regions.count && (region < wanted || (region == wanted && address < wantedAddress)) {
            if address >= regions[region].end {
                region += 1
                address = region < regions.count ? regions[region].start : 0
                previousCrosses = false
                continue
            }
            try file.write(tag: .unreadable, &checksum)
            previousCrosses = false
            address += UInt64(page)
        }
        if region < regions.count && address >= regions[region].end {
            region += 1
            address = region < regions.count ? regions[region].start : 0
            previousCrosses = false
        }
    }

    /// Records the page at (`regionIndex`, `pageAddress`): `bytes` (nil: unreadable now) and its
    /// candidates, page `maskPage` of `masks`.
    func write(region regionIndex: Int, address pageAddress: UInt64, bytes: UnsafeRawBufferPointer?,
               masks: CandidateMasks, maskPage: Int) throws(ProcessMemoryError) {
        try fill(to: regionIndex, pageAddress)
        guard region == regionIndex, address == pageAddress else { return }
        defer { address += UInt64(page) }
        guard let bytes else {
            try file.write(tag: .unreadable, &checksum)
            previousCrosses = false
            return
        }
        let state = masks.state(maskPage)
        if state == .none && !previousCrosses {
            try file.write(tag: .absent, &checksum)
            previousCrosses = false
            return
        }
        if Scanner.isZero(bytes) {
            try file.write(tag: .zero, &checksum)
        } else {
            try file.write(tag: .data, &checksum)
            try file.write(bytes, &checksum)
        }
        try file.write(mask: state.rawValue, &checksum)
        if state == .bits { try file.write(UnsafeRawBufferPointer(masks.bytes(maskPage)), &checksum) }
        previousCrosses = masks.crossesIntoNext(maskPage)
    }

    /// Closes the page records: an end record when `complete` is false or pages are left, then the checksum.
    func close(complete: Bool) throws(ProcessMemoryError) {
        if complete { try fill(to: regions.count, 0) }
        if region < regions.count { try file.write(tag: .end, &checksum) }
        try file.write(Scanner.littleEndian(checksum.value))
    }

    /// Renames the file into place (``ScanFileOutput/finish(beforeCommit:)``).
    func finish(beforeCommit: () throws(ProcessMemoryError) -> Void) throws(ProcessMemoryError) {
        try file.finish(beforeCommit: beforeCommit)
    }

    /// Removes the file unless it was finished.
    func discard() { file.close() }
}
