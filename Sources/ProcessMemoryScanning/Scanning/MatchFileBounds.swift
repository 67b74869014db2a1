import SystemPackage
import ProcessMemoryCore
// How large a match file can be, from its header alone (issue 16: a 2 GiB file of random bytes was
// read whole before "bad magic"; /dev/zero grew to 16 GiB). Pure, like MatchFileFormat.swift.

extension MatchFileFormat {
    /// The most bytes a match file whose first ``headerSize`` bytes are `header` can hold, or why
    /// the header is not that of a match file (magic, version, header checksum).
    static func largestFile(header: [UInt8]) -> Result<UInt64, ScanInputFailure> {
        func fail(_ message: String) -> Result<UInt64, ScanInputFailure> { .failure(ScanInputFailure(message: message)) }
        if header.isEmpty { return fail("the file is empty") }
        guard header.starts(with: magic) else {
            if header.starts(with: SnapshotFileFormat.magic) { return fail("this is a snapshot file, not a match file") }
            return fail("not a procmem match file (bad magic)")
        }
        guard header.count >= headerSize else { return fail("the file is truncated in its header") }
        var reader = ScanFileReader(header)
        _ = reader.take(8)
        guard let version = reader.integer(UInt16.self) else { return fail("the file is truncated in its header") }
        guard version == Self.version else { return fail("match file version \(version) is not supported (this build reads version \(Self.version))") }
        guard let _ = reader.u8(), let _ = reader.u8(), let patternLength = reader.integer(UInt32.self), let _ = reader.u8(),
              let _ = reader.integer(Int32.self), let _ = reader.integer(UInt64.self),
              let regionCount = reader.integer(UInt32.self), let matchCount = reader.integer(UInt64.self)
        else { return fail("the file is truncated in its header") }
        var check = ScanChecksum()
        check.add(header[0..<reader.position])
        guard reader.integer(UInt64.self) == check.value else { return fail("the header checksum does not match: the file is corrupt") }
        // Pattern: kind, options, text length, up to 4 UTF-8 bytes per pattern byte, or bytes and mask.
        let pattern = 6 + 6 * UInt64(patternLength)
        // Region: start, end, permissions, path length, path (at most 65535 bytes), match count.
        let regions = UInt64(regionCount) * (8 + 8 + 1 + 2 + 65535 + 8)
        // Match: LEB128 delta (at most 10 bytes), width, bits, digest.
        let (matches, overflow) = matchCount.multipliedReportingOverflow(by: 10 + 1 + 8 + 8)
        guard !overflow else { return fail("the header promises \(matchCount) matches, more than any file holds") }
        let (total, over) = (UInt64(headerSize) + pattern + regions + 8).addingReportingOverflow(matches)
        guard !over else { return fail("the header promises \(matchCount) matches, more than any file holds") }
        return .success(total)
    }
}
