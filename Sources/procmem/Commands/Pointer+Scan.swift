import ArgumentParser
import Foundation
import Glibc
import ProcessMemory

extension Pointer {
    /// `procmem pointer scan PID TARGET [--depth N] [--max-offset N] [--max-results N]`.
    struct Scan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find pointer chains from static data to an address.",
            discussion: """
                Chains start in a module's static data: the writable file-backed mapping of the \
                executable or a library, or the anonymous writable mapping right after it (.bss), named \
                by the module's file name and the offset from its first mapping, so they survive ASLR. \
                Pointers are looked for in the writable private memory (static data, heap, anonymous \
                mappings; not stacks), read once into a sorted index; the search then goes backwards \
                from TARGET and lists every chain of at most --depth dereferences, each followed by an \
                offset of 0 to --max-offset, up to --max-results (then the summary says truncated). \
                The search finds the shortest chains first; the list is then ranked so that the \
                likely-stable chains come first: bases in the main executable before those in \
                libraries, then bases inside a named data symbol (game!g_world) before anonymous \
                offsets (not with --no-symbols), then chains whose hops stay inside the heap block \
                they point into (judged by glibc malloc's chunk headers, so only when glibc's malloc \
                is in use: with jemalloc, mimalloc, tcmalloc or musl mapped the summary says the rule \
                was left out), then fewer hops, then smaller offsets (their sum); ties keep the search's \
                order (offsets compared from the last hop back, then the base). The same process state \
                gives the same list.

                --module NAME (repeatable) keeps only chains whose base lies in that module (its file \
                name such as python3.11 or libc.so.6, a full path, or NAME! as in addresses). The \
                dynamic loader's own data (ld-linux-*.so*: _r_debug, the link_map list, _rtld_global) \
                reaches every module, so chains from it are noise and are left out unless \
                --include-loader is given or --module names the loader. Each chain is usable \
                with `procmem pointer resolve`; when its base lies inside a symbol of the module, two \
                spaces and `<module!symbol+0x10>` follow it (not with --no-symbols). --pointer-size 4 scans 4-byte pointers (a 32-bit \
                process), --endian big big-endian ones. --save FILE also writes the list with its \
                format and target, for `procmem pointer rescan`. A summary goes to stderr; a progress \
                line too when stderr is a terminal. Ctrl-C stops the indexing and prints what was \
                found (status 1, partial).

                --json prints {"pid":N,"target":"0x…","maxDepth":N,"maxOffset":"0x…","pointerSize":N,\
                "byteOrder":"little"|"big","chains":[{"chain":"…","module":"…","offset":"0x…",\
                "offsets":[N,…],"symbol":"module!symbol+0x10"}],"complete":BOOL,"truncated":BOOL,"incompleteReason":"…"|null,\
                "pointersIndexed":N,"nodesVisited":N,"bytesIndexed":N,"skipped":[{"start":"0x…",\
                "end":"0x…","path":"…"|null,"error":ERROR}]}; a chain's "symbol" names its base and is present \
                only when the base lies inside a symbol.
                """
        )

        @OptionGroup var processOption: ProcessOption

        var pid: Int32 { processOption.pid }

        @Argument(help: AddressArgument.help, transform: AddressArgument.parse)
        var target: AddressArgument

        @Option(help: "The most dereferences in a chain.")
        var depth: Int = 3

        @Option(help: ArgumentHelp("The largest offset after a dereference (0x hex or decimal).", valueName: "offset"),
                transform: Scan.parseOffset)
        var maxOffset: UInt64 = 0x1000

        @Option(help: "Stop after this many chains (the list is then truncated).")
        var maxResults: Int = 1000

        @Option(help: ArgumentHelp("Bytes per pointer: 8 (default) or 4.", valueName: "bytes"))
        var pointerSize: Int = 8

        @Option(help: ArgumentHelp("Byte order of pointers in memory: little (default) or big.", valueName: "order"))
        var endian: ScanByteOrder = .little

        @Option(help: ArgumentHelp("Also write the chains to this file, for `procmem pointer rescan`.", valueName: "file"), completion: .file())
        var save: String?

        @Option(name: .customLong("module"), help: ArgumentHelp("Only chains based in this module (file name, path or NAME!); repeatable.", valueName: "name"))
        var modules: [String] = []

        @Flag(help: "Also start chains in the dynamic loader's data (left out by default: it reaches everything).")
        var includeLoader = false

        @Flag(help: "Draw the progress line on stderr even when it is not a terminal.")
        var progress = false

        @OptionGroup var jsonOption: JSONOption

        var json: Bool { jsonOption.json }

        @OptionGroup var symbolsOption: SymbolsOption

        static func parseOffset(_ text: String) throws -> UInt64 {
            guard let value = Format.parseUnsigned(text), value <= 1 << 32 else {
                throw ValidationError("--max-offset must be a number up to 0x100000000, not '\(text)'")
            }
            return value
        }

        func validate() throws {
            guard (1...16).contains(depth) else { throw ValidationError("--depth must be 1...16") }
            guard maxResults >= 1 else { throw ValidationError("--max-results must be at least 1") }
            _ = try Pointer.format(size: pointerSize, endian: endian)
        }

        func run() throws {
            let handle = try TargetProcess.open(pid, rights: .read)
            defer { handle.close() }
            let names = SymbolNames(handle: handle, option: symbolsOption)
            let address = try TargetProcess.resolve(target, in: handle, names: names)
            var options = PointerScanOptions()
            options.maxDepth = depth
            options.maxOffset = maxOffset
            options.maxResults = maxResults
            options.format = try Pointer.format(size: pointerSize, endian: endian)
            options.baseModules = modules
            options.includeLoader = includeLoader
            Interruption.install()
            let reporter = ProgressReporter(label: "pointer scan", forced: progress)
            let result: PointerScanResult
            do {
                let label: ((UInt64) -> String?)? = names.namesOutput ? { names.label(for: $0) } : nil
                result = try handle.scanPointers(to: address, options: options, progress: { progress in
                    reporter.update(done: progress.bytesDone, total: progress.bytesTotal)
                }, cancellation: Interruption.cancellation, baseNames: label)
            } catch {
                reporter.finish()
                throw ErrorReporting.fail(error)
            }
            reporter.finish()
            if let save {
                let list = PointerChainList(format: options.format, target: address, chains: result.chains)
                try Pointer.write(list.text, to: save, pid: pid)
            }
            let bases = result.baseNames.count == result.chains.count ? result.baseNames : Self.baseNames(result.chains, handle: handle, names: names)
            if json {
                Output.line(JSONOutput.text(Self.report(result, pid: pid, options: options, baseNames: bases)))
            } else {
                Output.lines(result.chains.indices.map { index in
                    result.chains[index].description + (bases[index].map { "  <" + Format.printable($0) + ">" } ?? "")
                })
            }
            var summary = "\(result.chains.count) chain\(result.chains.count == 1 ? "" : "s") to \(Format.hex(address))"
            summary += " (depth ≤ \(depth), offsets ≤ \(Format.hex(maxOffset))"
            if options.format != .native { summary += ", \(options.format) pointers" }
            summary += "); \(result.pointersIndexed) pointers indexed in \(ProgressReporter.bytes(Double(result.bytesIndexed)))"
            if !result.skipped.isEmpty { summary += "; \(result.skipped.count) unreadable range(s) skipped" }
            if options.format == .native && !result.heapAllocator.hasGlibcChunkHeaders {
                summary += "; heap blocks not judged (\(result.heapAllocator == .unknown ? "no C library's malloc found" : result.heapAllocator.rawValue + "'s malloc"))"
            }
            if result.isTruncated {
                summary += "; truncated at --max-results \(maxResults)"
            } else if let reason = result.incompleteReason {
                summary += "; incomplete: \(reason)"
            }
            Output.error(summary)
            if result.incompleteReason == "cancelled" { throw ExitCode(ExitCodes.partial) }
        }

        /// The symbol holding each chain's base (`module!symbol+0x10`), or `nil`; the map is read
        /// once, and not at all with --no-symbols or without chains.
        static func baseNames(_ chains: [PointerChain], handle: ProcessHandle, names: SymbolNames) -> [String?] {
            guard names.namesOutput, !chains.isEmpty, let map = try? handle.memoryMap() else { return chains.map { _ in nil } }
            return chains.map { chain in (try? chain.baseAddress(in: map)).flatMap { names.label(for: $0) } }
        }

        static func report(_ result: PointerScanResult, pid: Int32, options: PointerScanOptions, baseNames: [String?]) -> Report {
            Report(
                pid: pid, target: Format.hex(result.target), maxDepth: options.maxDepth, maxOffset: Format.hex(options.maxOffset),
                pointerSize: options.format.size, byteOrder: options.format.byteOrder.rawValue,
                chains: result.chains.enumerated().map { index, chain in
                    var module: String?
                    var offset: String?
                    if case .region(let name, let start) = chain.base {
                        module = name
                        offset = Format.hex(UInt64(start.magnitude))
                    }
                    return Report.Chain(chain: chain.description, module: module, offset: offset, offsets: chain.offsets,
                                        symbol: baseNames.indices.contains(index) ? baseNames[index] : nil)
                },
                complete: result.isComplete, truncated: result.isTruncated, incompleteReason: result.incompleteReason,
                pointersIndexed: result.pointersIndexed, nodesVisited: result.nodesVisited, bytesIndexed: result.bytesIndexed,
                skipped: result.skipped.map { skip in
                    Report.Skip(start: Format.hex(skip.range.lowerBound), end: Format.hex(skip.range.upperBound),
                                path: skip.path, error: ErrorReport(skip.error))
                })
        }

        /// `--json`: the shape in the help above; a missing value is null.
        struct Report: Encodable {
            struct Chain: Encodable {
                var chain: String
                @NullWhenAbsent var module: String?
                @NullWhenAbsent var offset: String?
                var offsets: [Int64]
                var symbol: String?

                enum CodingKeys: String, CodingKey { case chain, module, offset, offsets, symbol }
            }
            struct Skip: Encodable {
                var start: String
                var end: String
                @NullWhenAbsent var path: String?
                var error: ErrorReport

                enum CodingKeys: String, CodingKey { case start, end, path, error }
            }
            var pid: Int32
            var target: String
            var maxDepth: Int
            var maxOffset: String
            var pointerSize: Int
            var byteOrder: String
            var chains: [Chain]
            var complete: Bool
            var truncated: Bool
            var incompleteReason: String?
            var pointersIndexed: Int
            var nodesVisited: Int
            var bytesIndexed: UInt64
            var skipped: [Skip]

            enum CodingKeys: String, CodingKey {
                case pid, target, maxDepth, maxOffset, pointerSize, byteOrder, chains, complete, truncated
                case incompleteReason, pointersIndexed, nodesVisited, bytesIndexed, skipped
            }
        }
    }
}
