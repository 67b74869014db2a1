import ProcessMemoryCore
// The binary format of saved match sets. Pure (no system calls), so the fuzz harness builds it alone.
//
// Little-endian throughout:
//   header   "PMMATCH\0" | version u16 (2) | content u8 (0 bytes, else ScanValueType code)
//            | byte order u8 (0 little, 1 big) | pattern length u32 | flags u8 (bit 0: partial)
//            | pid i32 | start time u64 | region count u32 | match count u64
//            | FNV-1a 64 of the header so far, u64
//   pattern  byte content only: kind u8 — 0 bytes: pattern length × byte u8, then × mask u8;
//            1 string: options u8 (bit 0 UTF-16LE, bit 1 ignore case) | length u32 | UTF-8 text;
//            2 none recorded
//   regions  start u64 | end u64 | permissions u8 | path length u16 | path (UTF-8) | matches u64
//   matches  per region, in order: address delta (LEB128, from the region start or the previous
//            match; 0 only for a wider match at the same address) | width u8 | bits u64
//            | byte content only: FNV-1a 64 of the pattern-length bytes matched, u64
//   trailer  FNV-1a 64 of everything between the header and the trailer, u64
//
// Version 2 added the flags, the pattern and the per-match digests (rescans of byte patterns).

/// FNV-1a, 64-bit: a cheap checksum that catches truncation, bit flips and edits.
struct ScanChecksum {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ bytes: some Sequence<UInt8>) {
        for byte in bytes { value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
    }

    mutating func add(_ buffer: UnsafeRawBufferPointer) {
        var v = value
        for byte in buffer { v = (v ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        value = v
    }
}

/// Appends little-endian fields to a byte array.
struct ScanFileWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { integer(value) }
    mutating func u32(_ value: UInt32) { integer(value) }
    mutating func u64(_ value: UInt64) { integer(value) }
    mutating func integer<T: FixedWidthInteger>(_ value: T) {
        for shift in stride(from: 0, to: T.bitWidth, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> shift)) }
    }
    mutating func leb128(_ value: UInt64) {
        var rest = value
        repeat {
            let low = UInt8(rest & 0x7F)
            rest >>= 7
            bytes.append(rest == 0 ? low : low | 0x80)
        } while rest != 0
    }
}

/// Reads little-endian fields, failing (never trapping) at the end of the input.
///
/// The input is an array, or a stream: ``refill`` hands over the next piece of a file of ``total``
/// bytes (nil at its end), so a file of any size is read in fixed-size pieces. While
/// ``startChecksum()`` is on, every byte consumed is added to a checksum.
struct ScanFileReader {
    private(set) var bytes: [UInt8]
    var position = 0
    /// Bytes of the input before `bytes[0]` (dropped pieces of a stream).
    private(set) var consumedBefore: UInt64 = 0
    /// The input's size in bytes.
    let total: UInt64
    /// The next piece of a streamed input; nil at its end.
    var refill: (() -> [UInt8]?)?
    private var summing = false
    private var sum = ScanChecksum()
    private var sumFrom = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        total = UInt64(bytes.count)
    }

    /// A reader of a streamed input of `total` bytes that starts with `first`.
    init(first: [UInt8], total: UInt64, refill: @escaping () -> [UInt8]?) {
        bytes = first
        self.total = total
        self.refill = refill
    }

    /// Bytes of the input not consumed yet.
    var remaining: Int { Int(clamping: total &- min(total, consumedBefore + UInt64(position))) }

    /// Starts checksumming every byte consumed from here on.
    mutating func startChecksum() {
        summing = true
        sum = ScanChecksum()
        sumFrom = position
    }

    /// The checksum of the bytes consumed since ``startChecksum()``; stops checksumming.
    mutating func finishChecksum() -> UInt64 {
        if summing { sum.add(bytes[sumFrom..<position]) }
        summing = false
        return sum.value
    }

    /// Drops consumed bytes and appends the next piece of a streamed input; false at its end.
    private mutating func more() -> Bool {
        guard let refill, let piece = refill(), !piece.isEmpty else { return false }
        if summing { sum.add(bytes[sumFrom..<position]) }
        consumedBefore += UInt64(position)
        bytes = Array(bytes[position...]) + piece
        position = 0
        sumFrom = 0
        return true
    }

    mutating func take(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, count <= remaining else { return nil }
        while bytes.count - position < count { guard more() else { return nil } }
        defer { position += count }
        return bytes[position..<(position + count)]
    }
    mutating func u8() -> UInt8? {
        if position < bytes.count {
            defer { position += 1 }
            return bytes[position]
        }
        return take(1)?.first
    }
    mutating func integer<T: FixedWidthInteger>(_ type: T.Type) -> T? {
        guard let slice = take(T.bitWidth / 8) else { return nil }
        var value: T = 0
        for (index, byte) in slice.enumerated() { value |= T(truncatingIfNeeded: byte) << (index * 8) }
        return value
    }
    mutating func leb128() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while let byte = u8() {
            guard shift < 64, !(shift == 63 && byte & 0x7E != 0) else { return nil }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }
    /// Consumes everything but the last `keep` bytes (to checksum them).
    mutating func skip(toLast keep: Int) {
        while remaining > keep {
            let n = min(remaining - keep, max(1, bytes.count - position))
            guard take(n) != nil else { return }
        }
    }
}

