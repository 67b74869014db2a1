import ProcessMemory

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

    /// Parses a non-negative number: `0x…` hex or decimal, `_` allowed between digits (the rules of
    /// the library's ADDRESS expressions).
    static func parseUnsigned(_ text: some StringProtocol) -> UInt64? {
        AddressExpression.parseNumber(text)
    }
}

extension String {
    /// The string without leading and trailing whitespace.
    var trimmingWhitespace: String {
        var view = Substring(self)
        while let first = view.first, first.isWhitespace { view.removeFirst() }
        while let last = view.last, last.isWhitespace { view.removeLast() }
        return String(view)
    }
}
