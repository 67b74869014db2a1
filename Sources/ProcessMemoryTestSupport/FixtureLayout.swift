/// The layout `procmem-fixture` prints as its first line of JSON (Sources/procmem-fixture/Layout.swift
/// writes it by hand, with Sources/procmem-fixture/JSON.swift, so the fixture itself stays small and
/// free of Foundation).
///
/// Decoding ignores the keys this type does not name, so the fixture may report more than the tests read.
public struct FixtureLayout: Codable, Equatable, Sendable {
    /// One region the fixture mapped for a known purpose (`pattern`, `hole`, `memfd`, ...).
    public struct Region: Codable, Equatable, Sendable {
        public var address: UInt64
        public var size: UInt64
        /// `hole`: the offset and size of its unmapped middle page.
        public var holeOffset: UInt64?
        public var holeSize: UInt64?
        /// `protNone`: the offset of its PROT_NONE page.
        public var protNoneOffset: UInt64?
        /// `guard`: the offset of its MADV_GUARD_INSTALL page.
        public var guardOffset: UInt64?
        /// `truncatedFile`: the backing file, which a killed fixture cannot remove itself.
        public var path: String?
        /// `truncatedFile`, `memfd`: the file's size after the fixture truncated it.
        public var fileSize: UInt64?
        /// `memfd`: the descriptor number in the fixture.
        public var fd: Int32?

        public var end: UInt64 { address + size }
    }
    /// A value at a known address (`u32`, `cstring`, `struct`, ...).
    public struct Located: Codable, Equatable, Sendable {
        public var address: UInt64
        /// `struct`: its size.
        public var size: UInt64?
    }
    /// The u32 planted at several addresses of the `planted` region.
    public struct Planted: Codable, Equatable, Sendable {
        public var value: UInt32
        public var type: String
        public var addresses: [UInt64]
    }
    /// A function of the fixture and its first bytes (hex).
    public struct Code: Codable, Equatable, Sendable {
        public var address: UInt64
        public var bytes: String
    }
    /// A marker in a frame of the fixture's main thread.
    public struct Stack: Codable, Equatable, Sendable {
        public var address: UInt64
        public var value: UInt64
    }

    public var pid: Int32
    public var pageSize: UInt64
    public var regions: [String: Region]
    public var values: [String: Located]
    public var planted: Planted
    public var code: Code
    public var stack: Stack

    /// The region named `name`; throws when the fixture did not report it.
    public func region(_ name: String) throws(FixtureError) -> Region {
        guard let region = regions[name] else { throw .missing("the fixture did not report region \(name)") }
        return region
    }

    /// The address of the value named `name`; throws when the fixture did not report it.
    public func value(_ name: String) throws(FixtureError) -> UInt64 {
        guard let value = values[name] else { throw .missing("the fixture did not report value \(name)") }
        return value.address
    }
}

/// The fixture's pattern: byte `offset` of its `pattern` region (without `--fill`).
@inline(__always)
public func patternByte(_ offset: Int) -> UInt8 {
    UInt8(truncatingIfNeeded: (offset &* 7 &+ (offset >> 12)) & 0xff)
}

/// The bytes of a hex string as the fixture writes them (two lowercase digits a byte); a pair that
/// is not hex is skipped.
public func hexBytes(_ hex: String) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(hex.utf8.count / 2)
    func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return nil
        }
    }
    var iterator = hex.utf8.makeIterator()
    while let high = iterator.next(), let low = iterator.next() {
        if let h = nibble(high), let l = nibble(low) { bytes.append(h << 4 | l) }
    }
    return bytes
}
