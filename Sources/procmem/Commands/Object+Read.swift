import ArgumentParser
import Glibc
import ProcessMemory

extension Object {
    /// `procmem object read (PID REGION | PATH) OFFSET LENGTH`.
    struct Read: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "read",
            abstract: "Read exactly LENGTH bytes at OFFSET of a memory object.",
            discussion: """
                Arguments: PID REGION OFFSET LENGTH, or PATH OFFSET LENGTH (see `procmem object --help`).

                Prints an xxd-style hexdump whose first column is the object offset, --raw writes the \
                bytes themselves. The read is all or nothing: when OFFSET + LENGTH goes past the object's \
                end nothing is printed on stdout and the status is 18 (outOfRange); a mapping without an \
                object (anonymous memory, the heap, a stack) gives 13 (wrongType).

                --json prints one object ("hex" is "" when the read failed):
                  {"pid":N|null,"address":"0x…"|null,"source":"mapFiles|targetDescriptor|path",
                   "kind":"memfd|sharedMemory|file","name":"…","size":N,"offset":N,"requested":N,
                   "read":N,"complete":BOOL,"hex":"…","stop":null|ERROR}
                where ERROR has the shape described in `procmem read --help`.
                """
        )

        @Argument(help: ArgumentHelp("PID REGION OFFSET LENGTH, or PATH OFFSET LENGTH.", valueName: "arguments"))
        var arguments: [String] = []

        @Flag(help: "Write the bytes to stdout as they are.")
        var raw = false

        @OptionGroup var jsonOption: JSONOption

        var json: Bool { jsonOption.json }

        static let usage = "PID REGION OFFSET LENGTH, or PATH OFFSET LENGTH"

        func validate() throws {
            if raw && json { throw ValidationError("--raw cannot be combined with --json") }
            _ = try parsed()
        }

        func parsed() throws -> (source: ObjectSource, offset: UInt64, length: Int) {
            let (source, rest) = try ObjectSource.parse(arguments, trailing: 2, usage: Self.usage)
            guard let offset = Format.parseUnsigned(rest[0]) else {
                throw ValidationError("OFFSET must be a number (decimal or 0x hex), not '\(rest[0])'")
            }
            let length = try procmem.Read.parseLength(rest[1])
            guard length <= procmem.Read.maxBytes else { throw ValidationError("at most \(procmem.Read.maxBytes) bytes can be read at once") }
            return (source, offset, length)
        }

        func run() throws {
            let (source, offset, length) = try parsed()
            let opened = try source.open(rights: .read)
            defer { opened.object.close() }
            var failure: ProcessMemoryError?
            var bytes: [UInt8] = []
            var info: MemoryObject.Info?
            do {
                info = try opened.object.info()
                bytes = try opened.object.read(count: length, at: offset)
            } catch {
                failure = error
            }
            if json, let info {
                Output.line(JSONOutput.text(ObjectReport(header: opened.header(info), details: Report(
                    offset: offset, requested: length, read: bytes.count, complete: failure == nil,
                    hex: bytes.map { Format.paddedHex(UInt64($0), width: 2) }.joined(), stop: failure.map(ErrorReport.init)))))
            } else if failure == nil {
                if raw { Output.bytes(bytes) } else { Output.lines(HexDump.lines(bytes, address: offset)) }
            }
            if let failure { throw ObjectReporting.fail(failure, source: source) }
        }

        /// `--json` after the ``ObjectHeader`` keys: the shape in the help above.
        struct Report: Encodable {
            var offset: UInt64
            var requested: Int
            var read: Int
            var complete: Bool
            var hex: String
            @NullWhenAbsent var stop: ErrorReport?

            enum CodingKeys: String, CodingKey { case offset, requested, read, complete, hex, stop }
        }
    }
}
