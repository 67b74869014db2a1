import ArgumentParser
import Foundation
import Glibc
import ProcessMemory

extension Pointer {
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
                repeat. A summary goes to stderr. As in `pointer scan`, a chain whose base lies inside \
                a symbol is followed by two spaces and `<module!symbol+0x10>` (not with --no-symbols).

                --json prints {"pid":N,"checked":N,"kept":N,"broken":N,"chains":["…",…]}, and \
                "symbols":["module!symbol+0x10"|null,…] (one per chain, its base's symbol) when any \
                base lies inside one.
                """
        )

        @OptionGroup var processOption: ProcessOption

        var pid: Int32 { processOption.pid }

        @Argument(help: ArgumentHelp("The saved chain list.", valueName: "file"), completion: .file())
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

        @Option(help: ArgumentHelp("Write the kept chains to this file as a new list.", valueName: "file"), completion: .file())
        var save: String?

        @OptionGroup var modeOption: ModeOption

        var mode: AccessModeOption { modeOption.mode }

        @OptionGroup var jsonOption: JSONOption

        var json: Bool { jsonOption.json }

        @OptionGroup var symbolsOption: SymbolsOption

        func validate() throws {
            guard (target == nil) != (value == nil) else { throw ValidationError("give either --target ADDRESS or --value VALUE --as TYPE") }
            if value != nil && type == nil { throw ValidationError("--value needs --as TYPE") }
            if type != nil && value == nil { throw ValidationError("--as needs --value") }
            _ = try Pointer.format(size: pointerSize, endian: endian)
        }

        func run() throws {
            // A regular file only: a FIFO or a device would block or never end.
            let bytes: [UInt8]
            do throws(ProcessMemoryError) { bytes = try InputFiles.read(file, limit: 1 << 30) } catch {
                var reported = error
                reported.pid = pid
                reported.message = "the chain list cannot be read: \(error.message)"
                throw ErrorReporting.fail(reported)
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
            let bases = Pointer.Scan.baseNames(result.kept, handle: handle, names: SymbolNames(handle: handle, option: symbolsOption))
            if json {
                Output.line(JSONOutput.text(Report(pid: pid, checked: list.chains.count, kept: result.kept.count,
                                                   broken: result.broken, chains: result.kept.map(\.description),
                                                   symbols: bases.contains { $0 != nil } ? bases : nil)))
            } else {
                Output.lines(result.kept.indices.map { index in
                    result.kept[index].description + (bases[index].map { "  <" + Format.printable($0) + ">" } ?? "")
                })
            }
            Output.error("kept \(result.kept.count) of \(list.chains.count) chains; \(result.broken) could not be followed")
        }

        /// `--json`: the shape in the help above.
        struct Report: Encodable {
            var pid: Int32
            var checked: Int
            var kept: Int
            var broken: Int
            var chains: [String]
            var symbols: [String?]?

            enum CodingKeys: String, CodingKey { case pid, checked, kept, broken, chains, symbols }
        }
    }
}
