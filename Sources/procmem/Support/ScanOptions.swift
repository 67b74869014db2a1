import ArgumentParser
import ProcessMemory

extension ScanValueType: ExpressibleByArgument {}
extension ScanByteOrder: ExpressibleByArgument {}

/// The region options shared by `scan`: `--all`, `--perms`, `--kind`, `--path`, `--range`.
struct RegionOptions: ParsableArguments {
    @Flag(help: "Scan every readable region (default: writable private memory, like scanmem).")
    var all = false

    @Option(help: ArgumentHelp("Regions must have at least these permissions (r, w, x), e.g. rw or rx.", valueName: "perms"))
    var perms: String?

    @Option(help: ArgumentHelp("Comma-separated kinds: heap, stack, anonymous, file, executable.", valueName: "kinds"))
    var kind: String?

    @Option(help: ArgumentHelp("Regions whose path contains this text.", valueName: "substring"))
    var path: String?

    @Option(help: ArgumentHelp("Only addresses in START-END (0x hex or decimal; END exclusive).", valueName: "start-end"))
    var range: String?

    /// The library filter these options describe.
    func filter() throws -> RegionFilter {
        var filter = all ? RegionFilter.all : RegionFilter.default
        if let perms {
            var set: MemoryRegion.Permissions = []
            for character in perms {
                switch character {
                case "r": set.insert(.read)
                case "w": set.insert(.write)
                case "x": set.insert(.execute)
                case "-", "p", "s": break
                default: throw ValidationError("--perms takes letters r, w and x, not '\(perms)'")
                }
            }
            filter.permissions = set
            filter.includeShared = true
        }
        if let kind {
            var kinds = Set<RegionFilter.Kind>()
            for name in kind.split(separator: ",") {
                guard let value = RegionFilter.Kind(rawValue: name.trimmingWhitespace) else {
                    throw ValidationError("unknown --kind '\(name)': use \(RegionFilter.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                kinds.insert(value)
            }
            filter.kinds = kinds
            if !all && perms == nil { filter.permissions = [.read] }
        }
        filter.pathContains = path
        if path != nil && !all && perms == nil { filter.permissions = [.read] }
        if let range {
            let parts = range.split(separator: "-", maxSplits: 1)
            guard parts.count == 2, let start = Format.parseUnsigned(parts[0]), let end = Format.parseUnsigned(parts[1]), start < end else {
                throw ValidationError("--range takes START-END with START < END, e.g. 0x400000-0x500000, not '\(range)'")
            }
            filter.addressRange = start..<end
        }
        return filter
    }
}

extension Substring {
    var trimmingWhitespace: String { String(self).trimmingWhitespace }
}

/// Printing scan and rescan results: text lines or one JSON object.
enum ScanReport {
    /// Prints `result`: up to `maxMatches` matches, then the summary. `label` names the query.
    /// `keptAs` names the earlier generation the save kept (text only).
    /// `handle` (when given) rereads the shown matches of strings and byte patterns, which the
    /// set keeps only 8 bytes of, to print them as text.
    /// Matches inside a symbol are named by `names` (`0xADDR <module!symbol+0x10>: …`, or a
    /// `"symbol"` key in JSON).
    static func print(_ result: ScanResult, label: String, maxMatches: Int, savedTo: String?, keptAs: String? = nil,
                      handle: ProcessHandle? = nil, json: Bool, names: SymbolNames) {
        let set = result.matches
        let shown = min(set.count, maxMatches)
        let matched = handle.map { matchedBytes(set, shown: shown, handle: $0) } ?? []
        if json {
            Output.line(JSONOutput.text(JSONReport(
                pid: set.pid, query: label, content: contentName(set.content), matchCount: result.matchCount, reported: shown,
                matches: (0..<shown).map { match(set, $0, text: $0 < matched.count ? matched[$0].map(text(of:)) : nil, names: names) },
                regionsScanned: result.regionsScanned,
                bytesScanned: result.bytesScanned, bytesNotResident: result.bytesNotResident,
                skipped: result.skipped.map { JSONReport.Skip(start: Format.hex($0.start), end: Format.hex($0.end), path: $0.path,
                                                               reason: ErrorReport($0.reason)) },
                truncated: result.truncated, interrupted: result.interrupted, partial: result.isPartial,
                saved: savedTo, elapsedSeconds: result.elapsed)))
            return
        }
        var lines: [String] = []
        lines.reserveCapacity(shown + 8)
        for index in 0..<shown {
            let match = set[index]
            var value = valueText(set, index)
            if index < matched.count, let bytes = matched[index] { value = "\"" + terminalText(of: bytes) + "\" (" + value + ")" }
            lines.append("\(Format.hex(match.address))\(names.suffix(for: match.address)): \(value)  \(regionText(set.region(ofMatch: index)))")
        }
        if shown < result.matchCount { lines.append("… \(result.matchCount - shown) more matches not shown (--max-matches \(maxMatches))") }
        for skip in result.skipped {
            lines.append("skipped \(Format.hex(skip.start))-\(Format.hex(skip.end)) \(Format.printable(skip.path ?? "")): \(skip.reason.code.rawValue): \(Format.printable(skip.reason.message))")
        }
        let seconds = String(Int(result.elapsed * 1000)) + " ms"
        var summary = label == "snapshot"
            ? "snapshot of \(result.regionsScanned) regions (\(ProgressReporter.bytes(Double(result.bytesScanned))))"
            : "\(result.matchCount) matches for \(label) in \(result.regionsScanned) regions (\(ProgressReporter.bytes(Double(result.bytesScanned))))"
        summary += ", \(result.skipped.count) skipped, \(seconds)"
        if result.bytesNotResident > 0 { summary += "; \(ProgressReporter.bytes(Double(result.bytesNotResident))) not resident, not read" }
        if result.truncated { summary += "; stopped at the match limit (partial)" }
        if result.interrupted { summary += "; interrupted (partial)" }
        if set.isPartial && !result.truncated && !result.interrupted {
            summary += "; from an interrupted or truncated scan or snapshot (partial)"
        }
        if let savedTo { summary += "; saved to \(Format.printable(savedTo))" + (result.narrowedTo != nil ? " as a narrowed snapshot (too many to list)" : "") }
        if let keptAs, let savedTo {
            summary += " (the previous one kept as \(Format.printable(keptAs)); `procmem rescan --undo \(Format.printable(savedTo))` steps back)"
        }
        lines.append(summary)
        Output.lines(lines)
    }

    static func contentName(_ content: MatchSet.Content) -> String {
        switch content {
        case .values(let type, let order): return order == .big ? type.rawValue + "be" : type.rawValue
        case .bytes(let length): return "bytes[\(length)]"
        }
    }

    static func valueText(_ set: MatchSet, _ index: Int) -> String {
        let match = set[index]
        if let number = set.number(ofMatch: index) {
            if case .values(.anyInt, _) = set.content { return "\(number) (\(match.width * 8)-bit)" }
            return number.description
        }
        let shown = min(match.width, 8)
        let hexText = (0..<shown).map { Format.paddedHex((match.bits >> (8 * UInt64($0))) & 0xFF, width: 2) }.joined(separator: " ")
        if case .bytes(let length) = set.content, length > 8 { return hexText + " …" }
        return hexText
    }

    static func regionText(_ region: MatchSet.Region?) -> String {
        guard let region else { return "" }
        return "[\(Format.hex(region.start))-\(Format.hex(region.end)) \(region.permissions)\(region.path.map { " " + Format.printable($0) } ?? "")]"
    }

    /// The bytes of each of the first `shown` matches of a set of strings or byte patterns, read
    /// again from the process (up to 256 bytes each); nil for value sets and matches that can no
    /// longer be read.
    static func matchedBytes(_ set: MatchSet, shown: Int, handle: ProcessHandle) -> [[UInt8]?] {
        guard case .bytes(let length) = set.content, shown > 0 else { return [] }
        let count = min(length, 256)
        return (0..<shown).map { index in
            guard let bytes = try? handle.read(from: set[index].address, count: count), bytes.count == count else { return nil }
            return bytes
        }
    }

    /// Whether `bytes` look like ASCII text in UTF-16LE: an even length of at least 4, every odd byte 0.
    static func isUTF16Text(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 4 && bytes.count % 2 == 0 && stride(from: 1, to: bytes.count, by: 2).allSatisfy { bytes[$0] == 0 }
    }

    /// Bytes as text for `--json`: UTF-16LE decoded when ``isUTF16Text(_:)``, else UTF-8 with
    /// U+FFFD for bytes that are not UTF-8 (JSON escapes control characters itself).
    static func text(of bytes: [UInt8]) -> String {
        if isUTF16Text(bytes) {
            return String(decoding: stride(from: 0, to: bytes.count, by: 2).map { UInt16(bytes[$0]) }, as: UTF16.self)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Bytes as text for a terminal: valid UTF-8 (or ASCII UTF-16LE) as text with control
    /// characters and backslashes escaped (``Format/printable(_:)``), other bytes as `\xNN`.
    static func terminalText(of bytes: [UInt8]) -> String {
        if isUTF16Text(bytes) { return Format.printable(text(of: bytes)) }
        var out = ""
        var index = 0
        while index < bytes.count {
            // The longest valid UTF-8 sequence starting here (1…4 bytes), else one escaped byte.
            var taken = false
            for width in stride(from: min(4, bytes.count - index), through: 1, by: -1) {
                if let piece = String(validating: bytes[index..<(index + width)], as: UTF8.self) {
                    out += Format.printable(piece)
                    index += width
                    taken = true
                    break
                }
            }
            if !taken {
                out += "\\x" + Format.paddedHex(UInt64(bytes[index]), width: 2)
                index += 1
            }
        }
        return out
    }

    /// One match for `--json`: its value as a number when it has one, else as text; for strings
    /// and byte patterns also `text`, the bytes read again as text; `symbol` when it lies inside one.
    static func match(_ set: MatchSet, _ index: Int, text: String? = nil, names: SymbolNames) -> JSONReport.Match {
        let match = set[index]
        var value: JSON = .string(valueText(set, index))
        switch set.number(ofMatch: index) {
        case .integer(let number)?:
            if let exact = Int64(exactly: number) { value = .int(exact) } else if let exact = UInt64(exactly: number) { value = .uint(exact) }
        case .floatingPoint(let number)?: value = .double(number)
        case nil: break
        }
        let region = set.region(ofMatch: index).map { region in
            JSONReport.Region(start: Format.hex(region.start), end: Format.hex(region.end),
                              perms: region.permissions.description, path: region.path)
        }
        return JSONReport.Match(address: Format.hex(match.address), width: match.width, value: value, text: text, region: region,
                                symbol: names.label(for: match.address))
    }

    /// `scan` and `rescan --json`: the shape in `procmem scan --help`; a missing value is null.
    struct JSONReport: Encodable {
        struct Region: Encodable {
            var start: String
            var end: String
            var perms: String
            @NullWhenAbsent var path: String?

            enum CodingKeys: String, CodingKey { case start, end, perms, path }
        }
        struct Match: Encodable {
            var address: String
            var width: Int
            var value: JSON
            /// Strings and byte patterns only: the matched bytes as text (the value stays hex).
            var text: String?
            @NullWhenAbsent var region: Region?
            var symbol: String?

            enum CodingKeys: String, CodingKey { case address, width, value, text, region, symbol }
        }
        struct Skip: Encodable {
            var start: String
            var end: String
            @NullWhenAbsent var path: String?
            var reason: ErrorReport

            enum CodingKeys: String, CodingKey { case start, end, path, reason }
        }
        var pid: Int32
        var query: String
        var content: String
        var matchCount: Int
        var reported: Int
        var matches: [Match]
        var regionsScanned: Int
        var bytesScanned: UInt64
        var bytesNotResident: UInt64
        var skipped: [Skip]
        var truncated: Bool
        var interrupted: Bool
        var partial: Bool
        var saved: String?
        var elapsedSeconds: Double

        enum CodingKeys: String, CodingKey {
            case pid, query, content, matchCount, reported, matches, regionsScanned, bytesScanned, bytesNotResident
            case skipped, truncated, interrupted, partial, saved, elapsedSeconds
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(pid, forKey: .pid)
            try container.encode(query, forKey: .query)
            try container.encode(content, forKey: .content)
            try container.encode(matchCount, forKey: .matchCount)
            try container.encode(reported, forKey: .reported)
            try container.encode(matches, forKey: .matches)
            try container.encode(regionsScanned, forKey: .regionsScanned)
            try container.encode(bytesScanned, forKey: .bytesScanned)
            try container.encode(bytesNotResident, forKey: .bytesNotResident)
            try container.encode(skipped, forKey: .skipped)
            try container.encode(truncated, forKey: .truncated)
            try container.encode(interrupted, forKey: .interrupted)
            try container.encode(partial, forKey: .partial)
            try container.encode(saved, forKey: .saved)
            try container.encode(JSON.double(elapsedSeconds), forKey: .elapsedSeconds)
        }
    }

    /// A progress callback that draws `reporter` with the done and total counts the scan reports
    /// (pair it with `Interruption.cancellation`).
    static func progress(_ reporter: ProgressReporter) -> (ScanProgress) -> Void {
        { progress in reporter.update(done: progress.bytesDone, total: progress.bytesTotal) }
    }
}
