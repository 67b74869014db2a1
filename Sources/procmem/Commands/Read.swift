import ArgumentParser
import ProcessMemory

/// `procmem read PID ADDRESS [LENGTH]`: a hexdump, raw bytes, typed values or JSON.
struct Read: ParsableCommand {
    /// The largest read, in bytes, so a typo cannot ask for terabytes.
    static let maxBytes = 1 << 30

    static let configuration = CommandConfiguration(
        abstract: "Read memory from a process.",
        discussion: """
            By default prints an xxd-style hexdump, 16 bytes per line, with absolute addresses:
              00007f1234560000: 4865 6c6c 6f20 776f 726c 6400 0000 0000  Hello world.....
            --raw writes the bytes themselves. --as TYPE prints one value per line, `0xADDR: value`, in \
            native byte order; then LENGTH counts values (default 1), except for cstring, where it is \
            the maximum string length in bytes (default 4096) and the value is printed as a quoted, \
            escaped string. LENGTH accepts 0x hex.

            A read that stops early prints what was read, then `procmem: short read: N of M bytes; \
            stopped at 0x…: <code>: <reason>` on stderr, and exits with status 1. If nothing at all \
            can be read, the error is reported and the status is that of its code (see procmem \
            --help). With --exact a read is all or nothing: a short read prints nothing on stdout and \
            exits with the status of the reason it stopped.

            When ADDRESS lies inside a symbol of a mapped module, the hexdump starts with a header \
            line, `0xADDR <module!symbol+0x10>:`, and each --as line names its value's address the \
            same way (`0xADDR <game!g_score>: 42`); --no-symbols leaves the names out.

            --json prints one object (requested and read count bytes; hex holds the bytes \
            read, "" with --exact when it stopped; "symbol":"module!symbol+0x10" is added when \
            ADDRESS lies inside a symbol):
              {"pid":N,"address":"0x…","requested":N,"read":N,"complete":BOOL,
               "hex":"…","stop":null|ERROR}
            With --as, "type":"u32" and "values":[…] follow (numbers, or "0x…" strings \
            with --hex; nan and infinities are null), and since 0.9.0 "symbols":[…], one per value: \
            the symbol holding that value's own address, "module!symbol+0x10", or null (the \
            "symbol" key names only ADDRESS; a value further on may lie in another symbol). With --as cstring:
              {"pid":N,"address":"0x…","type":"cstring","maxLength":N,
               "value":"…"|null,"stop":null|ERROR}
            ERROR is
              {"code":"notFound","exitCode":16,"message":"…","pid":N|null,
               "address":"0x…"|null,"bytesTransferred":N,"systemCall":"…"|null,
               "errno":N|null,"accessDenial":"…"|null,"description":"…"}
            """
    )

    @OptionGroup var processOption: ProcessOption

    var pid: Int32 { processOption.pid }

    @Argument(help: AddressArgument.help, transform: AddressArgument.parse)
    var address: AddressArgument

    @Argument(help: ArgumentHelp("Bytes to read; with --as, a count of values (default 1), or for cstring the maximum length (default 4096).",
                                 valueName: "length"),
              transform: Read.parseLength)
    var length: Int?

    @Flag(help: "Write the bytes to stdout as they are.")
    var raw = false

    @Option(name: .customLong("as"), help: ArgumentHelp("Print typed values.", valueName: "type"))
    var type: ValueType?

    @Flag(help: "With an integer --as type, print values in hex.")
    var hex = false

    @Flag(help: "All or nothing: fail without output unless every byte can be read.")
    var exact = false

    @OptionGroup var modeOption: ModeOption

    var mode: AccessModeOption { modeOption.mode }

    @OptionGroup var jsonOption: JSONOption

    var json: Bool { jsonOption.json }

    @OptionGroup var symbolsOption: SymbolsOption

    static func parseLength(_ text: String) throws -> Int {
        // `read PID -1 16`: a negative number is moved to the end of the positionals, so it
        // arrives here; say what is wrong with it rather than that LENGTH is malformed.
        if CommandLineHabits.isNegativeNumber(text) {
            throw ValidationError("'\(text)' is not an ADDRESS or LENGTH: neither can be negative (below a region, write REGION-OFFSET such as [heap]-0x10)")
        }
        guard let value = Format.parseUnsigned(text), let count = Int(exactly: value), count > 0 else {
            throw ValidationError("LENGTH must be a positive number (decimal or 0x hex), not '\(text)'")
        }
        return count
    }

    func validate() throws {
        // `read PID -1 16`: the parser takes "-1" for an option and reports LENGTH missing.
        if let negative = CommandLine.arguments.dropFirst().first(where: { $0.count > 1 && $0.hasPrefix("-") && $0.dropFirst().allSatisfy(\.isNumber) }) {
            throw ValidationError("'\(negative)' is not an ADDRESS or LENGTH: neither can be negative (below a region, write REGION-OFFSET such as [heap]-0x10)")
        }
        if raw && (type != nil || json) { throw ValidationError("--raw cannot be combined with --as or --json") }
        if hex && !(type?.isInteger ?? false) { throw ValidationError("--hex needs an integer type: --as u8|i8|u16|i16|u32|i32|u64|i64") }
        if type == nil && length == nil { throw ValidationError("LENGTH (in bytes) is required unless --as is given") }
        if type == .cstring && exact { throw ValidationError("--exact does not apply to --as cstring, which stops at the NUL") }
        guard byteCount <= Self.maxBytes else {
            throw ValidationError("at most \(Self.maxBytes) bytes can be read at once")
        }
    }

