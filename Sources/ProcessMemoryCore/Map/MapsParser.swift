/// A pure parser for `/proc/PID/maps` text. It never traps: malformed lines are skipped and counted.
///
/// Each line is `start-end perms offset major:minor inode [path]`. The kernel pads the path with
/// spaces, escapes a newline in a path as `\012`, and appends ` (deleted)` to deleted files.
public enum MapsParser {
    /// The result of parsing a whole maps file.
    public struct Result: Sendable, Hashable {
        /// The regions, in the order of the input.
        public var regions: [MemoryRegion]
        /// Lines that could not be parsed (empty lines are not counted).
        public var malformedLines: Int
    }

    /// Parses the bytes of a maps file.
    public static func parse(_ bytes: some Collection<UInt8>) -> Result {
        var regions: [MemoryRegion] = []
        var malformed = 0
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            if let region = parseLine(line) { regions.append(region) } else { malformed += 1 }
        }
        return Result(regions: regions, malformedLines: malformed)
    }

    /// Parses the text of a maps file.
    public static func parse(_ text: String) -> Result { parse(Array(text.utf8)) }

    /// Parses one line (without its newline); `nil` if it is not a valid maps line.
    public static func parseLine(_ line: some Collection<UInt8>) -> MemoryRegion? {
        var cursor = Cursor(Array(line))
        guard let start = cursor.hex(), cursor.take(UInt8(ascii: "-")), let end = cursor.hex(), end >= start,
              cursor.take(UInt8(ascii: " ")), let perms = cursor.field(), perms.count == 4,
              cursor.take(UInt8(ascii: " ")), let offset = cursor.hex(),
              cursor.take(UInt8(ascii: " ")), let major = cursor.hex(), major <= UInt32.max,
              cursor.take(UInt8(ascii: ":")), let minor = cursor.hex(), minor <= UInt32.max,
              cursor.take(UInt8(ascii: " ")), let inode = cursor.decimal()
        else { return nil }
        var permissions: MemoryRegion.Permissions = []
        let p = Array(perms)
        switch p[0] { case UInt8(ascii: "r"): permissions.insert(.read); case UInt8(ascii: "-"): break; default: return nil }
        switch p[1] { case UInt8(ascii: "w"): permissions.insert(.write); case UInt8(ascii: "-"): break; default: return nil }
        switch p[2] { case UInt8(ascii: "x"): permissions.insert(.execute); case UInt8(ascii: "-"): break; default: return nil }
        let shared: Bool
        switch p[3] { case UInt8(ascii: "s"): shared = true; case UInt8(ascii: "p"): shared = false; default: return nil }
        let rest = cursor.rest()
        guard rest.isEmpty || rest.first == UInt8(ascii: " ") else { return nil }
        let (path, deleted) = decodePath(rest)
        return MemoryRegion(start: start, end: end, permissions: permissions, isShared: shared, offset: offset,
                            deviceMajor: UInt32(major), deviceMinor: UInt32(minor), inode: inode, path: path,
                            isDeleted: deleted)
    }

    /// Strips the padding, decodes `\012` to a newline and splits off ` (deleted)`.
    package static func decodePath(_ raw: ArraySlice<UInt8>) -> (String?, Bool) {
        let trimmed = raw.drop(while: { $0 == UInt8(ascii: " ") })
        if trimmed.isEmpty { return (nil, false) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(trimmed.count)
        var index = trimmed.startIndex
        while index < trimmed.endIndex {
            let byte = trimmed[index]
            if byte == UInt8(ascii: "\\"), trimmed.distance(from: index, to: trimmed.endIndex) >= 4,
               Array(trimmed[(index + 1)...(index + 3)]) == Array("012".utf8) {
                bytes.append(UInt8(ascii: "\n"))
                index += 4
            } else {
                bytes.append(byte)
                index += 1
            }
        }
        let suffix = Array(" (deleted)".utf8)
        var deleted = false
        if bytes.count > suffix.count, Array(bytes.suffix(suffix.count)) == suffix {
            bytes.removeLast(suffix.count)
            deleted = true
        }
        return (String(decoding: bytes, as: UTF8.self), deleted)
    }

    private struct Cursor {
        let bytes: [UInt8]
        var index = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        mutating func hex() -> UInt64? {
            var value: UInt64 = 0
            let begin = index
            while index < bytes.count, let digit = Self.hexDigit(bytes[index]) {
                guard index - begin < 16 else { return nil }
                value = value << 4 | UInt64(digit)
                index += 1
            }
            return index > begin ? value : nil
        }

        mutating func decimal() -> UInt64? {
            var value: UInt64 = 0
            let begin = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                let (times, o1) = value.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times.addingReportingOverflow(UInt64(bytes[index] - UInt8(ascii: "0")))
                guard !o1, !o2 else { return nil }
                value = sum
                index += 1
            }
            return index > begin ? value : nil
        }

        mutating func field() -> ArraySlice<UInt8>? {
            let begin = index
            while index < bytes.count, bytes[index] != UInt8(ascii: " ") { index += 1 }
            return index > begin ? bytes[begin..<index] : nil
        }

        func rest() -> ArraySlice<UInt8> { bytes[index...] }

        static func hexDigit(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
    }
}
