import ArgumentParser
import Foundation
import Glibc
import ProcessMemory

extension Pointer {
    /// `procmem pointer resolve PID CHAIN [--as TYPE]`.
    struct Resolve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow a pointer chain and print each hop and the address it ends at.",
            discussion: """
                Prints `base 0x…`, then one line per hop, `hop N: [0xADDR] = 0xPOINTER +OFF -> 0xNEXT`, \
                then the final address alone, or with --as `0xADDR: value`. When a hop cannot be read, \
                the hops before it are printed and the error names the hop, its address, the bytes that \
                could be read and why the read stopped; the exit status is that of the error's code. \
                The base, and the final address, are followed by `<module!symbol+0x10>` when they lie \
                inside a symbol of a mapped module (not with --no-symbols).

                --json prints {"pid":N,"chain":"…","base":"0x…","hops":[{"hop":N,"address":"0x…",\
                "pointer":"0x…","offset":N,"next":"0x…"}],"address":"0x…"|null,"failure":null|\
                {"hop":N,"address":"0x…","bytes":"hex","error":ERROR}} and, with --as, "type" and "value"; \
                "baseSymbol" and "addressSymbol" ("module!symbol+0x10") are added when those addresses \
                lie inside a symbol.
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

        @OptionGroup var symbolsOption: SymbolsOption

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
            let names = SymbolNames(handle: handle, option: symbolsOption)
            let base = try TargetProcess.resolve(baseArgument, in: handle, mode: mode, names: names)
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
                printJSON(trace, value: value?.json, valueError: valueError, names: names)
            } else {
                printText(trace, value: value?.text, names: names)
            }
            if let error = trace.error { throw ErrorReporting.fail(error, mode: mode) }
            if let valueError { throw ErrorReporting.fail(valueError, mode: mode) }
        }

        private func printText(_ trace: PointerChainTrace, value: String?, names: SymbolNames) {
            var lines = ["base \(Format.hex(trace.base))\(names.suffix(for: trace.base)) (\(Format.printable(String(PointerChain.hops(in: chain).first ?? ""))))"]
            for (index, hop) in trace.hops.enumerated() {
                lines.append("hop \(index + 1): [\(Format.hex(hop.address))] = \(Format.hex(hop.pointer)) \(Self.signed(hop.offset)) -> \(Format.hex(hop.next))")
            }
            if let address = trace.address { lines.append(Format.hex(address) + names.suffix(for: address) + (value.map { ": " + $0 } ?? "")) }
            Output.lines(lines)
        }

        private func printJSON(_ trace: PointerChainTrace, value: JSON?, valueError: ProcessMemoryError?, names: SymbolNames) {
            let failure = trace.failure.map { failure in
                Report.Failure(hop: failure.hop, address: Format.hex(failure.address),
                               bytes: failure.bytes.map { Format.paddedHex(UInt64($0), width: 2) }.joined(),
                               error: ErrorReport(trace.error ?? failure.error))
            }
            let hops = trace.hops.enumerated().map { index, hop in
                Report.Hop(hop: index + 1, address: Format.hex(hop.address), pointer: Format.hex(hop.pointer),
                           offset: hop.offset, next: Format.hex(hop.next))
            }
            Output.line(JSONOutput.text(Report(
                pid: pid, chain: chain, base: Format.hex(trace.base), hops: hops, address: trace.address.map(Format.hex),
                failure: failure, type: type?.rawValue, value: type == nil ? nil : (value ?? .null),
                valueError: valueError.map(ErrorReport.init), baseSymbol: names.label(for: trace.base),
                addressSymbol: trace.address.flatMap { names.label(for: $0) })))
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

        /// `--json`: the shape in the help above; `type`, `value` and `valueError` only with --as.
        struct Report: Encodable {
            struct Hop: Encodable {
                var hop: Int
                var address: String
                var pointer: String
                var offset: Int64
                var next: String
            }
            struct Failure: Encodable {
                var hop: Int
                var address: String
                var bytes: String
                var error: ErrorReport
            }
            var pid: Int32
            var chain: String
            var base: String
            var hops: [Hop]
            var address: String?
            var failure: Failure?
            var type: String?
            var value: JSON?
            var valueError: ErrorReport?
            var baseSymbol: String?
            var addressSymbol: String?

            enum CodingKeys: String, CodingKey {
                case pid, chain, base, hops, address, failure, type, value, valueError, baseSymbol, addressSymbol
            }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(pid, forKey: .pid)
                try container.encode(chain, forKey: .chain)
                try container.encode(base, forKey: .base)
                try container.encode(hops, forKey: .hops)
                try container.encode(address, forKey: .address)
                try container.encode(failure, forKey: .failure)
                if let type {
                    try container.encode(type, forKey: .type)
                    try container.encode(value ?? .null, forKey: .value)
                    try container.encode(valueError, forKey: .valueError)
                }
                try container.encodeIfPresent(baseSymbol, forKey: .baseSymbol)
                try container.encodeIfPresent(addressSymbol, forKey: .addressSymbol)
            }
        }

        static func signed(_ offset: Int64) -> String {
            (offset < 0 ? "-" : "+") + Format.hex(offset.magnitude)
        }
    }
}
