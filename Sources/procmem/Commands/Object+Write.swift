import ArgumentParser
import Glibc
import ProcessMemory

extension Object {
    /// `procmem object write (PID REGION | PATH) OFFSET --hex BYTES`.
    struct Write: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "write",
            abstract: "Write bytes at OFFSET of a memory object, exactly.",
            discussion: """
                Arguments: PID REGION OFFSET, or PATH OFFSET (see `procmem object --help`). The object \
                is opened for writing, which for PID REGION needs write access to the process.

                The write is all or nothing and never changes the object's size: when OFFSET plus the \
                number of bytes goes past the end, nothing is written and the status is 18 \
                (outOfRange). An object sealed with F_SEAL_WRITE or F_SEAL_FUTURE_WRITE gives 11 \
                (accessDenied). Stores land in the object itself, so every process that maps it shared \
                sees them.

                Prints `wrote N bytes at object offset 0x…`, or with --json:
                  {"pid":N|null,"address":"0x…"|null,"source":"…","kind":"…","name":"…","size":N,
                   "offset":N,"requested":N,"written":N,"complete":BOOL,"stop":null|ERROR}
                """
        )

        @Argument(help: ArgumentHelp("PID REGION OFFSET, or PATH OFFSET.", valueName: "arguments"))
        var arguments: [String] = []

        @Option(name: .customLong("hex"), help: ArgumentHelp("Bytes in hex; spaces between bytes are optional.", valueName: "bytes"))
        var hexBytes: String

        @OptionGroup var jsonOption: JSONOption

        var json: Bool { jsonOption.json }

        static let usage = "PID REGION OFFSET, or PATH OFFSET"

        func validate() throws {
            _ = try parsed()
            _ = try procmem.Write.parseHexBytes(hexBytes)
        }

        func parsed() throws -> (source: ObjectSource, offset: UInt64) {
            let (source, rest) = try ObjectSource.parse(arguments, trailing: 1, usage: Self.usage)
            guard let offset = Format.parseUnsigned(rest[0]) else {
                throw ValidationError("OFFSET must be a number (decimal or 0x hex), not '\(rest[0])'")
            }
            return (source, offset)
        }

        func run() throws {
            let (source, offset) = try parsed()
            let bytes = try procmem.Write.parseHexBytes(hexBytes)
            let opened = try source.open(rights: .readWrite)
            defer { opened.object.close() }
            var failure: ProcessMemoryError?
            var info: MemoryObject.Info?
            do {
                info = try opened.object.info()
                try opened.object.write(bytes, at: offset)
            } catch {
                failure = error
            }
            if json, let info {
                Output.line(JSONOutput.text(ObjectReport(header: opened.header(info), details: Report(
                    offset: offset, requested: bytes.count, written: failure == nil ? bytes.count : 0,
                    complete: failure == nil, stop: failure.map(ErrorReport.init)))))
            } else if failure == nil {
                Output.line("wrote \(bytes.count) byte\(bytes.count == 1 ? "" : "s") at object offset \(Format.hex(offset))")
            }
            if let failure { throw ObjectReporting.fail(failure, source: source) }
        }

        /// `--json` after the ``ObjectHeader`` keys: the shape in the help above.
        struct Report: Encodable {
            var offset: UInt64
            var requested: Int
            var written: Int
            var complete: Bool
            @NullWhenAbsent var stop: ErrorReport?

            enum CodingKeys: String, CodingKey { case offset, requested, written, complete, stop }
        }
    }
}
