import ProcessMemory

/// The session's narrowing words, in scanmem's spirit:
///
/// | input | keeps |
/// |---|---|
/// | `VALUE` | the first time: a scan for VALUE; then the matches that equal it |
/// | `= N`, `!= N`, `< N`, `> N` (spaced or not: `<100`) | values equal to, other than, below, above N |
/// | `=`, `!=`, `<`, `>` alone | unchanged, changed, decreased, increased |
/// | `+N`, `-N` (after a scan or snapshot), `+ N`, `- N` | values that grew or shrank by exactly N |
/// | `+`, `-` alone | increased, decreased |
/// | `A..B` | values in the closed range |
/// | `changed`, `unchanged`, `increased` (`inc`), `decreased` (`dec`) | as named |
///
/// Before anything is found a bare `-5` is a value to scan for; afterwards it means "decreased
/// by 5" (narrow to the value -5 with `= -5`).
enum SessionFilters {
    /// A parsed filter: the predicate, how to show it, and for a bare value the value (which scans
    /// when there is nothing yet).
    struct Filter {
        var predicate: RescanPredicate
        var shown: String
        var scanValue: ScanValue?
    }

    /// A command word that is a filter by name or operator (`changed`, `= 5`, `<`).
    static func parse(_ words: [String], type: ScanValueType) throws -> RescanPredicate {
        let op = words[0].lowercased()
        let rest = words.dropFirst().joined()
        func value() throws -> ScanValue { try ScanValue(rest, as: type) }
        switch op {
        case "changed": return .changed
        case "unchanged": return .unchanged
        case "increased", "inc": return .increased
        case "decreased", "dec": return .decreased
        case "=", "==": return rest.isEmpty ? .unchanged : .equal(try value())
        case "!=": return rest.isEmpty ? .changed : .notEqual(try value())
        case "<": return rest.isEmpty ? .decreased : .lessThan(try value())
        case ">": return rest.isEmpty ? .increased : .greaterThan(try value())
        default: throw SessionUsage("'\(Format.printable(op))' is not a filter")
        }
    }

    /// Any other first word that is a filter: `+N`, `-N`, `<100`, `A..B`, a bare value. `nil` when
    /// the words are not a filter (an unknown command).
    static func parseShorthand(_ words: [String], type: ScanValueType, narrowing: Bool = true) throws -> Filter? {
        let text = words.joined(separator: " ")
        let joined = words.joined()
        guard let first = joined.first else { return nil }
        for op in ["!=", "==", "=", "<", ">"] where joined.hasPrefix(op) {
            return Filter(predicate: try parse([op, String(joined.dropFirst(op.count))], type: type), shown: text)
        }
        let parts = joined.split(separator: ".", omittingEmptySubsequences: false)
        if let dots = parts.indices.first(where: { $0 > 0 && parts[$0].isEmpty && $0 + 1 < parts.count }), parts.count >= 3 {
            // A..B: the split at "..", which leaves an empty part between (floats keep their own dot).
            let low = try ScanValue(parts[..<dots].joined(separator: "."), as: type)
            let high = try ScanValue(parts[(dots + 1)...].joined(separator: "."), as: type)
            return Filter(predicate: .inRange(low, high), shown: text)
        }
        if joined == "+" { return Filter(predicate: .increased, shown: text) }
        if joined == "-" { return Filter(predicate: .decreased, shown: text) }
        if (first == "+" || first == "-") && (narrowing || words.count > 1 && words[0].count == 1) {
            let amount = try ScanValue(String(joined.dropFirst()), as: type)
            return Filter(predicate: first == "+" ? .increasedBy(amount) : .decreasedBy(amount), shown: text)
        }
        guard words.count == 1, first.isNumber || first == "-" || first == "+" || first == "." || joined.lowercased().hasPrefix("inf") else {
            return nil
        }
        let value = try ScanValue(joined, as: type)
        return Filter(predicate: .equal(value), shown: joined, scanValue: value)
    }

    /// Match numbers: `0 3 5-7`, `0,3`.
    static func indices(_ words: [String]) throws -> [Int] {
        var out: [Int] = []
        for word in words {
            for part in word.split(separator: ",") {
                if let dash = part.firstIndex(of: "-"), dash != part.startIndex {
                    guard let low = Int(part[..<dash]), let high = Int(part[part.index(after: dash)...]), low <= high, high - low < 1_000_000 else {
                        throw SessionUsage("'\(Format.printable(String(part)))' is not a range of match numbers (write 5-7)")
                    }
                    out += Array(low...high)
                } else {
                    guard let index = Int(part), index >= 0 else {
                        throw SessionUsage("'\(Format.printable(String(part)))' is not a match number")
                    }
                    out.append(index)
                }
            }
        }
        return out
    }
}

/// Where an address lies, for `list` and `save`: `[heap]+0x2a0`, `game+0x4078` (from the module's
/// first mapping), or nothing.
enum SessionPlaces {
    static func describe(_ address: UInt64, in map: MemoryMap) -> String {
        expression(for: address, in: map) ?? ""
    }

    /// `NAME+0xOFF` for an address in a named region: a file's offset counts from the file's first
    /// mapping (so it survives ASLR), a bracketed region's from its own start. `nil` for anonymous memory.
    static func expression(for address: UInt64, in map: MemoryMap) -> String? {
        guard let region = map.regions.first(where: { $0.start <= address && address < $0.end }), let path = region.path else { return nil }
        if path.hasPrefix("[") {
            return path + "+" + Format.hex(address - region.start)
        }
        guard path.hasPrefix("/") else { return nil }
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let first = map.regions.first(where: { $0.path == path }) ?? region
        return name + "+" + Format.hex(address - first.start)
    }
}
