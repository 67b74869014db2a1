/// Looks up names in an ``AddressExpression`` that no mapped region has, such as symbols
/// (`libc.so.6!malloc`, `player_health+0x10`).
///
/// Region names are tried first; a resolver is asked only for a name no region matches. Pass one to
/// ``AddressExpression/baseAddress(in:names:)`` or ``ProcessHandle/resolve(_:names:mode:)``.
public protocol AddressNameResolver {
    /// The address `name` stands for in the process whose map is `map`, or `nil` when this resolver
    /// does not know the name.
    func address(of name: String, in map: MemoryMap) -> UInt64?
}

/// An address as a user writes it: a number or a name, an optional offset, and optional pointer
/// hops: `0x7f00…`, `4096`, `[heap]+0x10`, `libc.so.6-8`, `game+0x4078 -> +0x18 -> +0x0`.
///
/// The base is a number (`0x` hex or decimal, `_` between digits) or a name. A name is first
/// matched against the map (see ``MemoryRegion/isNamed(_:)``): a bracketed pseudo-name (`[heap]`,
/// `[anon:NAME]`), a path (contains `/`), or the file name of a mapped file; it stands for the start
/// of the first (lowest) region with that name. A name no region has goes to an
/// ``AddressNameResolver``, if one is given. Each `-> OFFSET` hop (`+0x18`, `-8`, `16`) reads the
/// pointer at the current address (8 bytes, little endian) and adds the offset to it.
///
/// Parsing needs only the text; ``baseAddress(in:names:)`` needs the map; the hops need the process
/// (``ProcessHandle/resolve(_:names:mode:)``).
public struct AddressExpression: Sendable, Hashable, CustomStringConvertible {
    /// What the offset is added to.
    public enum Base: Sendable, Hashable {
        /// A number.
        case absolute(UInt64)
        /// A region name, or a name for an ``AddressNameResolver``.
        case name(String)
    }

