// libFuzzer harness for the scan parsers: values of every type, hex patterns, strings, and the
// match-file (version 2: patterns, digests, partial flag) and snapshot-header (version 2) readers.
// Any bytes, no trap, and round trips hold.
// Built by Scripts/fuzz.sh with -sanitize=fuzzer,address.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzScanParsers(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)
    // One value type per input, chosen by its length, so mutations reach every type while each
    // execution parses once (parsing every type for every input made this harness the slowest).
    let types = ScanValueType.allCases
    for type in [types[(size / 7) % types.count]] {
        if case .success(let value) = ScanValue.parse(text, as: type, byteOrder: bytes.first.map { $0 & 1 == 1 ? .big : .little } ?? .little) {
            for width in value.widths where !type.isFloatingPoint {
                precondition(value.integerBytes(width: width).count == width, "an encoding has the wrong width")
            }
            if type.isFloatingPoint { precondition(value.tolerance >= 0, "a negative tolerance") }
        }
    }
    if case .success(let pattern) = BytePattern.parse(hex: text) {
        precondition(pattern.count >= 1 && pattern.count <= BytePattern.maximumLength, "a pattern of a bad length")
        precondition(pattern.mask.contains { $0 != 0 }, "an all-wildcard pattern was accepted")
        // Matching the pattern against the input itself never reads out of bounds.
        bytes.withUnsafeBytes { raw in
            let starts = raw.count - pattern.count + 1
            if starts > 0 {
                pattern.forEachMatch(in: raw, starts: starts, address: UInt64(size), alignment: 1 + size % 8) { _ in true }
            }
        }
    }
    let string = BytePattern(string: text, utf16: size % 2 == 0, ignoreCase: size % 3 == 0)
    precondition(string.bytes.count == string.mask.count && string.mask.count == string.folded.count, "pattern arrays differ")
    // Checksums would stop almost every input at the door: also try the input with them made valid.
    for candidate in [bytes, withValidChecksums(bytes)] {
        guard case .success(let set) = MatchFileFormat.decode(candidate) else { continue }
        // Whatever decodes re-encodes to a file that decodes to the same set.
        guard case .success(let again) = MatchFileFormat.decode(MatchFileFormat.encode(set)) else {
            preconditionFailure("a decoded set does not round-trip")
        }
        precondition(again == set, "a decoded set changed on round trip")
        if case .bytes(let length) = set.content, let pattern = set.pattern {
            precondition(pattern.count == length, "a saved pattern does not have the set's length")
        }
        for index in 0..<set.count {
            _ = set.number(ofMatch: index); _ = set.region(ofMatch: index)
            if case .bytes = set.content { precondition(set[index].digest != nil, "a byte match without its digest") }
        }
    }
    // Snapshot headers: whatever decodes re-encodes to a header that decodes to the same.
    if case .success(let (header, _)) = SnapshotFileFormat.decodeHeader(bytes) {
        guard case .success(let (again, _)) = SnapshotFileFormat.decodeHeader(SnapshotFileFormat.encode(header)) else {
            preconditionFailure("a decoded snapshot header does not round-trip")
        }
        precondition(again == header, "a snapshot header changed on round trip")
    }
    return 0
}

/// `bytes` with the match-file header and trailer checksums recomputed (when long enough).
func withValidChecksums(_ bytes: [UInt8]) -> [UInt8] {
    let headerEnd = MatchFileFormat.headerSize - 8
    guard bytes.count >= MatchFileFormat.headerSize + 8 else { return bytes }
    var fixed = bytes
    var header = ScanChecksum()
    header.add(fixed[0..<headerEnd])
    for index in 0..<8 { fixed[headerEnd + index] = UInt8(truncatingIfNeeded: header.value >> (8 * UInt64(index))) }
    var body = ScanChecksum()
    body.add(fixed[MatchFileFormat.headerSize..<(fixed.count - 8)])
    for index in 0..<8 { fixed[fixed.count - 8 + index] = UInt8(truncatingIfNeeded: body.value >> (8 * UInt64(index))) }
    return fixed
}
