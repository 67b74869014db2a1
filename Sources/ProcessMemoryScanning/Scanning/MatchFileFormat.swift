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
struct ScanFileReader {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - position }

    mutating func take(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, count <= remaining else { return nil }
        defer { position += count }
        return bytes[position..<(position + count)]
    }
    mutating func u8() -> UInt8? { take(1)?.first }
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
}

enum MatchFileFormat {
    static let magic: [UInt8] = Array("PMMATCH".utf8) + [0]
    static let version: UInt16 = 2
    static let headerSize = 8 + 2 + 1 + 1 + 4 + 1 + 4 + 8 + 4 + 8 + 8

    /// The file's bytes for `set`.
    static func encode(_ set: MatchSet) -> [UInt8] {
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

        var body = ScanFileWriter()
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
        var perRegion = [UInt64](repeating: 0, count: set.regions.count)
        var regionOf = [Int](repeating: 0, count: set.count)
        for index in 0..<set.count {
            let region = set.regionIndex(containing: set[index].address) ?? 0
            regionOf[index] = region
            if !perRegion.isEmpty { perRegion[region] += 1 }
        }
        for (index, region) in set.regions.enumerated() {
            body.u64(region.start); body.u64(region.end); body.u8(region.permissions.rawValue)
            let path = Array((region.path ?? "").utf8.prefix(Int(UInt16.max)))
            body.u16(UInt16(path.count)); body.bytes += path
            body.u64(perRegion[index])
        }
        var previousRegion = -1
        var previous: UInt64 = 0
        for index in 0..<set.count {
            let match = set[index]
            if regionOf[index] != previousRegion {
                previousRegion = regionOf[index]
                previous = set.regions.isEmpty ? 0 : set.regions[previousRegion].start
            }
            body.leb128(match.address &- previous)
            previous = match.address
            body.u8(UInt8(truncatingIfNeeded: match.width))
            body.u64(match.bits)
            if let digest = match.digest { body.u64(digest) }
        }
        var bodyCheck = ScanChecksum()
        bodyCheck.add(body.bytes)
        body.u64(bodyCheck.value)
        return header.bytes + body.bytes
    }

    /// The set in `bytes`, or why the bytes are not a valid match file.
    static func decode(_ bytes: [UInt8]) -> Result<MatchSet, ScanInputFailure> {
        func fail(_ message: String) -> Result<MatchSet, ScanInputFailure> { .failure(ScanInputFailure(message: message)) }
        var reader = ScanFileReader(bytes)
        guard let magicBytes = reader.take(8), Array(magicBytes) == magic else {
            if bytes.starts(with: SnapshotFileFormat.magic) { return fail("this is a snapshot file, not a match file") }
            return fail("not a procmem match file (bad magic)")
        }
        guard let version = reader.integer(UInt16.self) else { return fail("the file is truncated in its header") }
        guard version == Self.version else { return fail("match file version \(version) is not supported (this build reads version \(Self.version))") }
        guard let typeCode = reader.u8(), let orderCode = reader.u8(), let patternLength = reader.integer(UInt32.self),
              let flags = reader.u8(), let pid = reader.integer(Int32.self), let startTime = reader.integer(UInt64.self),
              let regionCount = reader.integer(UInt32.self), let matchCount = reader.integer(UInt64.self)
        else { return fail("the file is truncated in its header") }
        var check = ScanChecksum()
        check.add(bytes[0..<reader.position])
        guard let headerSum = reader.integer(UInt64.self) else { return fail("the file is truncated in its header") }
        guard headerSum == check.value else { return fail("the header checksum does not match: the file is corrupt") }
        let bodyStart = reader.position
        guard bytes.count >= bodyStart + 8 else { return fail("the file is truncated: no trailer") }
        var bodyCheck = ScanChecksum()
        bodyCheck.add(bytes[bodyStart..<(bytes.count - 8)])
        var trailer = ScanFileReader(Array(bytes[(bytes.count - 8)...]))
        guard trailer.integer(UInt64.self) == bodyCheck.value else {
            return fail("the checksum does not match: the file is truncated or corrupt")
        }
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