    /// Bytes to read (the string length limit for cstring); saturates so validate can reject it.
    var byteCount: Int {
        guard let type else { return length ?? 0 }
        guard let size = type.size else { return length ?? 4096 }
        let (bytes, overflow) = (length ?? 1).multipliedReportingOverflow(by: size)
        return overflow ? Int.max : bytes
    }

    func run() throws {
        let handle = try TargetProcess.open(pid, rights: .read)
        defer { handle.close() }
        let names = SymbolNames(handle: handle, option: symbolsOption)
        let start = try TargetProcess.resolve(address, in: handle, mode: mode, names: names)
        if type == .cstring { return try readString(handle, at: start, names: names) }

        let requested = byteCount
        var (bytes, transfer) = try TargetProcess.read(handle, at: start, count: requested, mode: mode)
        let stop = transfer.stop
        if exact && stop != nil {
            bytes = []
            transfer.bytesTransferred = 0
        }
        let values = type.map { type in Self.split(bytes, size: type.size ?? 1) } ?? []
        if json {
            Output.line(JSONOutput.text(Report(
                pid: pid, address: Format.hex(start), requested: requested, read: transfer.bytesTransferred,
                complete: stop == nil, hex: bytes.map { Format.paddedHex(UInt64($0), width: 2) }.joined(),
                stop: stop.map(ErrorReport.init), type: type?.rawValue,
                values: type.map { type in values.map { type.json($0, hex: hex) } },
                symbols: type.map { type in values.indices.map { index in names.label(for: start &+ UInt64(index) &* UInt64(type.size ?? 1)) } },
                symbol: names.label(for: start))))
        } else if raw {
            Output.bytes(bytes)
        } else if let type {
            let size = UInt64(type.size ?? 1)
            Output.lines(values.enumerated().map { index, value in
                let address = start &+ UInt64(index) &* size
                return Format.hex(address) + names.suffix(for: address) + ": " + type.format(value, hex: hex)
            })
        } else {
            let header = names.suffix(for: start)
            Output.lines((header.isEmpty ? [] : [Format.hex(start) + header + ":"]) + HexDump.lines(bytes, address: start))
        }
        guard let stop else { return }
        if exact || transfer.bytesTransferred == 0 { throw ErrorReporting.fail(stop, mode: mode) }
        Output.error(ErrorReporting.shortTransferLine(verb: "read", done: transfer.bytesTransferred, requested: requested, stop: stop))
        throw ExitCode(ExitCodes.partial)
    }

    /// `--as cstring`: one quoted string.
    private func readString(_ handle: ProcessHandle, at start: UInt64, names: SymbolNames) throws {
        let maxLength = byteCount
        var text: String?
        var failure: ProcessMemoryError?
        do {
            text = try handle.readCString(from: start, maxLength: maxLength, mode: mode.readMode)
        } catch {
            failure = error
        }
        if json {
            Output.line(JSONOutput.text(StringReport(pid: pid, address: Format.hex(start), maxLength: maxLength,
                                                     value: text, stop: failure.map(ErrorReport.init),
                                                     symbol: names.label(for: start))))
        } else if let text {
            Output.line(Format.hex(start) + names.suffix(for: start) + ": " + JSON.quoted(text))
        }
        if let failure { throw ErrorReporting.fail(failure, mode: mode) }
    }

    /// `bytes` cut into whole values of `size` bytes (a partial value at the end is dropped).
    static func split(_ bytes: [UInt8], size: Int) -> [[UInt8]] {
        stride(from: 0, to: bytes.count - bytes.count % size, by: size).map { Array(bytes[$0..<($0 + size)]) }
    }

    /// `--json` for bytes and typed values: the shape in the help above. `stop` is null when the
    /// read completed; `type` and `values` appear only with --as.
    struct Report: Encodable {
        var pid: Int32
        var address: String
        var requested: Int
        var read: Int
        var complete: Bool
        var hex: String
        @NullWhenAbsent var stop: ErrorReport?
        var type: String?
        var values: [JSON]?
        /// With --as: each value's symbol, null outside every symbol.
        var symbols: [String?]?
        var symbol: String?

        enum CodingKeys: String, CodingKey {
            case pid, address, requested, read, complete, hex, stop, type, values, symbols, symbol
        }
    }

    /// `--json` with --as cstring: the shape in the help above; `value` and `stop` may be null.
    struct StringReport: Encodable {
        var pid: Int32
        var address: String
        var type = "cstring"
        var maxLength: Int
        @NullWhenAbsent var value: String?
        @NullWhenAbsent var stop: ErrorReport?
        var symbol: String?

        init(pid: Int32, address: String, maxLength: Int, value: String?, stop: ErrorReport?, symbol: String?) {
            self.pid = pid
            self.address = address
            self.maxLength = maxLength
            self.value = value
            self.stop = stop
            self.symbol = symbol
        }

        enum CodingKeys: String, CodingKey {
            case pid, address, type, maxLength, value, stop, symbol
        }
    }
}
