// Pure pattern parsing and matching: no system calls, so the fuzz harness compiles it on its own.
import Glibc

/// A sequence of bytes to look for, each compared under a mask, optionally ASCII case-folded.
///
/// Built from hex text with wildcards (``parse(hex:)``: `48 8b ?? ?? 05`, nibbles `4?` and `?5`) or
/// from a string (``init(string:utf16:ignoreCase:)``, UTF-8 or UTF-16LE). The scanner finds
/// candidates with `memchr(3)` on one fully known byte (the anchor), then checks the rest.
public struct BytePattern: Sendable, Hashable {
    /// The bytes to compare, already masked (and lower-cased where folded).
    public let bytes: [UInt8]
    /// Per byte: which bits must equal (0xFF exact, 0xF0 high nibble, 0x00 wildcard).
    public let mask: [UInt8]
    /// Per byte: compare ASCII letters without case (`byte | 0x20`).
    public let folded: [Bool]
    /// The index of the byte `memchr` looks for, or nil when no byte is fully known and unfolded.
    let anchor: Int?
    /// What the pattern was made from, as a match file records it.
    let source: Source

    /// What a pattern was made from: bytes under a mask, or a string and how it is encoded.
    enum Source: Sendable, Hashable {
        case bytes
        case string(String, utf16: Bool, ignoreCase: Bool)
    }

    /// The longest pattern accepted.
    public static let maximumLength = 4096

    init(bytes: [UInt8], mask: [UInt8], folded: [Bool], source: Source = .bytes) {
        self.source = source
        self.bytes = zip(bytes, mask).map { $0 & $1 }
        self.mask = mask
        self.folded = folded
        // Prefer a known byte that is rarely filler (0x00, 0xFF, 0x20): later ones among equals.
        var best: (index: Int, score: Int)?
        for index in bytes.indices where mask[index] == 0xFF && !folded[index] {
            let byte = bytes[index]
            let score = (byte == 0 || byte == 0xFF) ? 0 : (byte == 0x20 ? 1 : 2)
            if best == nil || score >= (best?.score ?? 0) { best = (index, score) }
        }
        self.anchor = best?.index
    }

    /// The number of bytes a match covers.
    public var count: Int { bytes.count }

    /// Parses hex text: bytes as two hex digits (`4f`), `??` or `?` for any byte, `4?` / `?f` for a
    /// nibble; bytes may be separated by spaces or written together (`488b??05`).
    static func parse(hex text: String) -> Result<BytePattern, ScanInputFailure> {
        var bytes: [UInt8] = []
        var mask: [UInt8] = []
        for token in text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," }) {
            let digits = Array(token.utf8)
            if digits == [UInt8(ascii: "?")] {
                bytes.append(0); mask.append(0); continue
            }
            guard digits.count % 2 == 0 else {
                return .failure(ScanInputFailure(message: "'\(token.prefix(40))' is not a whole number of bytes: write two hex digits or ?? per byte"))
            }
            var index = 0
            while index < digits.count {
                guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else {
                    return .failure(ScanInputFailure(message: "'\(token.prefix(40))' holds a character that is not a hex digit or ?"))
                }
                bytes.append((high.value << 4) | low.value)
                mask.append((high.known ? 0xF0 : 0) | (low.known ? 0x0F : 0))
                index += 2
                if bytes.count > maximumLength {
                    return .failure(ScanInputFailure(message: "a pattern may hold at most \(maximumLength) bytes"))
                }
            }
        }
        guard !bytes.isEmpty else { return .failure(ScanInputFailure(message: "the pattern is empty")) }
        guard mask.contains(where: { $0 != 0 }) else {
            return .failure(ScanInputFailure(message: "the pattern must have at least one byte that is not a wildcard"))
        }
        return .success(BytePattern(bytes: bytes, mask: mask, folded: Array(repeating: false, count: bytes.count)))
    }

    private static func nibble(_ digit: UInt8) -> (value: UInt8, known: Bool)? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return (digit - UInt8(ascii: "0"), true)
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return (digit - UInt8(ascii: "a") + 10, true)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return (digit - UInt8(ascii: "A") + 10, true)
        case UInt8(ascii: "?"): return (0, false)
        default: return nil
        }
    }

    /// A pattern for `string` in UTF-8, or UTF-16LE when `utf16` is set; with `ignoreCase`, ASCII
    /// letters match in either case (other characters match exactly).
    public init(string: String, utf16: Bool = false, ignoreCase: Bool = false) {
        var bytes: [UInt8] = []
        var folded: [Bool] = []
        func add(_ byte: UInt8) {
            let letter = (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
            let fold = ignoreCase && letter
            bytes.append(fold ? byte | 0x20 : byte)
            folded.append(fold)
        }
        if utf16 {
            for unit in string.utf16 {
                add(UInt8(truncatingIfNeeded: unit))
                bytes.append(UInt8(truncatingIfNeeded: unit >> 8)); folded.append(false)
            }
        } else {
            string.utf8.forEach(add)
        }
        self.init(bytes: Array(bytes.prefix(Self.maximumLength)), mask: Array(repeating: 0xFF, count: min(bytes.count, Self.maximumLength)),
                  folded: Array(folded.prefix(Self.maximumLength)), source: .string(string, utf16: utf16, ignoreCase: ignoreCase))
    }

    /// Whether the pattern matches at `start` in `base` (the caller guarantees `count` bytes).
    @inline(__always)
    func matches(_ base: UnsafeRawPointer, at start: Int) -> Bool {
        for index in 0..<bytes.count {
            var byte = base.load(fromByteOffset: start + index, as: UInt8.self)
            if folded[index] { byte |= 0x20 }
            if byte & mask[index] != bytes[index] { return false }
        }
        return true
    }

    /// Calls `emit` with each start in `0..<starts` where the pattern matches in `buffer`, whose
    /// absolute address is `address`, keeping starts whose address is a multiple of `alignment`.
    /// Stops early when `emit` returns false. Candidates come from `memchr(3)` on the anchor byte.
    func forEachMatch(in buffer: UnsafeRawBufferPointer, starts: Int, address: UInt64, alignment: Int,
                      _ emit: (Int) -> Bool) {
        guard let base = buffer.baseAddress, starts > 0, starts + bytes.count - 1 <= buffer.count else { return }
        let align = UInt64(max(1, alignment))
        guard let anchor else {
            var start = Int((align - address % align) % align)
            while start < starts {
                if matches(base, at: start), !emit(start) { return }
                start += Int(align)
            }
            return
        }
        let needle = CInt(bytes[anchor])
        var cursor = anchor
        let end = starts + anchor
        while cursor < end {
            guard let hit = memchr(base + cursor, needle, end - cursor) else { return }
            let position = base.distance(to: UnsafeRawPointer(hit))
            cursor = position + 1
            let start = position - anchor
            if align > 1 && (address &+ UInt64(start)) % align != 0 { continue }
            if matches(base, at: start), !emit(start) { return }
        }
    }
}
