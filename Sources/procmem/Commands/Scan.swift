import ArgumentParser
import ProcessMemory

/// `procmem scan PID …`: find values, strings or byte patterns, or take a snapshot for an
/// unknown-initial-value search.
struct Scan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Search a process's memory for a value, string or byte pattern.",
        discussion: """
            One of: VALUE with --as TYPE (u8…u64, i8…i64, f32, f64, any-int); --string TEXT; \
            --pattern HEX (`48 8b ?? ?? 05`, nibble wildcards `4?`); or --snapshot with --as TYPE, \
            which saves the regions' current contents (all-zero pages compressed) to --save FILE for \
            `procmem rescan FILE --changed …` (like scanmem's `snapshot`). A snapshot holds pages, so \
            any type works, any-int included (a match is an address and a width, 1, 2, 4 or 8, for \
            which the test holds), and --unaligned compares at every byte offset; TYPE and \
            --unaligned are defaults that `procmem rescan FILE --as … --unaligned` may change.

            Values are aligned to their width unless --unaligned. Floating point matches within \
            --tolerance, or by default when it rounds to VALUE as written (3.25 matches 3.245…3.255). \
            Negative values can be written as they are: `procmem scan PID -5 --as i32` (a number right after an option such as --unaligned is read as that option's value, so put it before the options or after `--`).

            Regions: writable private memory by default, like scanmem; --all scans every readable \
            region; --perms, --kind, --path and --range narrow it. Regions that vanish or fail during \
            the scan are skipped and listed. --resident-only skips memory with no resident page \
            (/proc/PID/pagemap), so untouched sparse mappings are not faulted in.

            Each match prints `0xADDRESS: VALUE  [REGION]`, or `0xADDRESS <module!symbol+0x10>: VALUE  [REGION]` \
            when it lies inside a symbol of a mapped module (not with --no-symbols); a string or pattern match prints its \
            bytes as text, escaped for the terminal, then its first bytes in hex: \
            `0xADDRESS: "text" (74 65 78 74)  [REGION]`; after at most --max-matches lines a summary \
            follows (matches, regions, bytes, skipped, time). --save FILE keeps every match for \
            `procmem rescan`; a FILE that exists is kept as FILE.1 (see `procmem rescan --help`). Ctrl-C stops the scan and prints what was found, marked partial (exit 1); \
            --save still saves it, marked partial, for `procmem rescan`. Ctrl-C during --snapshot \
            closes the file after the pages taken so far, marked partial: comparing against it \
            covers those pages and is marked partial too. A second Ctrl-C exits at once (130). \
            The progress line is drawn on stderr when it is a terminal, or always with --progress.

            --json prints one object: {"pid","query","content","matchCount","reported",\
            "matches":[{"address","width","value","region":{"start","end","perms","path"},"symbol"}],\
            (strings and patterns: "value" is the hex of the first bytes and "text" the bytes as text) \
            "regionsScanned","bytesScanned","bytesNotResident","skipped":[{"start","end","path","reason":ERROR}],\
            "truncated","interrupted","partial","saved","elapsedSeconds"}; a match's "symbol" \
            (`module!symbol+0x10`) is present only when it lies inside a symbol.
            """
    )

    @OptionGroup var processOption: ProcessOption

    var pid: Int32 { processOption.pid }

    @Argument(help: ArgumentHelp("The value to look for (with --as).", valueName: "value"))
    var value: String?

    @Option(name: .customLong("as"), help: ArgumentHelp("Value type: u8, i8, u16, i16, u32, i32, u64, i64, f32, f64, any-int.", valueName: "type"))
    var type: ScanValueType?

    @Option(help: ArgumentHelp("Byte order of values in memory: little (default) or big.", valueName: "order"))
    var endian: ScanByteOrder = .little

    @Flag(help: "Look for values at every byte offset, not only aligned ones.")
    var unaligned = false

    @Option(help: ArgumentHelp("For f32/f64: the largest accepted difference.", valueName: "x"))
    var tolerance: Double?

    @Option(help: ArgumentHelp("Look for this text (UTF-8, or UTF-16LE with --utf16).", valueName: "text"))
    var string: String?

    @Flag(help: "With --string: encode as UTF-16LE.")
    var utf16 = false

    @Flag(help: "With --string: letters match in any case (Unicode simple case folding, per character).")
    var ignoreCase = false

    @Option(help: ArgumentHelp("Look for these bytes: hex, ?? for any byte, 4? for a nibble.", valueName: "hex"))
    var pattern: String?

    @Flag(help: "Save a snapshot for an unknown-initial-value search (needs --as and --save).")
    var snapshot = false

    @OptionGroup var regions: RegionOptions

    @Option(help: ArgumentHelp("Save the matches (or the snapshot) to this file.", valueName: "file"), completion: .file())
    var save: String?

    @Option(help: ArgumentHelp("Print at most this many matches (all are saved).", valueName: "n"))
    var maxMatches: Int = 1000

    @Flag(help: "Skip memory with no resident or swapped page (/proc/PID/pagemap): never fault in untouched memory.")
    var residentOnly = false

    @Option(help: .hidden)
    var chunkSize: Int = 4 << 20

    @Flag(help: "Draw the progress line on stderr even when it is not a terminal.")
    var progress = false

    @OptionGroup var jsonOption: JSONOption

    var json: Bool { jsonOption.json }

    @OptionGroup var symbolsOption: SymbolsOption

    func validate() throws {
        let modes = [value != nil || (type != nil && !snapshot), string != nil, pattern != nil, snapshot].filter { $0 }.count
        guard modes == 1 else {
            throw ValidationError("give exactly one of: VALUE --as TYPE, --string TEXT, --pattern HEX, --snapshot --as TYPE")
        }
        if value != nil && type == nil { throw ValidationError("VALUE needs --as TYPE (u8…u64, i8…i64, f32, f64, any-int)") }
        if snapshot && type == nil { throw ValidationError("--snapshot needs --as TYPE") }
        if snapshot && save == nil { throw ValidationError("--snapshot needs --save FILE: the snapshot is kept on disk") }
        if (utf16 || ignoreCase) && string == nil { throw ValidationError("--utf16 and --ignore-case apply to --string") }
        if tolerance != nil && !(type?.isFloatingPoint ?? false) { throw ValidationError("--tolerance applies to --as f32 or f64") }
        if maxMatches < 0 { throw ValidationError("--max-matches must be 0 or more") }
        if chunkSize < 4096 || chunkSize > 1 << 30 { throw ValidationError("--chunk-size must be 4096…1 GiB") }
        if let string, string.isEmpty { throw ValidationError("--string needs a non-empty TEXT") }
        _ = try regions.filter()
    }

    func run() throws {
        let query: ScanQuery?
        let label: String
        do {
            if let string {
                query = .pattern(BytePattern(string: string, utf16: utf16, ignoreCase: ignoreCase))
                label = JSON.quoted(string) + (utf16 ? " (UTF-16LE)" : "") + (ignoreCase ? " (ignoring case)" : "")
            } else if let pattern {
                query = .pattern(try BytePattern(hex: pattern))
                label = "pattern " + pattern
            } else if let value, let type {
                query = .value(try ScanValue(value, as: type, byteOrder: endian, tolerance: tolerance))
                label = "\(type.rawValue) \(value)" + (endian == .big ? " (big endian)" : "")
            } else {
                query = nil
                label = "snapshot"
            }
        } catch {
            Output.error("usage: " + error.message)
            throw ExitCode(ExitCodes.usage)
        }
        let handle = try TargetProcess.open(pid, rights: .read)
        defer { handle.close() }
        let scanner = Scanner(handle: handle, options: ScanOptions(regions: try regions.filter(), chunkSize: chunkSize,
                                                                   aligned: !unaligned, residentOnly: residentOnly))
        Interruption.install()
        let reporter = ProgressReporter(label: snapshot ? "snapshot" : "scan", forced: progress)
        defer { reporter.finish() }
        let result: ScanResult
        do {
            if let query {
                result = try scanner.scan(query, progress: ScanReport.progress(reporter),
                                             cancellation: Interruption.cancellation)
                // An existing file is kept as FILE.1 (FILE.2 …), as rescan does.
                if let save { try MatchFileGenerations(path: save).save(result.matches) }
            } else {
                result = try scanner.snapshot(as: type ?? .u32, byteOrder: endian, to: save ?? "",
                                              keepingGenerations: MatchFileGenerations.defaultLimit, progress: ScanReport.progress(reporter),
                                             cancellation: Interruption.cancellation)
            }
        } catch {
            reporter.finish()
            throw ErrorReporting.fail(error)
        }
        reporter.finish()
        ScanReport.print(result, label: label, maxMatches: maxMatches, savedTo: save, handle: handle, json: json,
                         names: SymbolNames(handle: handle, option: symbolsOption))
        if result.isPartial { throw ExitCode(ExitCodes.partial) }
    }
}