enum MatchFileFormat {
    static let magic: [UInt8] = Array("PMMATCH".utf8) + [0]
    static let version: UInt16 = 2
    static let headerSize = 8 + 2 + 1 + 1 + 4 + 1 + 4 + 8 + 4 + 8 + 8

    /// The file's bytes for `set`.
    static func encode(_ set: MatchSet) -> [UInt8] {
        var all: [UInt8] = []
        encode(set) { (piece: [UInt8]) throws(Never) in all += piece }
        return all
    }

    /// The file's bytes for `set`, handed to `emit` in pieces of about 1 MiB, so a set of any size
    /// (a spilled one is read back in order) is written with bounded memory.
    static func encode<E: Error>(_ set: MatchSet, emit: ([UInt8]) throws(E) -> Void) throws(E) {
        var header = ScanFileWriter()
        header.bytes = magic
        header.u16(version)
        switch set.content {
        case .values(let type, let order):
            header.u8(type.code); header.u8(order == .big ? 1 : 0); header.u32(0)
        case .bytes(let length):
            header.u8(0); header.u8(0); header.u32(UInt32(clamping: length))
        }
        header.u8(set.isPartial ? 1 : 0)
        header.integer(set.pid)
        header.u64(set.processStartTime)
        header.u32(UInt32(clamping: set.regions.count))
        header.u64(UInt64(set.count))
        var check = ScanChecksum()
        check.add(header.bytes)
        header.u64(check.value)
        try emit(header.bytes)

        var body = ScanFileWriter()
        var bodyCheck = ScanChecksum()
        func flush(_ force: Bool) throws(E) {
            guard force || body.bytes.count >= 1 << 20 else { return }
            bodyCheck.add(body.bytes)
            try emit(body.bytes)
            body.bytes.removeAll(keepingCapacity: true)
        }
        if case .bytes(let length) = set.content {
            // A pattern that does not fit the content is not recorded (the file stays readable).
            let pattern = set.pattern.flatMap { $0.count == length ? $0 : nil }
            switch pattern?.source {
            case nil:
                body.u8(2)
            case .bytes?:
                body.u8(0)
                body.bytes += pattern?.bytes ?? []
                body.bytes += pattern?.mask ?? []
            case .string(let text, let utf16, let ignoreCase)?:
                body.u8(1)
                body.u8((utf16 ? 1 : 0) | (ignoreCase ? 2 : 0))
                let utf8 = Array(text.utf8)
                body.u32(UInt32(clamping: utf8.count))
                body.bytes += utf8
            }
        }
        for (index, region) in set.regions.enumerated() {
            body.u64(region.start); body.u64(region.end); body.u8(region.permissions.rawValue)
            let path = Array((region.path ?? "").utf8.prefix(Int(UInt16.max)))
            body.u16(UInt16(path.count)); body.bytes += path
            body.u64(UInt64(set.regionCounts[index]))
            try flush(false)
        }
        var index = 0
        for (regionIndex, region) in set.regions.enumerated() {
            var previous = region.start
            for _ in 0..<set.regionCounts[regionIndex] {
                let match = set[index]
                index += 1
                body.leb128(match.address &- previous)
                previous = match.address
                body.u8(UInt8(truncatingIfNeeded: match.width))
                body.u64(match.bits)
                if case .bytes = set.content { body.u64(match.digest ?? 0) }
                try flush(false)
            }
        }
        try flush(true)
        var trailer = ScanFileWriter()
        trailer.u64(bodyCheck.value)
        try emit(trailer.bytes)
    }

