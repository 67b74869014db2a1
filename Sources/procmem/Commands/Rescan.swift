import ArgumentParser
import ProcessMemory

/// `procmem rescan FILE …`: narrow a saved match set, or compare a snapshot with the live process.
struct Rescan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Narrow a saved scan: keep the matches whose value now passes a test.",
        discussion: """
            FILE is a match file from `procmem scan … --save FILE`, or a snapshot from \
            `procmem scan PID --snapshot --as TYPE --save FILE`. It records the pid, the process's \
            start time (a file from another process, or an earlier one with the same pid, is \
            refused), the value type and the regions.

            Exactly one test: --eq V, --changed, --unchanged, --increased, --decreased, \
            --increased-by N, --decreased-by N, --range A B (inclusive). Changes are relative to \
            the values saved in FILE. Write negative numbers as --eq=-5.

            A match file of strings or byte patterns (`scan --string`/`--pattern`) takes: \
            --changed or --unchanged (any of the matched bytes differ, or none), --still-matches \
            (the saved string or pattern still matches there: with wildcards or --ignore-case the \
            bytes may have changed), or --string TEXT (with --utf16, --ignore-case) or --pattern HEX: \
            a new string or pattern now at the same addresses (the set then holds the new one).

            For a snapshot, --as TYPE, --endian and --unaligned choose what is compared (default: \
            what the snapshot recorded): any-int compares every width, 1, 2, 4 and 8, and an address \
            may match at several; --unaligned compares at every byte offset. Any-int values compare \
            as unsigned (--eq also matches a negative value's bit pattern). The result is a match \
            file, narrowed further by later rescans. When a comparison finds more matches than \
            fit in memory (over 1,048,576; 17 bytes each), it has no cap: the result is saved as a \
            narrowed snapshot instead, the pages that hold matches with a bitmap of the values still \
            matching (at most 4 bits per byte of memory), which later rescans narrow like a snapshot \
            (with the type and alignment it was narrowed with) until the matches fit in a list again; \
            --json's "matchCount" counts them all, "matches" lists the first ones.

            The narrowed set replaces FILE unless --save names another file or --no-save is given. \
            The set it replaces is kept, not destroyed: FILE.1 holds the previous generation, FILE.2 \
            the one before, up to --keep N (default 5; 0 keeps none), so a wrong filter can be \
            undone: `procmem rescan --undo FILE` steps back one generation (FILE.1 becomes FILE \
            again; `procmem undo FILE` is the same, and `procmem redo FILE` steps forward again until \
            a new rescan saves over FILE). A snapshot replaced by its first comparison is \
            kept the same way. A --save file that exists is kept as FILE.1 in the same way. \
            Output and --json are as for `procmem scan`. Ctrl-C stops the rescan, marked partial \
            (exit 1); a partial result is saved only to a --save file, never over FILE. A set or \
            snapshot that is itself partial (from an interrupted scan or snapshot) gives partial \
            results too: "partial": true, exit 1.
            """
    )

    @Argument(help: ArgumentHelp("A match or snapshot file.", valueName: "file"), completion: .file())
    var file: String

    @Option(help: ArgumentHelp("Keep values equal to V.", valueName: "v"))
    var eq: String?

    @Flag(help: "Keep values that changed.")
    var changed = false

    @Flag(help: "Keep values that did not change.")
    var unchanged = false

    @Flag(help: "Keep values that increased.")
    var increased = false

    @Flag(help: "Keep values that decreased.")
    var decreased = false

    @Option(help: ArgumentHelp("Keep values that increased by exactly N.", valueName: "n"))
    var increasedBy: String?

    @Option(help: ArgumentHelp("Keep values that decreased by exactly N.", valueName: "n"))
    var decreasedBy: String?

    @Option(parsing: .upToNextOption, help: ArgumentHelp("Keep values in the range A…B (inclusive).", valueName: "a b"))
    var range: [String] = []

    @Flag(help: "For strings and patterns: keep matches where the saved string or pattern still matches.")
    var stillMatches = false

    @Option(help: ArgumentHelp("For strings and patterns: keep matches where this text now lies.", valueName: "text"))
    var string: String?

    @Flag(help: "With --string: encode as UTF-16LE.")
    var utf16 = false

    @Flag(help: "With --string: letters match in either case (Unicode simple case folding).")
    var ignoreCase = false

    @Option(help: ArgumentHelp("For strings and patterns: keep matches where these bytes now lie (hex, ?? wildcards).", valueName: "hex"))
    var pattern: String?

    @Option(name: .customLong("as"), help: ArgumentHelp("For a snapshot: compare values of this type (default: the snapshot's).", valueName: "type"))
    var type: ScanValueType?

    @Option(help: ArgumentHelp("For a snapshot: byte order of the values (default: the snapshot's).", valueName: "order"))
    var endian: ScanByteOrder?

    @Flag(help: "For a snapshot: compare at every byte offset, not only aligned ones.")
    var unaligned = false

    @Option(help: ArgumentHelp("Save the narrowed set here (default: replace FILE).", valueName: "file"), completion: .file())
    var save: String?

    @Flag(help: "Do not save the narrowed set.")
    var noSave = false

    @Flag(help: "Step FILE back one generation (FILE.1 becomes FILE; as `procmem undo FILE`) instead of rescanning.")
    var undo = false

    @Option(help: ArgumentHelp("Keep this many earlier generations of the file saved to (FILE.1 … FILE.N).", valueName: "n"))
    var keep: Int = MatchFileGenerations.defaultLimit

    @Option(help: ArgumentHelp("Print at most this many matches.", valueName: "n"))
    var maxMatches: Int = 1000

    @OptionGroup var jsonOption: JSONOption

    var json: Bool { jsonOption.json }

    @OptionGroup var symbolsOption: SymbolsOption

    @Flag(help: "Draw the progress line on stderr even when it is not a terminal.")
    var progress = false

    @Option(help: .hidden)
    var chunkSize: Int = 4 << 20

    func validate() throws {
        if keep < 0 || keep > 1000 { throw ValidationError("--keep must be 0…1000") }
        if undo {
            let others = [eq != nil, changed, unchanged, increased, decreased, increasedBy != nil, decreasedBy != nil, !range.isEmpty,
                          stillMatches, string != nil, pattern != nil, save != nil, noSave, type != nil, endian != nil, unaligned]
            guard !others.contains(true) else { throw ValidationError("--undo takes only FILE (and --json)") }
            return
        }
        let tests = [eq != nil, changed, unchanged, increased, decreased, increasedBy != nil, decreasedBy != nil, !range.isEmpty,
                     stillMatches, string != nil, pattern != nil]
        guard tests.filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one test: --eq V, --changed, --unchanged, --increased, --decreased, --increased-by N, --decreased-by N, --range A B; for strings and patterns --still-matches, --string TEXT or --pattern HEX")
        }
        if (utf16 || ignoreCase) && string == nil { throw ValidationError("--utf16 and --ignore-case apply to --string") }
        if let string, string.isEmpty { throw ValidationError("--string needs a non-empty TEXT") }
        if !range.isEmpty && range.count != 2 { throw ValidationError("--range takes two values: A B") }
        if save != nil && noSave { throw ValidationError("--save and --no-save exclude each other") }
        if maxMatches < 0 { throw ValidationError("--max-matches must be 0 or more") }
        if chunkSize < 4096 || chunkSize > 1 << 30 { throw ValidationError("--chunk-size must be 4096…1 GiB") }
    }

    func predicate(type: ScanValueType, order: ScanByteOrder) throws(ProcessMemoryError) -> (RescanPredicate, String) {
        func value(_ text: String) throws(ProcessMemoryError) -> ScanValue {
            try ScanValue(text, as: type, byteOrder: order)
        }
        if let eq { return (.equal(try value(eq)), "values == \(eq)") }
        if changed { return (.changed, "changed values") }
        if unchanged { return (.unchanged, "unchanged values") }
        if increased { return (.increased, "increased values") }
        if decreased { return (.decreased, "decreased values") }
        if let increasedBy { return (.increasedBy(try value(increasedBy)), "values increased by \(increasedBy)") }
        if let decreasedBy { return (.decreasedBy(try value(decreasedBy)), "values decreased by \(decreasedBy)") }
        return (.inRange(try value(range[0]), try value(range[1])), "values in \(range[0])…\(range[1])")
    }

    /// The test for a set of strings or byte patterns.
    func bytePredicate(_ set: MatchSet) throws(ProcessMemoryError) -> (RescanPredicate, String) {
        if changed { return (.changed, "changed bytes") }
        if unchanged { return (.unchanged, "unchanged bytes") }
        if stillMatches {
            guard let saved = set.pattern else {
                throw ProcessMemoryError(.invalidArguments, message: "\(file) does not record its pattern; use --string or --pattern")
            }
            return (.matches(saved), "still matching")
        }
        if let string {
            let label = JSON.quoted(string) + (utf16 ? " (UTF-16LE)" : "") + (ignoreCase ? " (ignoring case)" : "")
            return (.matches(BytePattern(string: string, utf16: utf16, ignoreCase: ignoreCase)), label)
        }
        if let pattern { return (.matches(try BytePattern(hex: pattern)), "pattern " + pattern) }
        throw ProcessMemoryError(.invalidArguments, message: "\(file) holds strings or byte patterns, which have no value to compare; use --changed, --unchanged, --still-matches, --string TEXT or --pattern HEX")
    }

    /// `--undo`: FILE.1 becomes FILE again.
    func stepBack() throws {
        let generations = MatchFileGenerations(path: file, limit: keep)
        do {
            try MatchFileRedo(generations).undo()
        } catch {
            throw ErrorReporting.fail(error)
        }
        let left = (try? generations.earlier().count) ?? 0
        if json {
            Output.line(JSONOutput.text(UndoReport(file: file, earlierGenerations: left)))
        } else {
            Output.line("\(Format.printable(file)): stepped back one generation; \(left) earlier generation\(left == 1 ? "" : "s") left")
        }
    }

    /// `rescan --undo --json`: {"file","earlierGenerations"}.
    struct UndoReport: Encodable {
        var file: String
        var earlierGenerations: Int
    }

    func run() throws {
        if undo { return try stepBack() }
        let isSnapshot = MatchSet.isSnapshotFile(file)
        let previous: MatchSet?
        let pid: Int32
        var type = ScanValueType.u8
        var order = ScanByteOrder.little
        do throws(ProcessMemoryError) {
            if isSnapshot {
                let info = try SnapshotInfo(contentsOf: file)
                (previous, pid, type, order) = (nil, info.pid, self.type ?? info.type, endian ?? info.byteOrder)
            } else {
                let set = try MatchSet(contentsOf: file)
                if self.type != nil || endian != nil || unaligned {
                    throw ProcessMemoryError(.invalidArguments, message: "--as, --endian and --unaligned apply to snapshot files; \(file) is a match file, whose type is fixed")
                }
                (previous, pid) = (set, set.pid)
                if case .values(let t, let o) = set.content { (type, order) = (t, o) }
            }
        } catch {
            throw ErrorReporting.fail(error)
        }
        let test: RescanPredicate
        let label: String
        do throws(ProcessMemoryError) {
            if let previous, case .bytes = previous.content {
                (test, label) = try bytePredicate(previous)
            } else if stillMatches || string != nil || pattern != nil {
                throw ProcessMemoryError(.invalidArguments, message: "--still-matches, --string and --pattern apply to match files of strings or byte patterns; \(file) holds values")
            } else {
                (test, label) = try predicate(type: type, order: order)
            }
        } catch {
            Output.error("usage: " + error.message)
            throw ExitCode(ExitCodes.usage)
        }
        let handle = try TargetProcess.open(pid, rights: .read)
        defer { handle.close() }
        var options = ScanOptions()
        options.chunkSize = chunkSize
        let scanner = Scanner(handle: handle, options: options)
        Interruption.install()
        // A match set is reread match by match (counted in matches); a snapshot page by page (in bytes).
        let reporter = ProgressReporter(label: "rescan", total: UInt64(previous?.count ?? 0),
                                        unit: previous == nil ? .bytes : .items("matches"), forced: progress)
        let result: ScanResult
        let target = noSave ? nil : (save ?? file)
        do {
            if let previous {
                result = try scanner.rescan(previous, where: test, progress: ScanReport.progress(reporter),
                                             cancellation: Interruption.cancellation)
            } else {
                // Too many matches to list: the library saves them to the target as a narrowed snapshot.
                result = try scanner.compare(snapshotAt: file, where: test, as: type, byteOrder: order,
                                             aligned: unaligned ? false : nil,
                                             output: target.map { MatchFileGenerations(path: $0, limit: keep) }, keepPartial: save != nil,
                                             progress: ScanReport.progress(reporter), cancellation: Interruption.cancellation)
            }
            reporter.finish()
            // A partial result never replaces FILE: only a --save file receives it.
            if let target, result.narrowedTo == nil, !result.interrupted || save != nil {
                try MatchFileGenerations(path: target, limit: keep).save(result.matches)
            }
        } catch {
            reporter.finish()
            throw ErrorReporting.fail(error)
        }
        let savedTo = result.interrupted && save == nil ? nil : target
        let kept = savedTo.flatMap { path in try? MatchFileGenerations(path: path, limit: keep).earlier().first }
        ScanReport.print(result, label: label, maxMatches: maxMatches, savedTo: savedTo, keptAs: kept, handle: handle, json: json,
                         names: SymbolNames(handle: handle, option: symbolsOption))
        if result.isPartial { throw ExitCode(ExitCodes.partial) }
    }
}
