import ProcessMemoryCore
// Pure value parsing and decoding for scans: no system calls, no SystemPackage, so the fuzz harness
// compiles it on its own (Scripts/fuzz.sh).

/// The type of the values a scan looks for.
public enum ScanValueType: String, Sendable, Hashable, CaseIterable, Codable {
    case u8, i8, u16, i16, u32, i32, u64, i64, f32, f64
    /// Any integer width (1, 2, 4 or 8 bytes) that can hold the value, like scanmem's `int`.
    case anyInt = "any-int"

    /// The fixed-width type this is, from the core's typed-value codec; `nil` for ``anyInt``.
    ///
    /// A switch, not `ValueType(rawValue:)`: width, sign and float tests run per match in rescans
    /// and match-file reads, where a string lookup was 6 % of a 16.8 M-match rescan's time.
    public var valueType: ValueType? {
        switch self {
        case .u8: .u8
        case .i8: .i8
        case .u16: .u16
        case .i16: .i16
        case .u32: .u32
        case .i32: .i32
        case .u64: .u64
        case .i64: .i64
        case .f32: .f32
        case .f64: .f64
        case .anyInt: nil
        }
    }

    /// Bytes per value; `nil` for ``anyInt``, whose matches each have their own width.
    public var width: Int? { valueType?.size }

    /// `f32` or `f64`.
    public var isFloatingPoint: Bool { valueType?.isFloatingPoint ?? false }

    /// A signed integer type.
    public var isSigned: Bool { valueType?.isSigned ?? false }

    /// The number stored for the type in match files.
    var code: UInt8 { UInt8(Self.allCases.firstIndex(of: self) ?? 0) + 1 }

    init?(code: UInt8) {
        guard code >= 1, Int(code) <= Self.allCases.count else { return nil }
        self = Self.allCases[Int(code) - 1]
    }
}

/// The byte order of the values in the target's memory.
public enum ScanByteOrder: String, Sendable, Hashable, CaseIterable, Codable {
    case little, big
}

/// A number decoded from target memory, comparable across integer and floating-point types.
public enum ScanNumber: Sendable, Hashable, CustomStringConvertible {
    case integer(Int128)
    case floatingPoint(Double)

    /// Decimal text (Swift's shortest form for floating point).
    public var description: String {
        switch self {
        case .integer(let value): return String(value)
        case .floatingPoint(let value): return "\(value)"
        }
    }

    var asDouble: Double {
        switch self {
        case .integer(let value): return Double(value)
        case .floatingPoint(let value): return value
        }
    }
}

/// Why a value, pattern or match file was rejected: a message for a person.
struct ScanInputFailure: Error, Sendable, Hashable {
    var message: String
}

/// A value to look for: its type, its byte order, and for floating point the tolerance.
///
/// Integers are matched exactly, by their bytes. Floating-point values match within
/// ``tolerance``; when none is given the rounding rule applies: a value matches when it rounds to
/// the number as written (`3.25` matches [3.245, 3.255]), and a number in exponent form matches exactly.
public struct ScanValue: Sendable, Hashable {
    /// The value's type.
    public let type: ScanValueType
    /// The byte order in the target's memory.
    public let byteOrder: ScanByteOrder
    /// The number as parsed.
    public let number: ScanNumber
    /// For floating point: the largest accepted distance from ``number``.
    public let tolerance: Double

    /// Parses `text` as a value of `type`: decimal, `-5`, `0x2a` (a bit pattern for signed types),
    /// `_` between digits; floating point as Swift's `Double(_:)` reads it. Not `nan`.
    static func parse(_ text: String, as type: ScanValueType, byteOrder: ScanByteOrder = .little,
                      tolerance: Double? = nil) -> Result<ScanValue, ScanInputFailure> {
        let input = text.filter { $0 != " " && $0 != "\t" }
        guard !input.isEmpty, input.utf8.count <= 400 else {
            return .failure(ScanInputFailure(message: "'\(text.prefix(40))' is not a value"))
        }
        if let tolerance, !(tolerance >= 0 && tolerance.isFinite) {
            return .failure(ScanInputFailure(message: "a tolerance must be a finite number ≥ 0"))
        }
        if type.isFloatingPoint {
            guard let value = Double(input), !value.isNaN else {
                return .failure(ScanInputFailure(message: "'\(text)' is not a \(type.rawValue) value (write 3.25, -2.5e10 or inf)"))
            }
            if type == .f32, value.isFinite, !Float(value).isFinite {
                return .failure(ScanInputFailure(message: "'\(text)' is too large for f32"))
            }
            return .success(ScanValue(type: type, byteOrder: byteOrder, number: .floatingPoint(value),
                                      tolerance: tolerance ?? Self.roundingTolerance(input)))
        }
        guard tolerance == nil else {
            return .failure(ScanInputFailure(message: "--tolerance applies to f32 and f64 only"))
        }
        guard let number = parseInteger(input) else {
            return .failure(ScanInputFailure(message: "'\(text)' is not an integer (write 42, -5 or 0x2a)"))
        }
        let value = ScanValue(type: type, byteOrder: byteOrder, number: .integer(number), tolerance: 0)
        if value.widths.isEmpty {
            return .failure(ScanInputFailure(message: "'\(text)' does not fit in \(type.rawValue)"))
        }
        return .success(value)
    }