    /// The set in `bytes`, or why the bytes are not a valid match file.
    static func decode(_ bytes: [UInt8]) -> Result<MatchSet, ScanInputFailure> {
        var reader = ScanFileReader(bytes)
        return decode(&reader, spill: MatchSet.SpillPolicy())
    }

    /// The set `reader` holds, or why it is not a valid match file. An array input has its body
    /// checksum verified first; a streamed one is checksummed while it is read (a structural error
    /// in a file whose checksum also fails is reported as the checksum failure). The set spills
    /// as `spill` says, so a streamed file of any size is read with bounded memory.
    static func decode(_ reader: inout ScanFileReader, spill: MatchSet.SpillPolicy) -> Result<MatchSet, ScanInputFailure> {
        func fail(_ message: String) -> Result<MatchSet, ScanInputFailure> { .failure(ScanInputFailure(message: message)) }
        let head = Array(reader.take(min(reader.remaining, headerSize)) ?? [])
        var fields = ScanFileReader(head)
        guard let magicBytes = fields.take(8), Array(magicBytes) == magic else {
            if head.starts(with: SnapshotFileFormat.magic) { return fail("this is a snapshot file, not a match file") }
            return fail("not a procmem match file (bad magic)")
        }
        guard let version = fields.integer(UInt16.self) else { return fail("the file is truncated in its header") }
        guard version == Self.version else { return fail("match file version \(version) is not supported (this build reads version \(Self.version))") }
        guard let typeCode = fields.u8(), let orderCode = fields.u8(), let patternLength = fields.integer(UInt32.self),
              let flags = fields.u8(), let pid = fields.integer(Int32.self), let startTime = fields.integer(UInt64.self),
              let regionCount = fields.integer(UInt32.self), let matchCount = fields.integer(UInt64.self)
        else { return fail("the file is truncated in its header") }
        var check = ScanChecksum()
        check.add(head[0..<fields.position])
        guard let headerSum = fields.integer(UInt64.self) else { return fail("the file is truncated in its header") }
        guard headerSum == check.value else { return fail("the header checksum does not match: the file is corrupt") }
        guard reader.remaining >= 8 else { return fail("the file is truncated: no trailer") }
        let streamed = reader.refill != nil
        if streamed {
            reader.startChecksum()
        } else {
            var bodyCheck = ScanChecksum()
            bodyCheck.add(reader.bytes[reader.position..<(reader.bytes.count - 8)])
            var trailer = ScanFileReader(Array(reader.bytes[(reader.bytes.count - 8)...]))
            guard trailer.integer(UInt64.self) == bodyCheck.value else {
                return fail("the checksum does not match: the file is truncated or corrupt")
            }
        }
        let checksumFailure = ScanInputFailure(message: "the checksum does not match: the file is truncated or corrupt")
        /// The body's checksum against the trailer, reading to the end of a streamed file.
        func trailerMatches(_ reader: inout ScanFileReader) -> Bool {
            reader.skip(toLast: 8)
            let sum = reader.finishChecksum()
            return reader.remaining == 8 && reader.integer(UInt64.self) == sum
        }
        let body = decodeBody(&reader, typeCode: typeCode, orderCode: orderCode, patternLength: patternLength, flags: flags,
                              pid: pid, startTime: startTime, regionCount: regionCount, matchCount: matchCount, spill: spill)
        guard streamed else { return body }
        switch body {
        case .success(let set):
            return trailerMatches(&reader) ? .success(set) : .failure(checksumFailure)
        case .failure(let failure):
            return trailerMatches(&reader) ? .failure(failure) : .failure(checksumFailure)
        }
    }