    /// Why an expression could not be parsed or its base resolved.
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        /// The kinds of failure.
        public enum Kind: Sendable, Hashable {
            /// The text is not an address expression.
            case malformed
            /// No region has the name, and no resolver knew it.
            case unknownName
            /// The offset takes the address below 0 or above 2^64 - 1.
            case outOfRange
        }
        /// What went wrong.
        public var kind: Kind
        /// What went wrong, for a person.
        public var message: String
        /// The message.
        public var description: String { message }
    }

    /// What the offset is added to.
    public var base: Base
    /// For `lib-foo-2`, which reads as `lib-foo` minus 2: the whole text as a name, which wins when a
    /// region has that name (write `lib-foo-2+0` or `lib-foo-0x2` to be explicit).
    public var literalName: String?
    /// The offset's magnitude.
    public var offset: UInt64
    /// The offset is subtracted rather than added.
    public var isNegative: Bool
    /// The offset added after each pointer dereference, in order; empty for a plain address.
    public var hops: [Int64]

    /// Creates an expression from its parts.
    public init(base: Base, literalName: String? = nil, offset: UInt64 = 0, isNegative: Bool = false, hops: [Int64] = []) {
        self.base = base
        self.literalName = literalName
        self.offset = offset
        self.isNegative = isNegative
        self.hops = hops
    }

    /// The canonical text: `0x1000`, `[heap]+0x10`, `game+0x4078 -> +0x18 -> +0x0`.
    public var description: String {
        var text: String
        switch base {
        case .absolute(let value): text = "0x" + String(value, radix: 16)
        case .name(let name): text = name
        }
        if let literalName {
            text = literalName  // re-parses to this expression, keeping the whole-name reading
        } else if offset != 0 {
            text += (isNegative ? "-0x" : "+0x") + String(offset, radix: 16)
        }
        for hop in hops { text += " -> " + Self.signed(hop) }
        return text
    }

    /// Whether resolving needs the map: the base is a name.
    public var needsMap: Bool {
        if case .name = base { return true }
        return false
    }

    // MARK: parsing

    /// Parses `text`: a base, then any number of `-> OFFSET` hops.
    ///
    /// - Throws: ``Failure/Kind/malformed`` with a message saying which part is wrong.
    public static func parse(_ text: String) throws(Failure) -> AddressExpression {
        let parts = text.split(separator: "->", omittingEmptySubsequences: false)
        guard let first = parts.first else { throw malformed("the address is empty") }
        if parts.count > 1 && trimmed(first).isEmpty {
            throw malformed("the pointer chain '\(trimmed(Substring(text)))' has no base before its first ->")
        }
        var expression = try parseBase(trimmed(first))
        if expression.offset == 0 { expression.isNegative = false }  // `-0` is `+0`: one value, one text
        for (index, part) in parts.dropFirst().enumerated() {
            guard let offset = parseOffset(part) else {
                throw malformed("hop \(index + 1) of '\(trimmed(Substring(text)))': '\(trimmed(part))' is not an offset (write +0x10, -8 or 16)")
            }
            expression.hops.append(offset)
        }
        return expression
    }

    private static func parseBase(_ input: Substring) throws(Failure) -> AddressExpression {
        guard !input.isEmpty else { throw malformed("the address is empty") }
        if input.hasPrefix("[") {
            guard let close = input.lastIndex(of: "]") else {
                throw malformed("'\(input)' has no closing ']' (write region names as [heap], [anon:NAME], …)")
            }
            let name = String(input[...close])
            guard name.count > 2 else { throw malformed("'\(input)' names no region between the brackets") }
            let rest = input[input.index(after: close)...]
            guard !rest.isEmpty else { return AddressExpression(base: .name(name)) }
            guard let sign = rest.first, sign == "+" || sign == "-" else {
                throw malformed("expected +OFFSET or -OFFSET after \(name), not '\(rest)'")
            }
            let offsetText = rest.dropFirst()
            guard let offset = parseNumber(offsetText) else {
                throw malformed("'\(offsetText)' in '\(input)' is not an offset (write 0x10 or 16)")
            }
            return AddressExpression(base: .name(name), offset: offset, isNegative: sign == "-")
        }
        if let value = parseNumber(input) { return AddressExpression(base: .absolute(value)) }
        var baseText = input
        var expression = AddressExpression(base: .absolute(0))
        if let operatorIndex = input.lastIndex(where: { $0 == "+" || $0 == "-" }),
           let offset = parseNumber(input[input.index(after: operatorIndex)...]) {
            baseText = input[..<operatorIndex]
            guard !baseText.isEmpty else {
                throw malformed("'\(input)' has an offset but no address or name before it")
            }
            expression.offset = offset
            expression.isNegative = input[operatorIndex] == "-"
        }
        if let value = parseNumber(baseText) {
            expression.base = .absolute(value)
        } else if looksNumeric(baseText) {
            throw malformed("'\(baseText)' is not a number: write hexadecimal with 0x (at most 64 bits), decimal without")
        } else {
            expression.base = .name(String(baseText))
            if baseText.count < input.count { expression.literalName = String(input) }
        }
        return expression
    }

    /// Parses a non-negative number: `0x…` hex or decimal, `_` allowed between digits; `nil` when
    /// malformed or above 2^64 - 1.
    public static func parseNumber(_ text: some StringProtocol) -> UInt64? {
        var cleaned = String(text)
        if cleaned.contains("_") {
            guard cleaned.first != "_", cleaned.last != "_", !cleaned.contains("__") else { return nil }
            cleaned = cleaned.filter { $0 != "_" }
        }
        if cleaned.hasPrefix("0x") || cleaned.hasPrefix("0X") {
            let digits = cleaned.dropFirst(2)
            guard let first = digits.first, first.isHexDigit else { return nil }
            return UInt64(digits, radix: 16)
        }
        guard let first = cleaned.first, first.isASCII, first.isNumber else { return nil }
        return UInt64(cleaned, radix: 10)
    }

    /// Parses one hop's offset: `+0x10`, `-0x10`, `0x10`, `16`, `-16` (whitespace around it and
    /// after the sign allowed); `nil` when malformed or beyond ±2^63.
    public static func parseOffset(_ text: Substring) -> Int64? {
        var body = trimmed(text)
        var negative = false
        if body.first == "+" || body.first == "-" {
            negative = body.first == "-"
            body = trimmed(body.dropFirst())
        }
        guard let magnitude = parseNumber(body) else { return nil }
        if negative { return magnitude <= UInt64(Int64.max) + 1 ? Int64(truncatingIfNeeded: 0 &- magnitude) : nil }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
    }

    // MARK: resolving

    /// The base plus the offset in `map`, before any hop; names no region has go to `names`.
    ///
    /// - Throws: ``Failure/Kind/unknownName`` or ``Failure/Kind/outOfRange``.
    public func baseAddress(in map: MemoryMap, names: (any AddressNameResolver)? = nil) throws(Failure) -> UInt64 {
        let start: UInt64
        switch base {
        case .absolute(let value): start = value
        case .name(let name):
            if let literalName {
                if let region = map.firstRegion(named: literalName) { return region.start }
                if let address = names?.address(of: literalName, in: map) { return address }
            }
            if let region = map.firstRegion(named: name) {
                start = region.start
            } else if let address = names?.address(of: name, in: map) {
                start = address
            } else {
                throw Failure(kind: .unknownName, message: names == nil ? "no region named \(name) is mapped"
                              : "no region named \(name) is mapped, and no mapped module defines a symbol of that name")
            }
        }
        let (result, overflow) = isNegative ? start.subtractingReportingOverflow(offset) : start.addingReportingOverflow(offset)
        guard !overflow else {
            throw Failure(kind: .outOfRange,
                          message: "0x\(String(start, radix: 16)) \(isNegative ? "-" : "+") 0x\(String(offset, radix: 16)) lies outside the 64-bit address range")
        }
        return result
    }

    /// `address + offset`, or `nil` when that leaves 0...2^64-1.
    public static func add(_ offset: Int64, to address: UInt64) -> UInt64? {
        let (result, overflow) = offset >= 0 ? address.addingReportingOverflow(UInt64(offset))
                                             : address.subtractingReportingOverflow(offset.magnitude)
        return overflow ? nil : result
    }

    /// `+0x10` or `-0x10`.
    public static func signed(_ offset: Int64) -> String {
        (offset < 0 ? "-0x" : "+0x") + String(offset.magnitude, radix: 16)
    }

    private static func malformed(_ message: String) -> Failure { Failure(kind: .malformed, message: message) }

    private static func trimmed(_ text: Substring) -> Substring {
        var view = text
        while let first = view.first, first.isWhitespace { view.removeFirst() }
        while let last = view.last, last.isWhitespace { view.removeLast() }
        return view
    }

    /// Text that was meant as a number: it starts with `0x`, or it starts with a digit and holds only
    /// hex digits, `x` and `_`.
    private static func looksNumeric(_ text: Substring) -> Bool {
        if text.hasPrefix("0x") || text.hasPrefix("0X") { return true }
        guard let first = text.first, first.isASCII, first.isNumber else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isHexDigit || $0 == "x" || $0 == "X" || $0 == "_") }
    }
}

extension MemoryRegion {
    /// Whether the region is called `name`: the same bracketed pseudo-name (`[stack]` also matches
    /// `[stack:TID]`), the same path when `name` contains `/`, otherwise the same file name (the
    /// last component of the path in `/proc/PID/maps`).
    public func isNamed(_ name: String) -> Bool {
        guard let path else { return false }
        if name.hasPrefix("[") { return path == name || (name == "[stack]" && kind == .stack) }
        if name.contains("/") { return path == name }
        guard path.hasPrefix("/"), let slash = path.lastIndex(of: "/") else { return false }
        return path[path.index(after: slash)...] == name
    }
}

extension MemoryMap {
    /// The first (lowest) region called `name` (see ``MemoryRegion/isNamed(_:)``).
    public func firstRegion(named name: String) -> MemoryRegion? {
        regions.first { $0.isNamed(name) }
    }
}
