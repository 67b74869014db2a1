import ArgumentParser
import Glibc
import ProcessMemory

extension Object {
    /// `procmem object create NAME SIZE [--fill HEX] [--seal-size] [--seal-writes] [--hold]`.
    struct Create: ParsableCommand {
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

        @Argument(help: ArgumentHelp("The size in bytes (decimal or 0x hex).", valueName: "size"), transform: Create.parseSize)
        var size: UInt64

        @Option(help: ArgumentHelp("Bytes in hex, repeated over the whole object.", valueName: "bytes"))
        var fill: String?

        @Flag(help: "Fix the size (F_SEAL_GROW|F_SEAL_SHRINK).")
        var sealSize = false

        @Flag(help: "Forbid writes (F_SEAL_WRITE), after --fill.")
        var sealWrites = false

        @Flag(help: "Keep the object open until stdin closes or Ctrl-C.")
        var hold = false

        @OptionGroup var jsonOption: JSONOption

        var json: Bool { jsonOption.json }

        static func parseSize(_ text: String) throws -> UInt64 {
            guard let value = Format.parseUnsigned(text), value <= UInt64(Int64.max) else {
                throw ValidationError("SIZE must be a number from 0 to 2^63-1 (decimal or 0x hex), not '\(text)'")
            }
            return value
        }

        func validate() throws {
            if let fill { _ = try procmem.Write.parseHexBytes(fill) }
        }

        func run() throws {
            let object: MemoryObject
            let source = ObjectSource.path("memfd")
            do {
                object = try MemoryObject(size: size, name: name)
                if let fill, size > 0 { try Self.fill(object, pattern: try procmem.Write.parseHexBytes(fill), size: size) }
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
            let path = info.openablePath
            if json {
                Output.line(JSONOutput.text(Report(pid: getpid(), fd: info.descriptor, path: path, name: info.name,
                                                   size: info.size, inode: info.inode, seals: ObjectReporting.names(info.seals))))
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

        /// `--json`: the shape in the help above; `seals` is null when the filesystem has none.
        struct Report: Encodable {
            var pid: Int32
            var fd: Int32
            var path: String
            var name: String
            var size: UInt64
            var inode: UInt64
            @NullWhenAbsent var seals: [String]?

            enum CodingKeys: String, CodingKey { case pid, fd, path, name, size, inode, seals }
        }
    }
}
