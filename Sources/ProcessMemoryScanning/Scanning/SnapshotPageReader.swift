import ProcessMemoryCore

/// Reads a snapshot's page records in order, on request: ``load(region:address:into:keep:masks:maskPage:)``
/// skips the records before the page asked for. One page may be kept aside to be asked for again
/// (the page after a chunk, which is the first of the next). For a narrowed snapshot (version 3)
/// each page also has its candidates (``CandidateMasks``); for a plain one every readable page is
/// all candidates.
final class SnapshotPageReader {
    private let input: ScanFileInput
    private let regions: [MemoryRegion]
    private let page: Int
    private let narrowed: Bool
    /// Bytes of one page's candidate bitmap in a narrowed snapshot.
    private let maskBytes: Int
    private var checksum = ScanChecksum()
    /// The page of the next record.
    private var region = 0
    private var address: UInt64
    /// The end record was read: the pages left were not taken (an interrupted snapshot).
    private(set) var ended = false
    private var kept: (region: Int, address: UInt64, valid: Bool, state: CandidateMasks.State)?
    private let keptBytes: UnsafeMutableRawBufferPointer
    private let keptMask: UnsafeMutableRawBufferPointer
    private let discardMask: UnsafeMutableRawBufferPointer

    init(input: ScanFileInput, regions: [MemoryRegion], pageSize: Int, narrowed: Bool = false, planes: Int = 1) {
        self.input = input
        self.regions = regions
        self.page = pageSize
        self.narrowed = narrowed
        maskBytes = planes * pageSize / 8
        self.address = regions.first?.start ?? 0
        keptBytes = UnsafeMutableRawBufferPointer.allocate(byteCount: pageSize, alignment: 64)
        keptMask = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, maskBytes), alignment: 8)
        discardMask = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, maskBytes), alignment: 8)
    }

    deinit {
        keptBytes.deallocate()
        keptMask.deallocate()
        discardMask.deallocate()
    }

    /// Copies the snapshot's page at (`region`, `address`) to `target` (page size bytes) and its
    /// candidates to page `maskPage` of `masks`; false when the page was unreadable, not taken or
    /// (narrowed) holds no data. Pages must be asked for in increasing order.
    func load(region wanted: Int, address wantedAddress: UInt64, into target: UnsafeMutableRawPointer,
              keep: Bool, masks: CandidateMasks? = nil, maskPage: Int = 0) throws(ProcessMemoryError) -> Bool {
        if let kept, kept.region == wanted, kept.address == wantedAddress {
            if let source = keptBytes.baseAddress { target.copyMemory(from: source, byteCount: page) }
            if let masks, maskPage < masks.pages {
                masks.setState(maskPage, kept.state)
                if kept.state == .bits { masks.bytes(maskPage).copyMemory(from: UnsafeRawBufferPointer(rebasing: keptMask[0..<maskBytes])) }
            }
            return kept.valid
        }
        try skip(to: wanted, wantedAddress)
        guard region == wanted, address == wantedAddress else {
            if let masks, maskPage < masks.pages { masks.setState(maskPage, .none) }
            return false
        }
        let maskTarget: UnsafeMutableRawBufferPointer? = (masks.map { maskPage < $0.pages } ?? false) ? masks?.bytes(maskPage) : nil
        let (valid, state) = try next(into: target, mask: keep ? keptMask : maskTarget)
        address += UInt64(page)
        if let masks, maskPage < masks.pages {
            // setState(.bits) clears the bitmap: set the state, then the bits read.
            if state == .bits {
                if keep {
                    masks.setState(maskPage, .bits)
                    masks.bytes(maskPage).copyMemory(from: UnsafeRawBufferPointer(rebasing: keptMask[0..<maskBytes]))
                } else {
                    masks.markBits(maskPage)
                }
            } else {
                masks.setState(maskPage, state)
            }
        }
        if keep {
            if let destination = keptBytes.baseAddress { destination.copyMemory(from: UnsafeRawPointer(target), byteCount: page) }
            kept = (wanted, wantedAddress, valid, state)
        }
        return valid
    }

    /// Reads the rest of the records and checks the trailer's checksum and the end of the file.
    func finish() throws(ProcessMemoryError) {
        try skip(to: regions.count, 0)
        try input.verifyTrailer(checksum.value)
    }

    /// Reads one record into `target` (nil: discard) and its bitmap into `mask` (nil: discard);
    /// (false, none) for a page without data or past the end.
    private func next(into target: UnsafeMutableRawPointer?,
                      mask: UnsafeMutableRawBufferPointer?) throws(ProcessMemoryError) -> (Bool, CandidateMasks.State) {
        if ended { return (false, .none) }
        switch try input.tag(&checksum) {
        case .zero:
            target?.initializeMemory(as: UInt8.self, repeating: 0, count: page)
        case .data:
            try input.read(into: target.map { UnsafeMutableRawBufferPointer(start: $0, count: page) }, count: page, &checksum)
        case .unreadable:
            return (false, .none)
        case .absent:
            guard narrowed else { throw ProcessMemoryError(.invalidArguments, message: "the snapshot holds an invalid page record") }
            return (false, .none)
        case .end:
            ended = true
            return (false, .none)
        }
        guard narrowed else { return (true, .all) }
        let state = try input.maskState(&checksum)
        if state == .bits {
            try input.read(into: mask.map { UnsafeMutableRawBufferPointer(rebasing: $0[0..<maskBytes]) } ?? UnsafeMutableRawBufferPointer(rebasing: discardMask[0..<maskBytes]),
                           count: maskBytes, &checksum)
        }
        return (true, state)
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
            _ = try next(into: nil, mask: nil)
            address += UInt64(page)
        }
    }
}