    /// The pattern, regions and matches after a valid header.
    private static func decodeBody(_ reader: inout ScanFileReader, typeCode: UInt8, orderCode: UInt8, patternLength: UInt32,
                                   flags: UInt8, pid: Int32, startTime: UInt64, regionCount: UInt32, matchCount: UInt64,
                                   spill: MatchSet.SpillPolicy) -> Result<MatchSet, ScanInputFailure> {
        func fail(_ message: String) -> Result<MatchSet, ScanInputFailure> { .failure(ScanInputFailure(message: message)) }
        let content: MatchSet.Content
        if typeCode == 0 {
            guard patternLength >= 1, patternLength <= UInt32(BytePattern.maximumLength) else { return fail("bad pattern length \(patternLength)") }
            content = .bytes(length: Int(patternLength))
        } else {
            guard let type = ScanValueType(code: typeCode), orderCode <= 1 else { return fail("unknown value type \(typeCode)") }
            content = .values(type, orderCode == 1 ? .big : .little)
        }
        guard pid > 0 else { return fail("bad pid \(pid)") }
        guard flags <= 1 else { return fail("unknown flags \(flags)") }
        var pattern: BytePattern?
        if case .bytes(let length) = content {
            guard let kind = reader.u8() else { return fail("the file is truncated in its pattern") }
            switch kind {
            case 0:
                guard let bytes = reader.take(length), let mask = reader.take(length) else { return fail("the file is truncated in its pattern") }
                guard mask.contains(where: { $0 != 0 }) else { return fail("the saved pattern is all wildcards") }
                pattern = BytePattern(bytes: Array(bytes), mask: Array(mask), folded: [Bool](repeating: false, count: length))
            case 1:
                guard let options = reader.u8(), options <= 3, let count = reader.integer(UInt32.self),
                      count <= UInt32(4 * BytePattern.maximumLength), let text = reader.take(Int(count))
                else { return fail("the file's saved string is truncated or invalid") }
                guard let string = String(validating: text, as: UTF8.self), !string.isEmpty else {
                    return fail("the file's saved string is not UTF-8")
                }
                let rebuilt = BytePattern(string: string, utf16: options & 1 != 0, ignoreCase: options & 2 != 0)
                guard rebuilt.count == length else { return fail("the saved string does not have the pattern's length") }
                pattern = rebuilt
            case 2:
                pattern = nil
            default:
                return fail("unknown pattern kind \(kind)")
            }
        }
        // Each region needs at least 27 bytes and each match 10: reject counts the file cannot hold.
        guard UInt64(regionCount) * 27 <= UInt64(reader.remaining), matchCount <= UInt64(reader.remaining) / 10 else {
            return fail("the counts in the header exceed the file's size")
        }
        var set = MatchSet(pid: pid, processStartTime: startTime, content: content)
        set.spillPolicy = spill
        set.pattern = pattern
        set.isPartial = flags & 1 != 0
        var regions: [(MatchSet.Region, UInt64)] = []
        var total: UInt64 = 0
        for _ in 0..<regionCount {
            guard let start = reader.integer(UInt64.self), let end = reader.integer(UInt64.self), let perms = reader.u8(),
                  let pathLength = reader.integer(UInt16.self), let path = reader.take(Int(pathLength)),
                  let count = reader.integer(UInt64.self)
            else { return fail("the file is truncated in its region table") }
            guard start < end, perms <= 7 else { return fail("a region record is invalid") }
            if let last = regions.last, last.0.end > start { return fail("regions overlap or are out of order") }
            let (sum, overflow) = total.addingReportingOverflow(count)
            guard !overflow, sum <= matchCount else { return fail("region match counts exceed the total") }
            total = sum
            let text = String(decoding: path, as: UTF8.self)
            regions.append((MatchSet.Region(start: start, end: end, permissions: .init(rawValue: perms),
                                            path: text.isEmpty ? nil : text), count))
        }
        guard total == matchCount else { return fail("region match counts do not add up to the total") }
        for (region, count) in regions {
            set.appendRegion(region)
            var previous = region.start
            var previousWidth: UInt8 = 0
            var first = true
            for _ in 0..<count {
                guard let delta = reader.leb128(), let width = reader.u8(), let bits = reader.integer(UInt64.self) else {
                    return fail("the file is truncated in its matches")
                }
                var digest: UInt64?
                if case .bytes = content {
                    guard let value = reader.integer(UInt64.self) else { return fail("the file is truncated in its matches") }
                    digest = value
                }
                let (address, overflow) = previous.addingReportingOverflow(delta)
                // One address may hold several matches of increasing width (any-int).
                guard !overflow, address < region.end, first || delta > 0 || width > previousWidth else {
                    return fail("a match lies outside its region or out of order")
                }
                guard (1...8).contains(width) else { return fail("a match has an invalid width \(width)") }
                if case .values(let type, _) = content, let expected = type.width, Int(width) != expected {
                    return fail("a match's width does not fit its type")
                }
                if case .bytes(let length) = content, Int(width) != min(length, 8) {
                    return fail("a match's width does not fit its pattern")
                }
                set.append(address: address, width: Int(width), bits: bits, region: region, digest: digest)
                previous = address
                previousWidth = width
                first = false
            }
        }
        guard reader.remaining == 8 else { return fail("the file has unexpected bytes after its matches") }
        return .success(set)
    }
}
