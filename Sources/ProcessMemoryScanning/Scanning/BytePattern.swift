// Pure pattern parsing and matching: no system calls, so the fuzz harness compiles it on its own.
import Glibc
import ProcessMemoryCore

/// A sequence of bytes to look for, each compared under a mask, optionally without letter case.
///
/// Built from hex text with wildcards (``parse(hex:)``: `48 8b ?? ?? 05`, nibbles `4?` and `?5`) or
/// from a string (``init(string:utf16:ignoreCase:)``, UTF-8 or UTF-16LE). The scanner finds
/// candidates on one byte position (the anchor): with `memchr(3)` when one byte value is possible
/// there, else with a 256-entry table of the values possible (the encodings of a letter's case
/// variants), then checks the rest.
public struct BytePattern: Sendable, Hashable {
    /// The bytes to compare, already masked (and lower-cased where folded).
    public let bytes: [UInt8]
    /// Per byte: which bits must equal (0xFF exact, 0xF0 high nibble, 0x00 wildcard).
    public let mask: [UInt8]
    /// Per byte: compare ASCII letters without case (`byte | 0x20`).
    public let folded: [Bool]
    /// Non-ASCII letters of an ignore-case string: at each, the bytes must equal the encoding of
    /// one of the letter's case variants (their bytes are wildcards in ``bytes`` and ``mask``).
    let variants: [ScalarVariants]
    /// The byte position candidates are looked for at, or nil when every position is free.
    let anchor: Int?
    /// The byte values possible at ``anchor``: one means `memchr`, more a table lookup.
    let anchorValues: [UInt8]

    /// The encodings a letter may have at `offset` in a match: its case variants of the same length.
    struct ScalarVariants: Sendable, Hashable {
        var offset: Int
        var length: Int
        var encodings: [[UInt8]]
    }
    /// What the pattern was made from, as a match file records it.
    let source: Source

    /// What a pattern was made from: bytes under a mask, or a string and how it is encoded.
    enum Source: Sendable, Hashable {
        case bytes
        case string(String, utf16: Bool, ignoreCase: Bool)
    }

    /// The longest pattern accepted.
    public static let maximumLength = 4096

