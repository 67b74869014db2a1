import ArgumentParser
import ProcessMemory

/// `procmem write PID ADDRESS (--hex … | --value V --as TYPE | --string S | --cstring S)`.
struct Write: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write to the memory of a process.",
        discussion: """
            Give exactly one of: --hex with bytes ("de ad be ef", "deadbeef", "0xdead 0xbeef"), \
            --value with --as TYPE (native byte order; integers in decimal or 0x hex, where hex is the \
            bit pattern for signed types; floats as Swift parses them), --string (exactly the text's \
            UTF-8 bytes, no NUL), or --cstring (the UTF-8 bytes followed by a NUL; the same as \
            --value S --as cstring). Before this version --string added a NUL; use --cstring for that.

            Typed values are written all or nothing by default (--exact); --hex, --string and --cstring write \
            as much as can be written unless --exact is given. A write that stops early prints how \
            many bytes were written, then `procmem: short write: …` on stderr, and exits with \
            status 1. The debugger mode (default) can patch read-only private pages such as code \
            (copy-on-write; files on disk never change); [vdso], [vvar], [vsyscall] and secret \
            memory are never written.

            Prints `wrote N bytes at 0x…`, or with --json:
              {"pid":N,"address":"0x…","requested":N,"written":N,"complete":BOOL,
               "stop":null|ERROR}
            where ERROR has the shape described in `procmem read --help`.
            """
    )

    @OptionGroup var processOption: ProcessOption

    var pid: Int32 { processOption.pid }

    @Argument(help: AddressArgument.help, transform: AddressArgument.parse)
    var address: AddressArgument

    @Option(name: .customLong("hex"), help: ArgumentHelp("Bytes in hex; spaces between bytes are optional.", valueName: "bytes"))
    var hexBytes: String?

    @Option(parsing: .unconditional, help: "A value to encode with --as (may start with -, as in -5).")
    var value: String?

    @Option(name: .customLong("as"), help: ArgumentHelp("The type of --value.", valueName: "type"))
    var type: ValueType?

    @Option(parsing: .unconditional, help: "A string, written as exactly its UTF-8 bytes (no NUL).")
    var string: String?

    @Option(parsing: .unconditional, help: "A C string, written as its UTF-8 bytes followed by a NUL.")
    var cstring: String?

    @Flag(inversion: .prefixedNo, help: "All or nothing (default for --value; --no-exact allows a partial write).")
    var exact: Bool?

    @OptionGroup var modeOption: ModeOption

    var mode: AccessModeOption { modeOption.mode }

    @OptionGroup var jsonOption: JSONOption

    var json: Bool { jsonOption.json }

    func validate() throws {
        let given = [hexBytes != nil, value != nil, string != nil, cstring != nil].filter { $0 }.count
        guard given == 1 else { throw ValidationError("give exactly one of --hex, --value (with --as), --string or --cstring") }
        if string == "" { throw ValidationError("--string \"\" writes nothing; --cstring \"\" writes a lone NUL") }
        if value != nil && type == nil { throw ValidationError("--value needs --as TYPE") }
        if value == nil && type != nil { throw ValidationError("--as applies only to --value") }
        _ = try payload()
    }

    /// The bytes to write.
    func payload() throws -> [UInt8] {
        if let hexBytes { return try Self.parseHexBytes(hexBytes) }
        if let string { return Array(string.utf8) }
        if let cstring { return Array(cstring.utf8) + [0] }
        guard let value, let type else { throw ValidationError("--value needs --as TYPE") }
        do {
            return try type.encode(value)
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// Hex bytes: groups separated by spaces, each an even number of hex digits with an optional `0x`.
    static func parseHexBytes(_ text: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for group in text.split(whereSeparator: { $0.isWhitespace || $0 == "," }) {
            var digits = Substring(group)
            if digits.hasPrefix("0x") || digits.hasPrefix("0X") { digits = digits.dropFirst(2) }
            guard !digits.isEmpty, digits.count % 2 == 0, digits.allSatisfy({ $0.isASCII && $0.isHexDigit }) else {
                throw ValidationError("--hex: '\(group)' is not whole bytes in hex (write de ad be ef or deadbeef)")
            }
            var index = digits.startIndex
            while index < digits.endIndex {
                let next = digits.index(index, offsetBy: 2)
                guard let byte = UInt8(digits[index..<next], radix: 16) else {
                    throw ValidationError("--hex: '\(group)' is not whole bytes in hex")
                }
                bytes.append(byte)
                index = next
            }
        }
        guard !bytes.isEmpty else { throw ValidationError("--hex needs at least one byte") }
        return bytes
    }

    func run() throws {
        let bytes = try payload()
        let handle = try TargetProcess.open(pid, rights: .readWrite)
        defer { handle.close() }
        let start = try TargetProcess.resolve(address, in: handle, mode: mode)
        let allOrNothing = exact ?? (value != nil)
        let outcome = bytes.withUnsafeBytes { raw in
            Result { () throws(ProcessMemoryError) -> (written: Int, stop: ProcessMemoryError?) in
                guard allOrNothing else {
                    let transfer = try handle.writeTransfer(raw, to: start, mode: mode.writeMode)
                    return (transfer.bytesTransferred, transfer.stop)
                }
                do throws(ProcessMemoryError) {
                    try handle.writeExactly(raw, to: start, mode: mode.writeMode)
                    return (raw.count, nil)
                } catch {
                    return (error.bytesTransferred, error)
                }
            }
        }
        let transfer: (written: Int, stop: ProcessMemoryError?)
        switch outcome {
        case .success(let result): transfer = result
        case .failure(let error): throw ErrorReporting.fail(error, mode: mode)
        }
        if json {
            Output.line(JSONOutput.text(Report(pid: pid, address: Format.hex(start), requested: bytes.count,
                                               written: transfer.written, complete: transfer.stop == nil,
                                               stop: transfer.stop.map(ErrorReport.init))))
        } else if transfer.written > 0 || transfer.stop == nil {
            Output.line("wrote \(transfer.written) byte\(transfer.written == 1 ? "" : "s") at \(Format.hex(start))")
        }
        guard let stop = transfer.stop else { return }
        if allOrNothing || transfer.written == 0 { throw ErrorReporting.fail(stop, mode: mode) }
        Output.error(ErrorReporting.shortTransferLine(verb: "write", done: transfer.written, requested: bytes.count, stop: stop))
        throw ExitCode(ExitCodes.partial)
    }

    /// `--json`: the shape in the help above.
    struct Report: Encodable {
        var pid: Int32
        var address: String
        var requested: Int
        var written: Int
        var complete: Bool
        /// ERROR, as `procmem read --help` describes it, or null.
        @NullWhenAbsent var stop: ErrorReport?

        enum CodingKeys: String, CodingKey { case pid, address, requested, written, complete, stop }
    }
}
