import ArgumentParser

/// A value type for `--as`: how bytes are decoded for `read` and how `--value` is encoded for `write`.
///
/// Values are in the machine's native byte order (the target runs on the same machine).
enum ValueType: String, CaseIterable, Sendable, ExpressibleByArgument {
    case u8, i8, u16, i16, u32, i32, u64, i64, f32, f64, cstring

    /// Bytes per value; `nil` for `cstring`, whose length is found by reading up to its NUL.
    var size: Int? {
        switch self {
        case .u8, .i8: return 1
        case .u16, .i16: return 2
        case .u32, .i32, .f32: return 4
        case .u64, .i64, .f64: return 8
        case .cstring: return nil
        }
    }

    /// An integer type (so `--hex` applies).
    var isInteger: Bool { size != nil && !isFloatingPoint }

    var isFloatingPoint: Bool { self == .f32 || self == .f64 }

    var isSigned: Bool { self == .i8 || self == .i16 || self == .i32 || self == .i64 }

    /// Why a `--value` could not be encoded.
    struct EncodingFailure: Error, Sendable, CustomStringConvertible {
        var description: String
    }

    // MARK: decoding

    /// The value in `bytes` (exactly `size` of them) as text: decimal, or `0x…` zero-padded to the
    /// type's width when `hex` is set (signed values as their two's-complement bit pattern).
    /// Floating-point values use Swift's shortest exact form (`-25000000000.0`, `3.25`, `nan`).
    func format(_ bytes: [UInt8], hex: Bool) -> String {
        switch decode(bytes) {
        case .unsigned(let value, let width): return hex ? "0x" + Format.paddedHex(value, width: width * 2) : String(value)
        case .signed(let value, let width):
            if hex {
                let mask: UInt64 = width >= 8 ? .max : (1 << UInt64(width * 8)) - 1
                return "0x" + Format.paddedHex(UInt64(bitPattern: value) & mask, width: width * 2)
            }
            return String(value)
        case .float(let text, _): return text
        case .invalid: return "?"
        }
    }

    /// The value in `bytes` as JSON: a number (integers exactly, floats in shortest form; `null` for
    /// nan and infinities), or a `"0x…"` string when `hex` is set.
    func json(_ bytes: [UInt8], hex: Bool) -> JSON {
        if hex && isInteger { return .string(format(bytes, hex: true)) }
        switch decode(bytes) {
        case .unsigned(let value, _): return .uint(value)
        case .signed(let value, _): return .int(value)
        case .float(_, let value): return .double(value)
        case .invalid: return .null
        }
    }

    private enum Decoded {
        case unsigned(UInt64, width: Int)
        case signed(Int64, width: Int)
        case float(String, Double)
        case invalid
    }

    private func decode(_ bytes: [UInt8]) -> Decoded {
        guard let size, bytes.count == size else { return .invalid }
        return bytes.withUnsafeBytes { raw -> Decoded in
            switch self {
            case .u8: return .unsigned(UInt64(raw.loadUnaligned(as: UInt8.self)), width: 1)
            case .u16: return .unsigned(UInt64(raw.loadUnaligned(as: UInt16.self)), width: 2)
            case .u32: return .unsigned(UInt64(raw.loadUnaligned(as: UInt32.self)), width: 4)
            case .u64: return .unsigned(raw.loadUnaligned(as: UInt64.self), width: 8)
            case .i8: return .signed(Int64(raw.loadUnaligned(as: Int8.self)), width: 1)
            case .i16: return .signed(Int64(raw.loadUnaligned(as: Int16.self)), width: 2)
            case .i32: return .signed(Int64(raw.loadUnaligned(as: Int32.self)), width: 4)
            case .i64: return .signed(raw.loadUnaligned(as: Int64.self), width: 8)
            case .f32:
                let value = raw.loadUnaligned(as: Float.self)
                return .float("\(value)", Double(value))
            case .f64:
                let value = raw.loadUnaligned(as: Double.self)
                return .float("\(value)", value)
            case .cstring: return .invalid
            }
        }
    }

    // MARK: encoding

    /// The bytes to write for `text`.
    ///
    /// Integers: decimal (`-5`), or hex (`0xfb`, which for signed types is the bit pattern); `_` may
    /// separate digits. Floats: anything Swift's `Double(_:)` accepts (`3.25`, `-2.5e10`, `0x1p3`,
    /// `inf`, `nan`). `cstring`: the UTF-8 bytes followed by a NUL.
    func encode(_ text: String) throws(EncodingFailure) -> [UInt8] {
        let input = text.trimmingWhitespace
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
            guard let magnitude = Format.parseUnsigned(input.dropFirst()), magnitude <= 1 << (bits - 1) else {
                throw rangeFailure(text)
            }
            pattern = (0 &- magnitude) & unsignedMax
        } else {
            let isHex = input.hasPrefix("0x") || input.hasPrefix("0X")
            guard let value = Format.parseUnsigned(input) else {
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