    init(bytes: [UInt8], mask: [UInt8], folded: [Bool], source: Source = .bytes, variants: [ScalarVariants] = []) {
        self.source = source
        self.bytes = zip(bytes, mask).map { $0 & $1 }
        self.mask = mask
        self.folded = folded
        self.variants = variants
        // The byte values possible at each position; the anchor is the position with the fewest,
        // preferring among single values one that is rarely filler (0x00, 0xFF, 0x20), later among equals.
        var possible: [[UInt8]?] = bytes.indices.map { index in
            if mask[index] == 0xFF && !folded[index] { return [bytes[index]] }
            if mask[index] == 0xFF && folded[index] { return [bytes[index], bytes[index] & ~0x20] }
            return nil
        }
        for scalar in variants {
            for position in 0..<scalar.length where scalar.offset + position < possible.count {
                var values: [UInt8] = []
                for encoding in scalar.encodings where position < encoding.count && !values.contains(encoding[position]) {
                    values.append(encoding[position])
                }
                possible[scalar.offset + position] = values
            }
        }
        var best: (index: Int, score: Int)?
        for (index, values) in possible.enumerated() {
            guard let values, !values.isEmpty else { continue }
            var score = -4 * values.count
            if values.count == 1 {
                let byte = values[0]
                score += (byte == 0 || byte == 0xFF) ? 0 : (byte == 0x20 ? 1 : 2)
            }
            if best == nil || score >= (best?.score ?? 0) { best = (index, score) }
        }
        self.anchor = best?.index
        self.anchorValues = best.flatMap { possible[$0.index] } ?? []
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

    /// A pattern for `string` in UTF-8, or UTF-16LE when `utf16` is set.
    ///
    /// With `ignoreCase`, letters match in any case by simple (one scalar to one scalar) case
    /// folding: `É`/`é`, `Ж`/`ж`, `Σ`/`σ`/`ς`, `ǅ`/`Ǆ`/`ǆ`. A variant whose encoding has another
    /// length than the letter's is not matched (in UTF-8: the Kelvin sign `K` for `k`, long `ſ` for
    /// `s`), nor are full foldings that change the length (`ß`/`SS`), so a match always covers
    /// ``count`` bytes. Dotless `ı` and dotted `İ` fold only to themselves, as in Unicode's
    /// CaseFolding.txt. Patterns longer than ``maximumLength`` bytes are cut at a whole character.
    public init(string: String, utf16: Bool = false, ignoreCase: Bool = false) {
        var bytes: [UInt8] = []
        var mask: [UInt8] = []
        var folded: [Bool] = []
        var variants: [ScalarVariants] = []
        func encode(_ scalar: Unicode.Scalar) -> [UInt8] {
            utf16 ? scalar.utf16.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] } : Array(scalar.utf8)
        }
        for scalar in string.unicodeScalars {
            let encoding = encode(scalar)
            guard bytes.count + encoding.count <= Self.maximumLength else { break }
            var others: [[UInt8]] = []
            if ignoreCase {
                for variant in CaseVariants.of(scalar) where variant != scalar {
                    let other = encode(variant)
                    if other.count == encoding.count && !others.contains(other) && other != encoding { others.append(other) }
                }
            }
            let asciiLetter = scalar.isASCII && scalar.properties.isAlphabetic
            if asciiLetter && others.count == 1 && others[0][0] == encoding[0] ^ 0x20 {
                // An ASCII letter whose only variant is its other case: the fast folded compare.
                bytes.append(encoding[0] | 0x20); mask.append(0xFF); folded.append(true)
                for byte in encoding.dropFirst() { bytes.append(byte); mask.append(0xFF); folded.append(false) }
            } else if !others.isEmpty {
                variants.append(ScalarVariants(offset: bytes.count, length: encoding.count, encodings: [encoding] + others))
                for _ in encoding { bytes.append(0); mask.append(0); folded.append(false) }
            } else {
                for byte in encoding { bytes.append(byte); mask.append(0xFF); folded.append(false) }
            }
        }
        self.init(bytes: bytes, mask: mask, folded: folded, source: .string(string, utf16: utf16, ignoreCase: ignoreCase),
                  variants: variants)
    }

    /// Whether the pattern matches at `start` in `base` (the caller guarantees `count` bytes).
    @inline(__always)
    func matches(_ base: UnsafeRawPointer, at start: Int) -> Bool {
        for index in 0..<bytes.count {
            var byte = base.load(fromByteOffset: start + index, as: UInt8.self)
            if folded[index] { byte |= 0x20 }
            if byte & mask[index] != bytes[index] { return false }
        }
        for scalar in variants {
            let at = base + start + scalar.offset
            guard scalar.encodings.contains(where: { encoding in
                encoding.withUnsafeBytes { raw in raw.baseAddress.map { memcmp(at, $0, scalar.length) == 0 } ?? false }
            }) else { return false }
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
        if anchorValues.count > 4 {
            // Many values possible at the anchor: a table lookup per byte.
            var table = [Bool](repeating: false, count: 256)
            for value in anchorValues { table[Int(value)] = true }
            var start = 0
            while start < starts {
                if table[Int(base.load(fromByteOffset: start + anchor, as: UInt8.self))] {
                    if !(align > 1 && (address &+ UInt64(start)) % align != 0), matches(base, at: start), !emit(start) { return }
                }
                start += 1
            }
            return
        }
        if anchorValues.count > 1 {
            // A few values (a letter's cases): one memchr stream per value, merged in order.
            let end = starts + anchor
            func find(_ value: UInt8, from cursor: Int) -> Int {
                guard cursor < end, let hit = memchr(base + cursor, CInt(value), end - cursor) else { return end }
                return base.distance(to: UnsafeRawPointer(hit))
            }
            var next = anchorValues.map { find($0, from: anchor) }
            while true {
                var which = 0
                for index in next.indices where next[index] < next[which] { which = index }
                let position = next[which]
                guard position < end else { return }
                next[which] = find(anchorValues[which], from: position + 1)
                let start = position - anchor
                if align > 1 && (address &+ UInt64(start)) % align != 0 { continue }
                if matches(base, at: start), !emit(start) { return }
            }
        }
        let needle = CInt(anchorValues.first ?? bytes[anchor])
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

/// Simple case folding classes: the scalars that fold to the same scalar, so match one another
/// when case is ignored.
enum CaseVariants {
    /// Cased scalars by their folded form, built once on first use from the stdlib's Unicode tables
    /// (every scalar below U+20000 that changes when case-mapped, which covers all cased scripts).
    private static let classes: [UInt32: [Unicode.Scalar]] = {
        var classes: [UInt32: [Unicode.Scalar]] = [:]
        for value in UInt32(0x80)..<0x20000 {
            guard let scalar = Unicode.Scalar(value), scalar.properties.changesWhenCaseMapped else { continue }
            classes[fold(scalar).value, default: []].append(scalar)
        }
        return classes
    }()

    /// The simple case fold of `scalar`: the lower case of its upper case where both are one
    /// scalar (so `ς` and `Σ` fold to `σ`), except Turkic `ı` and `İ`, which fold to themselves.
    static func fold(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        if scalar.value == 0x130 || scalar.value == 0x131 { return scalar }
        let upper = single(scalar.properties.uppercaseMapping) ?? scalar
        return single(upper.properties.lowercaseMapping) ?? single(scalar.properties.lowercaseMapping) ?? scalar
    }

    /// Every scalar that folds as `scalar` does, `scalar` included.
    static func of(_ scalar: Unicode.Scalar) -> [Unicode.Scalar] {
        if scalar.isASCII {
            // ASCII letters: the other case, and non-ASCII scalars of their class (K for k, ſ for s).
            guard scalar.properties.isAlphabetic, let other = Unicode.Scalar(scalar.value ^ 0x20) else { return [scalar] }
            return [scalar, other] + (classes[fold(scalar).value] ?? [])
        }
        guard scalar.properties.changesWhenCaseMapped || classes[scalar.value] != nil else { return [scalar] }
        var all = classes[fold(scalar).value] ?? []
        let key = fold(scalar)
        if !all.contains(key) { all.append(key) }
        if key.isASCII, let other = Unicode.Scalar(key.value ^ 0x20), !all.contains(other) { all.append(other) }
        if !all.contains(scalar) { all.append(scalar) }
        return all
    }

    private static func single(_ text: String) -> Unicode.Scalar? {
        var iterator = text.unicodeScalars.makeIterator()
        guard let first = iterator.next(), iterator.next() == nil else { return nil }
        return first
    }
}