    init(type: ScanValueType, byteOrder: ScanByteOrder, number: ScanNumber, tolerance: Double) {
        self.type = type
        self.byteOrder = byteOrder
        self.number = number
        self.tolerance = tolerance
    }

    /// Half a unit of the last decimal written: `3.25` → 0.005, `7` → 0.5; exponent or hex forms: 0.
    static func roundingTolerance(_ text: String) -> Double {
        let lower = text.lowercased()
        if lower.contains("e") || lower.contains("x") || lower.contains("inf") { return 0 }
        guard let dot = lower.firstIndex(of: ".") else { return 0.5 }
        let decimals = lower[lower.index(after: dot)...].filter(\.isNumber).count
        var unit = 0.5
        for _ in 0..<min(decimals, 300) { unit /= 10 }
        return unit
    }

    /// Decimal, `-decimal`, or `0x` hex, with `_` separators; up to 64 bits of magnitude.
    static func parseInteger(_ text: String) -> Int128? {
        var body = Substring(text.replacingUnderscores)
        var negative = false
        if body.hasPrefix("-") { negative = true; body = body.dropFirst() } else if body.hasPrefix("+") { body = body.dropFirst() }
        let magnitude: UInt64?
        if body.hasPrefix("0x") || body.hasPrefix("0X") {
            magnitude = UInt64(body.dropFirst(2), radix: 16)
        } else {
            magnitude = UInt64(body, radix: 10)
        }
        guard let magnitude, !body.isEmpty else { return nil }
        return negative ? -Int128(magnitude) : Int128(magnitude)
    }

    /// The widths an integer is looked for at: the type's, or for ``ScanValueType/anyInt`` every
    /// width whose signed or unsigned range holds it. Hex input is a bit pattern for signed types.
    var widths: [Int] {
        guard case .integer(let value) = number else { return type.width.map { [$0] } ?? [] }
        let candidates = type.width.map { [$0] } ?? [1, 2, 4, 8]
        return candidates.filter { width in
            let bits = Int128(width * 8)
            let unsignedMax = (Int128(1) << bits) - 1
            let signedMin = -(Int128(1) << (bits - 1))
            if type == .anyInt { return value >= signedMin && value <= unsignedMax }
            if type.isSigned { return value >= signedMin && value <= unsignedMax }
            return value >= 0 && value <= unsignedMax
        }
    }

    /// The bytes of an integer value at `width`, in ``byteOrder``.
    func integerBytes(width: Int) -> [UInt8] {
        guard case .integer(let value) = number else { return [] }
        let pattern = UInt64(truncatingIfNeeded: value)
        var bytes = (0..<width).map { UInt8(truncatingIfNeeded: pattern >> (8 * UInt64($0))) }
        if byteOrder == .big { bytes.reverse() }
        return bytes
    }

    /// Whether a floating-point number matches (never NaN).
    func matches(_ candidate: Double) -> Bool {
        guard case .floatingPoint(let target) = number, !candidate.isNaN else { return false }
        if target.isInfinite || candidate.isInfinite { return target == candidate }
        return abs(candidate - target) <= tolerance
    }
}

extension ScanNumber {
    /// Decodes `width` bytes held in the low bytes of `bits` (as they lie in memory, first byte lowest)
    /// as `type` in `order`; ``ScanValueType/anyInt`` decodes as unsigned.
    static func decode(bits: UInt64, width: Int, type: ScanValueType, order: ScanByteOrder) -> ScanNumber {
        let shift = UInt64(64 - 8 * max(1, min(width, 8)))
        var raw = bits & (UInt64.max >> shift)
        if order == .big { raw = raw.byteSwapped >> shift }
        switch type {
        case .f32: return .floatingPoint(Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw))))
        case .f64: return .floatingPoint(Double(bitPattern: raw))
        case .i8: return .integer(Int128(Int8(truncatingIfNeeded: raw)))
        case .i16: return .integer(Int128(Int16(truncatingIfNeeded: raw)))
        case .i32: return .integer(Int128(Int32(truncatingIfNeeded: raw)))
        case .i64: return .integer(Int128(Int64(bitPattern: raw)))
        default: return .integer(Int128(raw))
        }
    }

    /// `self` compared with `other`: -1, 0, 1, or nil when unordered (NaN).
    func compare(_ other: ScanNumber) -> Int? {
        switch (self, other) {
        case (.integer(let a), .integer(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        default:
            let (a, b) = (asDouble, other.asDouble)
            if a.isNaN || b.isNaN { return nil }
            return a < b ? -1 : (a == b ? 0 : 1)
        }
    }

    /// `self - other`, exact for integers.
    func difference(_ other: ScanNumber) -> ScanNumber {
        switch (self, other) {
        case (.integer(let a), .integer(let b)): return .integer(a &- b)
        default: return .floatingPoint(asDouble - other.asDouble)
        }
    }
}

extension String {
    var replacingUnderscores: String { String(filter { $0 != "_" }) }
}
