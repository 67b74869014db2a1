/// The type of a value in another process's memory: how its bytes are decoded and how text is
/// encoded into bytes to write. `procmem`'s `--as TYPE`; the scanner's fixed-width types
/// (``ScanValueType``) are these.
///
/// Values are in the machine's native byte order (little endian on x86_64 and arm64). Pure: no
/// system call.
public enum ValueType: String, CaseIterable, Sendable, Hashable, Codable {
    /// Unsigned and signed integers of 1, 2, 4 and 8 bytes.
    case u8, i8, u16, i16, u32, i32, u64, i64
    /// IEEE 754 binary32 and binary64.
    case f32, f64
    /// UTF-8 text up to a NUL byte; it has no fixed size.
    case cstring

    /// Bytes per value; `nil` for ``cstring``, whose length is found by reading up to its NUL.
    public var size: Int? {
        switch self {
        case .u8, .i8: return 1
        case .u16, .i16: return 2
        case .u32, .i32, .f32: return 4
        case .u64, .i64, .f64: return 8
        case .cstring: return nil
        }
    }

    /// An integer type.
    public var isInteger: Bool { size != nil && !isFloatingPoint }

    /// `f32` or `f64`.
    public var isFloatingPoint: Bool { self == .f32 || self == .f64 }

    /// A signed integer type.
    public var isSigned: Bool { self == .i8 || self == .i16 || self == .i32 || self == .i64 }

    /// Why text could not be encoded as a value of the type.
    public struct EncodingFailure: Error, Sendable, Hashable, CustomStringConvertible {
        /// What is wrong, for a person.
        public var description: String
    }

    /// A decoded fixed-size value.
    public enum Decoded: Sendable, Hashable {
        /// An unsigned integer.
        case unsigned(UInt64)
        /// A signed integer.
        case signed(Int64)
        /// A floating-point number (an `f32` widened exactly).
        case floatingPoint(Double)
    }

    // MARK: decoding

    /// The value in `bytes`, which must hold exactly ``size`` bytes; `nil` otherwise and for ``cstring``.
    public func decode(_ bytes: [UInt8]) -> Decoded? {
        guard let size, bytes.count == size else { return nil }
        return bytes.withUnsafeBytes { raw -> Decoded? in
            switch self {
            case .u8: return .unsigned(UInt64(raw.loadUnaligned(as: UInt8.self)))
            case .u16: return .unsigned(UInt64(raw.loadUnaligned(as: UInt16.self)))
            case .u32: return .unsigned(UInt64(raw.loadUnaligned(as: UInt32.self)))
            case .u64: return .unsigned(raw.loadUnaligned(as: UInt64.self))
            case .i8: return .signed(Int64(raw.loadUnaligned(as: Int8.self)))
            case .i16: return .signed(Int64(raw.loadUnaligned(as: Int16.self)))
            case .i32: return .signed(Int64(raw.loadUnaligned(as: Int32.self)))
            case .i64: return .signed(raw.loadUnaligned(as: Int64.self))
            case .f32: return .floatingPoint(Double(raw.loadUnaligned(as: Float.self)))
            case .f64: return .floatingPoint(raw.loadUnaligned(as: Double.self))
            case .cstring: return nil
            }
        }
    }

    /// The value in `bytes` (exactly ``size`` of them) as text: decimal, or `0x…` zero-padded to the
    /// type's width when `hex` is set (signed values as their two's-complement bit pattern).
    /// Floating-point values use Swift's shortest exact form (`-25000000000.0`, `3.25`, `nan`); `?`
    /// when `bytes` has the wrong size.
    public func format(_ bytes: [UInt8], hex: Bool) -> String {
        guard let size, let decoded = decode(bytes) else { return "?" }
        let mask: UInt64 = size >= 8 ? .max : (1 << UInt64(size * 8)) - 1
        switch decoded {
        case .unsigned(let value): return hex ? Self.paddedHex(value, digits: size * 2) : String(value)
        case .signed(let value): return hex ? Self.paddedHex(UInt64(bitPattern: value) & mask, digits: size * 2) : String(value)
        case .floatingPoint(let value): return self == .f32 ? "\(Float(value))" : "\(value)"
        }
    }

    private static func paddedHex(_ value: UInt64, digits: Int) -> String {
        let text = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, digits - text.count)) + text
    }

    // MARK: encoding

    /// The bytes to write for `text`.
    ///
    /// Integers: decimal (`-5`), or hex (`0xfb`, which for signed types is the bit pattern); `_` may
    /// separate digits. Floats: anything Swift's `Double(_:)` accepts (`3.25`, `-2.5e10`, `0x1p3`,
    /// `inf`, `nan`). ``cstring``: the UTF-8 bytes followed by a NUL.
    public func encode(_ text: String) throws(EncodingFailure) -> [UInt8] {
        var view = Substring(text)
        while let first = view.first, first.isWhitespace { view.removeFirst() }
        while let last = view.last, last.isWhitespace { view.removeLast() }
        let input = String(view)
        switch self {
        case .cstring: return Array(text.utf8) + [0]
        case .f32:
            guard let value = Float(input) else { throw EncodingFailure(description: "'\(text)' is not an f32 value") }
            return Self.bytes(of: value)
        case .f64:
            guard let value = Double(input) else { throw EncodingFailure(description: "'\(text)' is not an f64 value") }
            return Self.bytes(of: value)
        default: break
        }
        guard let size else { throw EncodingFailure(description: "\(rawValue) has no fixed size") }
        let bits = UInt64(size * 8)
        let unsignedMax: UInt64 = bits >= 64 ? .max : (1 << bits) - 1
        let pattern: UInt64
        if input.hasPrefix("-") {
            guard isSigned else { throw EncodingFailure(description: "\(rawValue) cannot hold a negative value ('\(text)')") }
            guard let magnitude = AddressExpression.parseNumber(input.dropFirst()), magnitude <= 1 << (bits - 1) else {
                throw rangeFailure(text)
            }
            pattern = (0 &- magnitude) & unsignedMax
        } else {
            let isHex = input.hasPrefix("0x") || input.hasPrefix("0X")
            guard let value = AddressExpression.parseNumber(input) else {
                throw EncodingFailure(description: "'\(text)' is not a number (write 42, -5 or 0x2a)")
            }
            // Decimal must fit the signed range; hex is a bit pattern and may use every bit.
            let limit = isSigned && !isHex ? unsignedMax >> 1 : unsignedMax
            guard value <= limit else { throw rangeFailure(text) }
            pattern = value
        }
        switch size {
        case 1: return Self.bytes(of: UInt8(truncatingIfNeeded: pattern))
        case 2: return Self.bytes(of: UInt16(truncatingIfNeeded: pattern))
        case 4: return Self.bytes(of: UInt32(truncatingIfNeeded: pattern))
        default: return Self.bytes(of: pattern)
        }
    }

    private func rangeFailure(_ text: String) -> EncodingFailure {
        let range: String
        switch self {
        case .u8: range = "0...255"
        case .u16: range = "0...65535"
        case .u32: range = "0...4294967295"
        case .u64: range = "0...18446744073709551615"
        case .i8: range = "-128...127"
        case .i16: range = "-32768...32767"
        case .i32: range = "-2147483648...2147483647"
        case .i64: range = "-9223372036854775808...9223372036854775807"
        default: range = "its range"
        }
        return EncodingFailure(description: "'\(text)' does not fit in \(rawValue) (\(range), or hex up to the type's width)")
    }

    private static func bytes<T: BitwiseCopyable>(of value: T) -> [UInt8] {
        withUnsafeBytes(of: value) { Array($0) }
    }
}
