import ProcessMemoryCore
// The header of snapshot files (unknown-initial-value searches). Pure, like MatchFileFormat.
//
// Little-endian:
//   header  "PMSNAP\0\0" | version u16 (2) | value type u8 (any-int allowed) | byte order u8
//           | flags u8 (bit 0: compare at every byte offset) | pid i32 | start time u64
//           | page size u32 | region count u32
//           | regions: start u64 | end u64 | permissions u8 | path length u16 | path
//           | FNV-1a 64 of the header so far, u64
//   pages   for every page of every region, in order: tag u8 — 0 all zero (no data), 1 data
//           (page size bytes follow), 2 unreadable; or 3, the end: the snapshot was interrupted
//           and the pages left were not taken (a partial snapshot)
//   trailer FNV-1a 64 of the pages section, u64
//
// Version 3 is a narrowed snapshot, what a comparison writes when its matches are too many to list
// (flags bit 1 set; the type, byte order and alignment are then fixed, not defaults): tags 0 and 1
// are followed by a candidates byte — 0 none, 1 all, 2 a bitmap follows: one plane of page-size bits
// per width compared (any-int: 1, 2, 4, 8; else the type's width), bit o of plane w set when the
// value of that width starting at page offset o is still a match — and tag 4 records a page with no
// candidates and no data. The data is the page as the comparison saw it, the "before" of the next one.
//
// Version 2 added the flags byte, any-int and the end record. The type, byte order and flag are
// defaults for comparisons, which may override them: the pages are the same whatever is compared.

enum SnapshotFileFormat {
    static let magic: [UInt8] = Array("PMSNAP".utf8) + [0, 0]
    static let version: UInt16 = 2
    /// The version of narrowed snapshots (candidate bitmaps).
    static let narrowedVersion: UInt16 = 3

    struct Header: Sendable, Hashable {
        var type: ScanValueType
        var byteOrder: ScanByteOrder
        /// Compare at every byte offset, not only at multiples of the width.
        var unaligned: Bool = false
        /// A narrowed snapshot (version 3): pages carry candidate bitmaps.
        var narrowed: Bool = false
        var pid: Int32
        var processStartTime: UInt64
        var pageSize: Int
        var regions: [MatchSet.Region]
    }

    enum Tag: UInt8 { case zero = 0, data = 1, unreadable = 2, end = 3, absent = 4 }

    static func encode(_ header: Header) -> [UInt8] {
        var out = ScanFileWriter()
        out.bytes = magic
        out.u16(header.narrowed ? narrowedVersion : version)
        out.u8(header.type.code)
        out.u8(header.byteOrder == .big ? 1 : 0)
        out.u8((header.unaligned ? 1 : 0) | (header.narrowed ? 2 : 0))
        out.integer(header.pid)
        out.u64(header.processStartTime)
        out.u32(UInt32(clamping: header.pageSize))
        out.u32(UInt32(clamping: header.regions.count))
        for region in header.regions {
            out.u64(region.start); out.u64(region.end); out.u8(region.permissions.rawValue)
            let path = Array((region.path ?? "").utf8.prefix(Int(UInt16.max)))
            out.u16(UInt16(path.count)); out.bytes += path
        }
        var check = ScanChecksum()
        check.add(out.bytes)
        out.u64(check.value)
        return out.bytes
    }

    /// Decodes the header at the start of `bytes`: the header and its length, or why not.
    static func decodeHeader(_ bytes: [UInt8]) -> Result<(Header, Int), ScanInputFailure> {
        func fail(_ message: String) -> Result<(Header, Int), ScanInputFailure> { .failure(ScanInputFailure(message: message)) }
        var reader = ScanFileReader(bytes)
        guard let head = reader.take(8), Array(head) == magic else { return fail("not a procmem snapshot file (bad magic)") }
        guard let version = reader.integer(UInt16.self) else { return fail("the snapshot is truncated in its header") }
        guard version == Self.version || version == Self.narrowedVersion else {
            return fail("snapshot version \(version) is not supported (this build reads versions \(Self.version) and \(Self.narrowedVersion)): take the snapshot again")
        }
        guard let typeCode = reader.u8(), let order = reader.u8(), let flags = reader.u8(),
              let pid = reader.integer(Int32.self), let start = reader.integer(UInt64.self),
              let pageSize = reader.integer(UInt32.self), let count = reader.integer(UInt32.self)
        else { return fail("the snapshot is truncated in its header") }
        guard let type = ScanValueType(code: typeCode), order <= 1, flags <= (version == Self.narrowedVersion ? 3 : 1),
              (flags & 2 != 0) == (version == Self.narrowedVersion) else { return fail("the snapshot's value type or flags are invalid") }
        guard pageSize >= 4096, pageSize <= 1 << 21, pageSize & (pageSize - 1) == 0 else { return fail("bad page size \(pageSize)") }
        guard pid > 0, UInt64(count) * 19 <= UInt64(reader.remaining) else { return fail("the snapshot header is invalid or truncated") }
        var regions: [MatchSet.Region] = []
        for _ in 0..<count {
            guard let s = reader.integer(UInt64.self), let e = reader.integer(UInt64.self), let perms = reader.u8(),
                  let length = reader.integer(UInt16.self), let path = reader.take(Int(length))
            else { return fail("the snapshot is truncated in its region table") }
            guard s < e, s % UInt64(pageSize) == 0, e % UInt64(pageSize) == 0, perms <= 7,
                  regions.last.map({ $0.end <= s }) ?? true
            else { return fail("the snapshot's region table is invalid") }
            let text = String(decoding: path, as: UTF8.self)
            regions.append(MatchSet.Region(start: s, end: e, permissions: .init(rawValue: perms), path: text.isEmpty ? nil : text))
        }
        var check = ScanChecksum()
        check.add(bytes[0..<reader.position])
        guard let sum = reader.integer(UInt64.self) else { return fail("the snapshot is truncated in its header") }
        guard sum == check.value else { return fail("the snapshot header checksum does not match: the file is corrupt") }
        let header = Header(type: type, byteOrder: order == 1 ? .big : .little, unaligned: flags & 1 != 0, narrowed: flags & 2 != 0, pid: pid, processStartTime: start,
                            pageSize: Int(pageSize), regions: regions)
        return .success((header, reader.position))
    }
}
