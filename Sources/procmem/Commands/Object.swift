import ArgumentParser
import Glibc
import ProcessMemory

/// `procmem object`: memory objects (memfds and the files behind mappings), read and written
/// exactly at object offsets.
struct Object: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "object",
        abstract: "Create, read, write and describe memory objects (memfds, files behind mappings).",
        discussion: """
            A memory object is the memfd, shared-memory file or file behind a mapping. Its reads and \
            writes are exact: they move exactly LENGTH bytes at OFFSET, or fail with outOfRange (18) \
            when OFFSET + LENGTH goes past the object's size; nothing is ever partial, and a write \
            never grows the object.

            The object is named either by a process and a mapping, `PID REGION`, where REGION is an \
            ADDRESS as for `procmem read` (0x…, [anon:NAME]+0x10, a path, a quoted pointer chain) and selects the mapping \
            that contains it; or by a PATH, such as /proc/PID/fd/N for a memfd another process holds \
            (printed by `procmem object create --hold`). OFFSET is always an offset in the object \
            (0 is the object's first byte), not in the mapping: REGION only picks the object. The \
            object behind a mapping is read through its own descriptor, so PROT_NONE mappings and \
            pages the process never touched read like any others.
            """,
        subcommands: [ObjectCreate.self, ObjectRead.self, ObjectWrite.self, ObjectInfo.self]
    )
}

/// `procmem object create NAME SIZE [--fill HEX] [--seal-size] [--seal-writes] [--hold]`.
struct ObjectCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a memfd, fill it, and optionally keep it open for other processes.",
        discussion: """
            A memfd lives only as long as a descriptor or mapping refers to it, so without --hold the \
            object is released when procmem exits: the command then only shows what it made. With \
            --hold, procmem prints the object's description, then keeps it open until its stdin \
            reaches end of file (Ctrl-D, or the writer of a pipe closing it) or it is interrupted \
            (Ctrl-C); meanwhile other processes can open it as /proc/PID/fd/N, the path printed \
            (for example `procmem object read /proc/PID/fd/N 0 16`).

            --fill repeats the given bytes over the whole object (a memfd starts all zero). \
            --seal-size adds F_SEAL_GROW|F_SEAL_SHRINK; --seal-writes adds F_SEAL_WRITE (after \
            filling), so holders can only read it.

            Prints `memfd NAME: SIZE bytes, seals …` and `path: /proc/PID/fd/N`, or with --json:
              {"pid":N,"fd":N,"path":"/proc/N/fd/N","name":"…","size":N,"inode":N,
               "seals":["F_SEAL_GROW",…]}
            """
    )

    @Argument(help: "The memfd's name (shown as /memfd:NAME in /proc).")
    var name: String

    @Argument(help: ArgumentHelp("The size in bytes (decimal or 0x hex).", valueName: "size"), transform: ObjectCreate.parseSize)
    var size: UInt64

    @Option(help: ArgumentHelp("Bytes in hex, repeated over the whole object.", valueName: "bytes"))
    var fill: String?

    @Flag(help: "Fix the size (F_SEAL_GROW|F_SEAL_SHRINK).")
    var sealSize = false

    @Flag(help: "Forbid writes (F_SEAL_WRITE), after --fill.")
    var sealWrites = false

    @Flag(help: "Keep the object open until stdin closes or Ctrl-C.")
    var hold = false

    @Flag(help: "Print JSON (shape above).")
    var json = false

    static func parseSize(_ text: String) throws -> UInt64 {
        guard let value = Format.parseUnsigned(text), value <= UInt64(Int64.max) else {
            throw ValidationError("SIZE must be a number from 0 to 2^63-1 (decimal or 0x hex), not '\(text)'")
        }
        return value
    }

    func validate() throws {
        if let fill { _ = try Write.parseHexBytes(fill) }
    }

    func run() throws {
        let object: MemoryObject
        let source = ObjectSource.path("memfd")
        do {
            object = try MemoryObject(size: size, name: name)
            if let fill, size > 0 { try Self.fill(object, pattern: try Write.parseHexBytes(fill), size: size) }
            if sealSize { try object.sealSize() }
            if sealWrites { try object.addSeals(.write) }
        } catch let error as ProcessMemoryError {
            throw ObjectReporting.fail(error, source: source)
        }
        let info: MemoryObject.Info
        do {
            info = try object.info()
        } catch {
            throw ObjectReporting.fail(error, source: source)
        }
        let path = "/proc/\(getpid())/fd/\(info.descriptor)"
        if json {
            Output.line(JSON.object([
                ("pid", .int(Int64(getpid()))),
                ("fd", .int(Int64(info.descriptor))),
                ("path", .string(path)),
                ("name", .string(info.name)),
                ("size", .uint(info.size)),
                ("inode", .uint(info.inode)),
                ("seals", ObjectReporting.json(info.seals)),
            ]).text)
        } else {
            Output.lines([
                "memfd \(info.name): \(info.size) bytes, seals \(ObjectReporting.text(info.seals))",
                "path: \(path)",
            ])
        }
        guard hold else { return }
        Output.error("holding \(path) until stdin closes (Ctrl-D) or Ctrl-C")
        var byte: UInt8 = 0
        while true {
            let count = Glibc.read(0, &byte, 1)
            if count > 0 || (count < 0 && errno == EINTR) { continue }
            break
        }
        object.close()
    }

    /// Writes `pattern` repeatedly over the first `size` bytes, one MiB at a time.
    static func fill(_ object: MemoryObject, pattern: [UInt8], size: UInt64) throws(ProcessMemoryError) {
        let chunkSize = max(pattern.count, (1 << 20) / pattern.count * pattern.count)
        var chunk: [UInt8] = []
        chunk.reserveCapacity(chunkSize)
        while chunk.count < chunkSize { chunk.append(contentsOf: pattern) }
        var offset: UInt64 = 0
        while offset < size {
            let count = Int(min(UInt64(chunk.count), size - offset))
            try object.write(Array(chunk[0..<count]), at: offset)
            offset += UInt64(count)
        }
    }
}

