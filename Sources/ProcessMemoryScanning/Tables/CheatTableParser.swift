import ProcessMemoryCore

// The cheat-table reader: a strict subset of TOML (comments, `version = 1`, `[[entry]]` tables of
// `key = "string"` pairs; a bare number is accepted for `freeze`). Pure and bounded, so arbitrary
// bytes (Scripts/fuzz.sh, a damaged file) give a line-numbered failure, never a crash.

extension CheatTable {
    /// Lines longer than this are refused.
    static let maximumLineLength = 4096
    /// Entries per table at most.
    public static let maximumEntries = 10_000

    /// Parses a table's bytes (UTF-8).
    ///
    /// - Throws: ``Failure`` with the 1-based line and what is wrong there: not UTF-8, an unknown
    ///   key or section, a duplicate key or entry name, a malformed string, a missing `name`,
    ///   `address` or `type`, an unknown type, an address that does not parse, a freeze value that
    ///   does not fit the type, a line or a table too long.
    public init(parsing bytes: [UInt8]) throws(Failure) {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            var line = 1
            for byte in bytes {
                if byte == UInt8(ascii: "\n") { line += 1 }
                if byte >= 0x80 { break }
            }
            throw Failure(line: line, message: "the table is not UTF-8 text")
        }
        var entries: [Entry] = []
        var names = Set<String>()
        var current: (line: Int, fields: [String: (line: Int, value: String)])?
        var sawVersion = false

        func finish() throws(Failure) {
            guard let (start, fields) = current else { return }
            func field(_ key: String) throws(Failure) -> String {
                guard let found = fields[key] else { throw Failure(line: start, message: "this [[entry]] has no \(key)") }
                return found.value
            }
            let name = try field("name")
            guard !name.isEmpty else { throw Failure(line: fields["name"]?.line ?? start, message: "an entry's name cannot be empty") }
            guard !names.contains(name) else {
                throw Failure(line: fields["name"]?.line ?? start, message: "a second entry is named '\(name)'")
            }
            let typeText = try field("type")
            guard let type = ValueType(rawValue: typeText) else {
                throw Failure(line: fields["type"]?.line ?? start,
                              message: "unknown type '\(typeText)' (one of \(ValueType.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            let address = try field("address")
            do throws(Failure) {
                entries.append(try Entry(name: name, address: address, type: type, description: fields["description"]?.value,
                                         freeze: fields["freeze"]?.value))
            } catch {
                let key = error.message.contains("freeze value") ? "freeze" : "address"
                throw Failure(line: fields[key]?.line ?? start, message: error.message)
            }
            names.insert(name)
            current = nil
        }

        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            guard rawLine.utf8.count <= Self.maximumLineLength else {
                throw Failure(line: lineNumber, message: "the line is longer than \(Self.maximumLineLength) bytes")
            }
            var line = Substring(rawLine)
            if line.hasSuffix("\r") { line = line.dropLast() }
            line = Self.trimmed(line)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("[") {
                let header = Self.trimmed(Self.withoutComment(line))
                guard header == "[[entry]]" else {
                    throw Failure(line: lineNumber, message: "unknown section \(header.prefix(60)) (a table has only [[entry]] sections)")
                }
                try finish()
                guard entries.count < Self.maximumEntries else {
                    throw Failure(line: lineNumber, message: "a table holds at most \(Self.maximumEntries) entries")
                }
                current = (lineNumber, [:])
                continue
            }
            guard let equals = line.firstIndex(of: "=") else {
                throw Failure(line: lineNumber, message: "expected `key = \"value\"`, `[[entry]]` or a # comment")
            }
            let key = String(Self.trimmed(line[..<equals]))
            let value = try Self.value(Self.trimmed(line[line.index(after: equals)...]), line: lineNumber, bareNumber: key == "freeze" || key == "version")
            guard current != nil else {
                guard key == "version" else {
                    throw Failure(line: lineNumber, message: "'\(key.prefix(60))' comes before the first [[entry]] (only `version = 1` may)")
                }
                guard !sawVersion else { throw Failure(line: lineNumber, message: "version is given twice") }
                guard value == "1" else { throw Failure(line: lineNumber, message: "this procmem reads table version 1, not \(value.prefix(20))") }
                sawVersion = true
                continue
            }
            guard ["name", "address", "type", "description", "freeze"].contains(key) else {
                throw Failure(line: lineNumber, message: "unknown key '\(key.prefix(60))' (an entry has name, address, type, description, freeze)")
            }
            if let earlier = current?.fields[key] {
                throw Failure(line: lineNumber, message: "\(key) is given twice in this entry (first on line \(earlier.line))")
            }
            current?.fields[key] = (lineNumber, value)
        }
        try finish()
        self.init(entries: entries)
    }

    /// A value: a basic string `"…"` with TOML's escapes, or (for freeze and version) a bare
    /// number; a `# comment` may follow.
    private static func value(_ text: Substring, line: Int, bareNumber: Bool) throws(Failure) -> String {
        // By scalar, not Character: a value that starts with a combining mark (U+20E9) would
        // otherwise join the opening quote into one grapheme, and a written table would not read back.
        guard text.unicodeScalars.first == "\"" else {
            let bare = trimmed(withoutComment(text))
            if bareNumber, !bare.isEmpty, bare.allSatisfy({ $0.isHexDigit || "+-._xXoObBeEinfa".contains($0) }) {
                return String(bare)
            }
            throw Failure(line: line, message: "a value must be a \"quoted string\"\(bareNumber ? " or a number" : "")")
        }
        var out = String.UnicodeScalarView()
        var scalars = text.unicodeScalars.dropFirst()
        while let scalar = scalars.first {
            scalars = scalars.dropFirst()
            switch scalar {
            case "\"":
                let rest = trimmed(Substring(scalars))
                guard rest.isEmpty || rest.hasPrefix("#") else {
                    throw Failure(line: line, message: "unexpected text after the closing quote: \(rest.prefix(40))")
                }
                return String(out)
            case "\\":
                guard let escape = scalars.first else { break }
                scalars = scalars.dropFirst()
                switch escape {
                case "\"": out.append("\"")
                case "\\": out.append("\\")
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                case "b": out.append("\u{8}")
                case "f": out.append("\u{C}")
                case "u", "U":
                    let digits = escape == "u" ? 4 : 8
                    let hex = String(String.UnicodeScalarView(scalars.prefix(digits)))
                    guard hex.count == digits, let code = UInt32(hex, radix: 16), let decoded = Unicode.Scalar(code) else {
                        throw Failure(line: line, message: "\\\(escape) needs \(digits) hex digits of a Unicode scalar")
                    }
                    scalars = scalars.dropFirst(digits)
                    out.append(decoded)
                default:
                    throw Failure(line: line, message: "unknown escape \\\(escape) (use \\\" \\\\ \\n \\t \\r \\uXXXX)")
                }
            default:
                if scalar.value < 0x20 && scalar != "\t" || scalar.value == 0x7F {
                    throw Failure(line: line, message: "a control character in a string must be escaped (\\uXXXX)")
                }
                out.append(scalar)
            }
        }
        throw Failure(line: line, message: "the string has no closing quote")
    }

    private static func trimmed(_ text: Substring) -> Substring {
        var view = text
        while let first = view.first, first == " " || first == "\t" { view.removeFirst() }
        while let last = view.last, last == " " || last == "\t" { view.removeLast() }
        return view
    }

    private static func withoutComment(_ text: Substring) -> Substring {
        text.firstIndex(of: "#").map { text[..<$0] } ?? text
    }
}
