/// Number formatting shared by the commands.
enum Format {
    /// `0x` and lowercase hex digits, no padding.
    static func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

    /// `value` in lowercase hex, zero-padded to `width` digits, without a prefix.
    static func paddedHex(_ value: UInt64, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// `text` right-aligned in `width` columns.
    static func right(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }

    /// `text` left-aligned in `width` columns.
    static func left(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(0, width - text.count))
    }

    /// Parses a non-negative number: `0x…` hex or decimal, `_` allowed between digits.
    static func parseUnsigned(_ text: some StringProtocol) -> UInt64? {
        guard let cleaned = text.withoutDigitSeparators() else { return nil }
        if cleaned.hasPrefix("0x") || cleaned.hasPrefix("0X") {
            let digits = cleaned.dropFirst(2)
            guard let first = digits.first, first.isHexDigit else { return nil }
            return UInt64(digits, radix: 16)
        }
        guard let first = cleaned.first, first.isASCII, first.isNumber else { return nil }
        return UInt64(cleaned, radix: 10)
    }
}

extension StringProtocol {
    /// The text without `_` digit separators, or `nil` when one is misplaced (first, last, doubled).
    fileprivate func withoutDigitSeparators() -> String? {
        guard contains("_") else { return String(self) }
        guard first != "_", last != "_", !contains("__") else { return nil }
        return String(filter { $0 != "_" })
    }
}