/// `procmem object read (PID REGION | PATH) OFFSET LENGTH`.
struct ObjectRead: ParsableCommand {
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

    @Flag(help: "Print JSON (shape above).")
    var json = false

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
        let length = try Read.parseLength(rest[1])
        guard length <= Read.maxBytes else { throw ValidationError("at most \(Read.maxBytes) bytes can be read at once") }
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
            Output.line(JSON.object(opened.jsonHeader(info) + [
                ("offset", .uint(offset)),
                ("requested", .int(Int64(length))),
                ("read", .int(Int64(bytes.count))),
                ("complete", .bool(failure == nil)),
                ("hex", .string(bytes.map { Format.paddedHex(UInt64($0), width: 2) }.joined())),
                ("stop", .optional(failure) { ErrorReporting.json($0) }),
            ]).text)
        } else if failure == nil {
            if raw { Output.bytes(bytes) } else { Output.lines(HexDump.lines(bytes, address: offset)) }
        }
        if let failure { throw ObjectReporting.fail(failure, source: source) }
    }
}

/// `procmem object write (PID REGION | PATH) OFFSET --hex BYTES`.
struct ObjectWrite: ParsableCommand {
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

    @Flag(help: "Print JSON (shape above).")
    var json = false

    static let usage = "PID REGION OFFSET, or PATH OFFSET"

    func validate() throws {
        _ = try parsed()
        _ = try Write.parseHexBytes(hexBytes)
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
        let bytes = try Write.parseHexBytes(hexBytes)
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
            Output.line(JSON.object(opened.jsonHeader(info) + [
                ("offset", .uint(offset)),
                ("requested", .int(Int64(bytes.count))),
                ("written", .int(Int64(failure == nil ? bytes.count : 0))),
                ("complete", .bool(failure == nil)),
                ("stop", .optional(failure) { ErrorReporting.json($0) }),
            ]).text)
        } else if failure == nil {
            Output.line("wrote \(bytes.count) byte\(bytes.count == 1 ? "" : "s") at object offset \(Format.hex(offset))")
        }
        if let failure { throw ObjectReporting.fail(failure, source: source) }
    }
}

/// `procmem object info (PID REGION | PATH)`.
struct ObjectInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Describe a memory object: kind, size, seals, name, rights, inode.",
        discussion: """
            Arguments: PID REGION, or PATH (see `procmem object --help`). For a mapping, also shows \
            how the object was reached (map_files, a descriptor of the process, or the path), the \
            mapping, and the object offset REGION's address corresponds to.

            --json prints one object:
              {"pid":N|null,"address":"0x…"|null,"source":"mapFiles|targetDescriptor|path",
               "kind":"memfd|sharedMemory|file","name":"…","size":N,"path":"…",
               "seals":["F_SEAL_SEAL",…]|null,"rights":"read","inode":N,"device":"00:01",
               "region":{"start":"0x…","end":"0x…","perms":"rw-","shared":BOOL,"offset":N}|null,
               "objectOffset":N|null}
            seals is null when the object's filesystem has no seals.
            """
    )

    @Argument(help: ArgumentHelp("PID REGION, or PATH.", valueName: "arguments"))
    var arguments: [String] = []

    @Flag(help: "Print JSON (shape above).")
    var json = false

    static let usage = "PID REGION, or PATH"

    func validate() throws {
        _ = try ObjectSource.parse(arguments, trailing: 0, usage: Self.usage)
    }

    func run() throws {
        let (source, _) = try ObjectSource.parse(arguments, trailing: 0, usage: Self.usage)
        let opened = try source.open(rights: .read)
        defer { opened.object.close() }
        let info: MemoryObject.Info
        do {
            info = try opened.object.info()
        } catch {
            throw ObjectReporting.fail(error, source: source)
        }
        let device = Format.paddedHex(UInt64(info.deviceMajor), width: 2) + ":" + Format.paddedHex(UInt64(info.deviceMinor), width: 2)
        let region = opened.backing?.region
        if json {
            Output.line(JSON.object(opened.jsonHeader(info) + [
                ("path", .string(info.path)),
                ("seals", ObjectReporting.json(info.seals)),
                ("rights", .string(info.rights.description)),
                ("inode", .uint(info.inode)),
                ("device", .string(device)),
                ("region", .optional(region) { region in
                    .object([
                        ("start", .hex(region.start)),
                        ("end", .hex(region.end)),
                        ("perms", .string(region.permissions.description)),
                        ("shared", .bool(region.isShared)),
                        ("offset", .uint(region.offset)),
                    ])
                }),
                ("objectOffset", .optional(opened.backing?.offset) { .uint($0) }),
            ]).text)
            return
        }
        var lines = [
            "object:  \(info.kind.rawValue) \(info.name)",
            "path:    \(info.path)",
            "size:    \(info.size) bytes",
            "seals:   \(ObjectReporting.text(info.seals))",
            "rights:  \(info.rights)",
            "inode:   \(info.inode) on \(device)",
            "source:  \(opened.sourceDescription)",
        ]
        if let region, let backing = opened.backing, let address = opened.address {
            lines.append("mapping: \(Format.hex(region.start))-\(Format.hex(region.end)) \(region.permissions)\(region.isShared ? "s" : "p") at object offset \(Format.hex(region.offset))")
            lines.append("address: \(Format.hex(address)) is object offset \(Format.hex(backing.offset))")
        }
        Output.lines(lines)
    }
}
