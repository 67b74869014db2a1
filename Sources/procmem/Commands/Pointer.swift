import ArgumentParser
import Foundation
import Glibc
import ProcessMemory

/// `procmem pointer resolve|scan`: follow a pointer chain, or find chains from static data to an address.
struct Pointer: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Resolve pointer chains, scan for them, and narrow a saved list down.",
        discussion: """
            A chain is `BASE -> +OFF -> +OFF …`: start at BASE (an ADDRESS: 0x hex, decimal, or \
            REGION+OFFSET such as libfoo.so+0x1234), then for each `-> OFF` read the pointer at the \
            current address (8 bytes little endian; --pointer-size 4 and --endian big for other \
            layouts) and add OFF (+0x10, -8, 16). `libfoo.so+0x1234 -> +0x10 -> +0x8` reads \
            two pointers and ends at the second one plus 8. Cheat Engine's workflow: `scan` for many \
            candidate chains and --save them, restart the target, find the value's new address, then \
            `rescan` the saved list to keep the chains that still lead there; repeat.
            """,
        subcommands: [Resolve.self, Scan.self, Rescan.self]
    )

    /// `procmem pointer resolve PID CHAIN [--as TYPE]`.
    struct Resolve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow a pointer chain and print each hop and the address it ends at.",
            discussion: """
                Prints `base 0x…`, then one line per hop, `hop N: [0xADDR] = 0xPOINTER +OFF -> 0xNEXT`, \
                then the final address alone, or with --as `0xADDR: value`. When a hop cannot be read, \
                the hops before it are printed and the error names the hop, its address, the bytes that \
                could be read and why the read stopped; the exit status is that of the error's code.

                --json prints {"pid":N,"chain":"…","base":"0x…","hops":[{"hop":N,"address":"0x…",\
                "pointer":"0x…","offset":N,"next":"0x…"}],"address":"0x…"|null,"failure":null|\
                {"hop":N,"address":"0x…","bytes":"hex","error":ERROR}} and, with --as, "type" and "value".
                """
        )

        @OptionGroup var processOption: ProcessOption

        var pid: Int32 { processOption.pid }

        @Argument(help: ArgumentHelp("The chain, quoted: \"libfoo.so+0x1234 -> +0x10 -> +0x8\".", valueName: "chain"))
        var chain: String

        @Option(name: .customLong("as"), help: ArgumentHelp("Read a value of this type at the end of the chain.", valueName: "type"))
        var type: ValueType?

        @Flag(help: "With an integer --as type, print the value in hex.")
        var hex = false

        @OptionGroup var modeOption: ModeOption

        var mode: AccessModeOption { modeOption.mode }

        @Option(help: ArgumentHelp("Bytes per pointer: 8 (default) or 4.", valueName: "bytes"))
        var pointerSize: Int = 8

        @Option(help: ArgumentHelp("Byte order of pointers in memory: little (default) or big.", valueName: "order"))
        var endian: ScanByteOrder = .little

        @OptionGroup var jsonOption: JSONOption

        var json: Bool { jsonOption.json }

        func validate() throws {
            _ = try Pointer.format(size: pointerSize, endian: endian)
            _ = try parsed()
            if hex && !(type?.isInteger ?? false) { throw ValidationError("--hex needs an integer --as type") }
        }

        /// The base as an ADDRESS argument (without hops) and the offsets of the hops, parsed by the
        /// library's ``AddressExpression``.
        func parsed() throws -> (base: AddressArgument, offsets: [Int64]) {
            var base = try AddressArgument.parse(chain)
            let offsets = base.expression.hops
            base.expression.hops = []
            return (base, offsets)
        }

        func run() throws {
            let (baseArgument, offsets) = try parsed()
            let handle = try TargetProcess.open(pid, rights: .read)
            defer { handle.close() }
            let base = try TargetProcess.resolve(baseArgument, in: handle, mode: mode)
            let format = try Pointer.format(size: pointerSize, endian: endian)
            let trace: PointerChainTrace
            do {
                trace = try handle.trace(PointerChain(base: .address(base), offsets: offsets, format: format), mode: mode.readMode)
            } catch {
                throw ErrorReporting.fail(error, mode: mode)
            }
            var value: (text: String, json: JSON)?
            var valueError: ProcessMemoryError?
            if let address = trace.address, let type {
                (value, valueError) = readValue(handle, type: type, at: address)
            }
            if json {
                printJSON(trace, value: value?.json, valueError: valueError)
            } else {
                printText(trace, value: value?.text)
            }
            if let error = trace.error { throw ErrorReporting.fail(error, mode: mode) }
            if let valueError { throw ErrorReporting.fail(valueError, mode: mode) }
        }

        private func printText(_ trace: PointerChainTrace, value: String?) {
            var lines = ["base \(Format.hex(trace.base)) (\(PointerChain.hops(in: chain).first ?? ""))"]
            for (index, hop) in trace.hops.enumerated() {
                lines.append("hop \(index + 1): [\(Format.hex(hop.address))] = \(Format.hex(hop.pointer)) \(Self.signed(hop.offset)) -> \(Format.hex(hop.next))")
            }
            if let address = trace.address { lines.append(Format.hex(address) + (value.map { ": " + $0 } ?? "")) }
            Output.lines(lines)
        }

        private func printJSON(_ trace: PointerChainTrace, value: JSON?, valueError: ProcessMemoryError?) {
            var pairs: [(String, JSON)] = [
                ("pid", .int(Int64(pid))),
                ("chain", .string(chain)),
                ("base", .hex(trace.base)),
                ("hops", .array(trace.hops.enumerated().map { index, hop in
                    .object([("hop", .int(Int64(index + 1))), ("address", .hex(hop.address)), ("pointer", .hex(hop.pointer)),
                             ("offset", .int(hop.offset)), ("next", .hex(hop.next))])
                })),
                ("address", .optional(trace.address) { .hex($0) }),
                ("failure", .optional(trace.failure) { failure in
                    .object([("hop", .int(Int64(failure.hop))), ("address", .hex(failure.address)),
                             ("bytes", .string(failure.bytes.map { Format.paddedHex(UInt64($0), width: 2) }.joined())),
                             ("error", ErrorReporting.json(trace.error ?? failure.error))])
                }),
            ]
            if let type {
                pairs.append(("type", .string(type.rawValue)))
                pairs.append(("value", value ?? .null))
                pairs.append(("valueError", .optional(valueError) { ErrorReporting.json($0) }))
            }
            Output.line(JSON.object(pairs).text)
        }

        /// The value at the chain's end, as text and JSON, or the error that stopped its read.
        private func readValue(_ handle: ProcessHandle, type: ValueType, at address: UInt64) -> ((String, JSON)?, ProcessMemoryError?) {
            guard let size = type.size else {
                do {
                    let text = try handle.readCString(from: address, mode: mode.readMode)
                    return ((JSON.quoted(text), .string(text)), nil)
                } catch {
                    return (nil, error)
                }
            }
            do {
                let bytes = try handle.readExactly(from: address, count: size, mode: mode.readMode)
                return ((type.format(bytes, hex: hex), type.json(bytes, hex: hex)), nil)
            } catch {
                return (nil, error)
            }
        }

        static func signed(_ offset: Int64) -> String {
            (offset < 0 ? "-" : "+") + Format.hex(offset.magnitude)
        }
    }

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
                One chain per line: shortest first, then smallest offsets (compared from the last hop \
                back), then by base; the same process state gives the same list. Each line is usable \
                with `procmem pointer resolve`. --pointer-size 4 scans 4-byte pointers (a 32-bit \
                process), --endian big big-endian ones. --save FILE also writes the list with its \
                format and target, for `procmem pointer rescan`. A summary goes to stderr; a progress \
                line too when stderr is a terminal. Ctrl-C stops the indexing and prints what was \
                found (status 1, partial).

                --json prints {"pid":N,"target":"0x…","maxDepth":N,"maxOffset":"0x…","pointerSize":N,\
                "byteOrder":"little"|"big","chains":[{"chain":"…","module":"…","offset":"0x…",\
                "offsets":[N,…]}],"complete":BOOL,"truncated":BOOL,"incompleteReason":"…"|null,\
                "pointersIndexed":N,"nodesVisited":N,"bytesIndexed":N,"skipped":[{"start":"0x…",\
                "end":"0x…","path":"…"|null,"error":ERROR}]}.
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

        @Option(help: ArgumentHelp("Also write the chains to this file, for `procmem pointer rescan`.", valueName: "file"))
        var save: String?

        @OptionGroup var jsonOption: JSONOption

        var json: Bool { jsonOption.json }

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
            let address = try TargetProcess.resolve(target, in: handle)
            var options = PointerScanOptions()
            options.maxDepth = depth
            options.maxOffset = maxOffset
            options.maxResults = maxResults
            options.format = try Pointer.format(size: pointerSize, endian: endian)
            Interruption.install()
            var reporter: ProgressReporter?
            var reported: UInt64 = 0
            let result: PointerScanResult
            do {
                result = try handle.scanPointers(to: address, options: options) { done, total in
                    let progress = reporter ?? ProgressReporter(label: "pointer scan", total: total)
                    reporter = progress
                    progress.advance(by: done - reported)
                    reported = done
                    return !Interruption.requested
                }
            } catch {
                reporter?.finish()
                throw ErrorReporting.fail(error)
            }
            reporter?.finish()
            if let save {
                let list = PointerChainList(format: options.format, target: address, chains: result.chains)
                try Pointer.write(list.text, to: save, pid: pid)
            }
            if json {
                Output.line(Self.json(result, pid: pid, options: options).text)
            } else {
                Output.lines(result.chains.map(\.description))
            }
            var summary = "\(result.chains.count) chain\(result.chains.count == 1 ? "" : "s") to \(Format.hex(address))"
            summary += " (depth ≤ \(depth), offsets ≤ \(Format.hex(maxOffset))"
            if options.format != .native { summary += ", \(options.format) pointers" }
            summary += "); \(result.pointersIndexed) pointers indexed in \(ProgressReporter.bytes(Double(result.bytesIndexed)))"
            if !result.skipped.isEmpty { summary += "; \(result.skipped.count) unreadable range(s) skipped" }
            if result.isTruncated {
                summary += "; truncated at --max-results \(maxResults)"
            } else if let reason = result.incompleteReason {
                summary += "; incomplete: \(reason)"
            }
            Output.error(summary)
            if result.incompleteReason == "cancelled" { throw ExitCode(ExitCodes.partial) }
        }

        static func json(_ result: PointerScanResult, pid: Int32, options: PointerScanOptions) -> JSON {
            .object([
                ("pid", .int(Int64(pid))),
                ("target", .hex(result.target)),
                ("maxDepth", .int(Int64(options.maxDepth))),
                ("maxOffset", .hex(options.maxOffset)),
                ("pointerSize", .int(Int64(options.format.size))),
                ("byteOrder", .string(options.format.byteOrder.rawValue)),
                ("chains", .array(result.chains.map { chain in
                    var module: JSON = .null
                    var offset: JSON = .null
                    if case .region(let name, let start) = chain.base {
                        module = .string(name)
                        offset = .hex(UInt64(start.magnitude))
                    }
                    return .object([("chain", .string(chain.description)), ("module", module), ("offset", offset),
                                    ("offsets", .array(chain.offsets.map { .int($0) }))])
                })),
                ("complete", .bool(result.isComplete)),
                ("truncated", .bool(result.isTruncated)),
                ("incompleteReason", .optional(result.incompleteReason) { .string($0) }),
                ("pointersIndexed", .int(Int64(result.pointersIndexed))),
                ("nodesVisited", .int(Int64(result.nodesVisited))),
                ("bytesIndexed", .uint(result.bytesIndexed)),
                ("skipped", .array(result.skipped.map { skip in
                    .object([("start", .hex(skip.range.lowerBound)), ("end", .hex(skip.range.upperBound)),
                             ("path", .optional(skip.path) { .string($0) }), ("error", ErrorReporting.json(skip.error))])
                })),
            ])
        }
    }

    /// `procmem pointer rescan PID FILE (--target ADDRESS | --value VALUE --as TYPE) [--save FILE]`.
    struct Rescan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Keep the chains of a saved list that still lead to an address or a value.",
            discussion: """
                FILE is a list written by `procmem pointer scan --save` (its header gives the pointer \
                format), or plain chains, one per line (then --pointer-size and --endian apply). Each \
                chain is followed in the process as it is now; those that end at --target, or at memory \
                holding VALUE as TYPE (--value with --as), are printed, one per line, in the list's \
                order. Chains whose base is not mapped or whose hop cannot be read are dropped and \
                counted. --save writes the kept chains as a new list, so a restart-rescan cycle can \
                repeat. A summary goes to stderr.

                --json prints {"pid":N,"checked":N,"kept":N,"broken":N,"chains":["…",…]}.
                """
        )

        @OptionGroup var processOption: ProcessOption

        var pid: Int32 { processOption.pid }

        @Argument(help: ArgumentHelp("The saved chain list.", valueName: "file"))
        var file: String

        @Option(help: ArgumentHelp("Keep chains that end at this ADDRESS.", valueName: "address"), transform: AddressArgument.parse)
        var target: AddressArgument?

        @Option(help: ArgumentHelp("Keep chains that end at this value (needs --as).", valueName: "value"))
        var value: String?

        @Option(name: .customLong("as"), help: ArgumentHelp("The type of --value.", valueName: "type"))
        var type: ValueType?

        @Option(help: ArgumentHelp("Bytes per pointer for a list without a header: 8 (default) or 4.", valueName: "bytes"))
        var pointerSize: Int = 8

        @Option(help: ArgumentHelp("Byte order for a list without a header: little (default) or big.", valueName: "order"))
        var endian: ScanByteOrder = .little

        @Option(help: ArgumentHelp("Write the kept chains to this file as a new list.", valueName: "file"))
        var save: String?

        @OptionGroup var modeOption: ModeOption

        var mode: AccessModeOption { modeOption.mode }

        @OptionGroup var jsonOption: JSONOption

        var json: Bool { jsonOption.json }

        func validate() throws {
            guard (target == nil) != (value == nil) else { throw ValidationError("give either --target ADDRESS or --value VALUE --as TYPE") }
            if value != nil && type == nil { throw ValidationError("--value needs --as TYPE") }
            if type != nil && value == nil { throw ValidationError("--as needs --value") }
            _ = try Pointer.format(size: pointerSize, endian: endian)
        }

        func run() throws {
            guard let bytes = FileManager.default.contents(atPath: file) else {
                throw ErrorReporting.fail(ProcessMemoryError(.io, pid: pid, message: "the chain list \(file) cannot be read"))
            }
            let defaultFormat = try Pointer.format(size: pointerSize, endian: endian)
            let list: PointerChainList
            do throws(ProcessMemoryError) {
                list = try PointerChainList(parsing: String(decoding: bytes, as: UTF8.self), defaultFormat: defaultFormat)
            } catch {
                Output.error(ErrorReporting.oneLine("usage: \(file): \(error.message)", hint: "save a list with procmem pointer scan --save FILE"))
                throw ExitCode(ExitCodes.usage)
            }
            let handle = try TargetProcess.open(pid, rights: .read)
            defer { handle.close() }
            let expected: PointerChainExpectation
            if let target {
                expected = .address(try TargetProcess.resolve(target, in: handle, mode: mode))
            } else if let value, let type {
                do {
                    expected = .bytes(try type.encode(value))
                } catch {
                    throw ValidationError(error.description)
                }
            } else {
                throw ValidationError("give either --target ADDRESS or --value VALUE --as TYPE")
            }
            let result: PointerRecheckResult
            do {
                result = try handle.recheck(list.chains, expecting: expected, mode: mode.readMode)
            } catch {
                throw ErrorReporting.fail(error, mode: mode)
            }
            if let save {
                var kept = list
                kept.chains = result.kept
                if case .address(let address) = expected { kept.target = address }
                try Pointer.write(kept.text, to: save, pid: pid)
            }
            if json {
                Output.line(JSON.object([
                    ("pid", .int(Int64(pid))),
                    ("checked", .int(Int64(list.chains.count))),
                    ("kept", .int(Int64(result.kept.count))),
                    ("broken", .int(Int64(result.broken))),
                    ("chains", .array(result.kept.map { .string($0.description) })),
                ]).text)
            } else {
                Output.lines(result.kept.map(\.description))
            }
            Output.error("kept \(result.kept.count) of \(list.chains.count) chains; \(result.broken) could not be followed")
        }
    }

    /// The pointer format for `--pointer-size` and `--endian`.
    static func format(size: Int, endian: ScanByteOrder) throws -> PointerFormat {
        guard let width = PointerFormat.Width(rawValue: size) else { throw ValidationError("--pointer-size must be 4 or 8, not \(size)") }
        return PointerFormat(width: width, byteOrder: endian)
    }

    /// Writes `text` to `path` (created or truncated, mode 0644).
    static func write(_ text: String, to path: String, pid: Int32) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let code = errno
            throw ErrorReporting.fail(ProcessMemoryError(.io, pid: pid, message: "\(path) cannot be written: \(String(cString: strerror(code)))"))
        }
        defer { close(fd) }
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let code = errno
                throw ErrorReporting.fail(ProcessMemoryError(.io, pid: pid, message: "\(path) cannot be written: \(String(cString: strerror(code)))"))
            }
            bytes = bytes.dropFirst(count)
        }
    }
}
