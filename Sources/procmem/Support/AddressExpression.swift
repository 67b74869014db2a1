import ProcessMemory

/// An ADDRESS argument: a number (`0x7f00…` or decimal) or a region name with an optional offset
/// (`[heap]+0x10`, `[anon:procmem-pattern]`, `libc.so.6+0x1000`, `/usr/lib/x.so-8`).
///
/// Parsing needs only the text; resolving a region name needs the target's map. Both are pure.
struct AddressExpression: Sendable, Hashable {
    /// What the offset is added to.
    enum Base: Sendable, Hashable {
        /// A number.
        case absolute(UInt64)
        /// The start of the first region (lowest address) with this name: a bracketed pseudo-name
        /// such as `[heap]`, a path (contains `/`), or the last path component of a mapped file.
        case region(String)
    }

    /// Why an expression could not be parsed or resolved.
    struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        enum Kind: Sendable, Hashable {
            /// The text is not an address expression (a usage error).
            case malformed
            /// No region in the map has the name.
            case unknownRegion
            /// The offset takes the address below 0 or above 2^64 - 1.
            case outOfRange
        }
        var kind: Kind
        var message: String
        var description: String { message }
    }

    var base: Base
    /// For `lib-foo-2`, which reads as `lib-foo` minus 2: the whole text as a region name, which wins
    /// when a region has that name (write `lib-foo-2+0` or `lib-foo-0x2` to be explicit).
    var literalName: String?
    /// The offset's magnitude.
    var offset: UInt64 = 0
    /// The offset is subtracted rather than added.
    var isNegative = false

    /// Parses `text`; throws ``Failure/Kind/malformed`` with a message saying what is wrong.
    static func parse(_ text: String) throws(Failure) -> AddressExpression {
        let input = text.trimmingWhitespace
        guard !input.isEmpty else { throw malformed("the address is empty") }
        if input.hasPrefix("[") {
            guard let close = input.lastIndex(of: "]") else {
                throw malformed("'\(input)' has no closing ']' (write region names as [heap], [anon:NAME], …)")
            }
            let name = String(input[...close])
            guard name.count > 2 else { throw malformed("'\(input)' names no region between the brackets") }
            let rest = input[input.index(after: close)...]
            guard !rest.isEmpty else { return AddressExpression(base: .region(name)) }
            guard let sign = rest.first, sign == "+" || sign == "-" else {
                throw malformed("expected +OFFSET or -OFFSET after \(name), not '\(rest)'")
            }
            let offsetText = rest.dropFirst()
            guard let offset = Format.parseUnsigned(offsetText) else {
                throw malformed("'\(offsetText)' in '\(input)' is not an offset (write 0x10 or 16)")
            }
            return AddressExpression(base: .region(name), offset: offset, isNegative: sign == "-")
        }
        if let value = Format.parseUnsigned(input) { return AddressExpression(base: .absolute(value)) }
        var baseText = Substring(input)
        var expression = AddressExpression(base: .absolute(0))
        if let operatorIndex = input.lastIndex(where: { $0 == "+" || $0 == "-" }),
           let offset = Format.parseUnsigned(input[input.index(after: operatorIndex)...]) {
            baseText = input[..<operatorIndex]
            guard !baseText.isEmpty else {
                throw malformed("'\(input)' has an offset but no address or region before it")
            }
            expression.offset = offset
            expression.isNegative = input[operatorIndex] == "-"
        }
        if let value = Format.parseUnsigned(baseText) {
            expression.base = .absolute(value)
        } else if looksNumeric(baseText) {
            throw malformed("'\(baseText)' is not a number: write hexadecimal with 0x (at most 64 bits), decimal without")
        } else {
            expression.base = .region(String(baseText))
            if baseText.count < input.count { expression.literalName = input }
        }
        return expression
    }

    /// The absolute address in `map`; throws ``Failure/Kind/unknownRegion`` or ``Failure/Kind/outOfRange``.
    func resolve(in map: MemoryMap) throws(Failure) -> UInt64 {
        let start: UInt64
        switch base {
        case .absolute(let value): start = value
        case .region(let name):
            if let literalName, let region = map.regions.first(where: { Self.region($0, isNamed: literalName) }) {
                return region.start
            }
            guard let region = map.regions.first(where: { Self.region($0, isNamed: name) }) else {
                throw Failure(kind: .unknownRegion, message: "no region named \(name) is mapped")
            }
            start = region.start
        }
        let (result, overflow) = isNegative ? start.subtractingReportingOverflow(offset) : start.addingReportingOverflow(offset)
        guard !overflow else {
            throw Failure(kind: .outOfRange, message: "\(Format.hex(start)) \(isNegative ? "-" : "+") \(Format.hex(offset)) lies outside the 64-bit address range")
        }
        return result
    }

    /// Parses and resolves `text` against `map`.
    static func resolve(_ text: String, in map: MemoryMap) throws(Failure) -> UInt64 {
        try parse(text).resolve(in: map)
    }

    /// Whether `region` is called `name`: the same bracketed pseudo-name (`[stack]` also matches
    /// `[stack:TID]`), the same path when `name` contains `/`, otherwise the same last path component.
    static func region(_ region: MemoryRegion, isNamed name: String) -> Bool {
        guard let path = region.path else { return false }
        if name.hasPrefix("[") { return path == name || (name == "[stack]" && region.kind == .stack) }
        if name.contains("/") { return path == name }
        guard path.hasPrefix("/"), let slash = path.lastIndex(of: "/") else { return false }
        return path[path.index(after: slash)...] == name
    }

    private static func malformed(_ message: String) -> Failure { Failure(kind: .malformed, message: message) }

    /// Text that was meant as a number: it starts with `0x`, or it starts with a digit and holds only
    /// hex digits, `x` and `_`.
    private static func looksNumeric(_ text: Substring) -> Bool {
        if text.hasPrefix("0x") || text.hasPrefix("0X") { return true }
        guard let first = text.first, first.isASCII, first.isNumber else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isHexDigit || $0 == "x" || $0 == "X" || $0 == "_") }
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
