import ArgumentParser
import Glibc
import ProcessMemory

extension Object {
    /// `procmem object info (PID REGION | PATH)`.
    struct Info: ParsableCommand {
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

        @OptionGroup var jsonOption: JSONOption

        var json: Bool { jsonOption.json }

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
                Output.line(JSONOutput.text(ObjectReport(header: opened.header(info), details: Report(
                    path: info.path, seals: ObjectReporting.names(info.seals), rights: info.rights.description,
                    inode: info.inode, device: device,
                    region: region.map { Report.Region(start: Format.hex($0.start), end: Format.hex($0.end),
                                                       perms: $0.permissions.description, shared: $0.isShared, offset: $0.offset) },
                    objectOffset: opened.backing?.offset))))
                return
            }
            var lines = [
                "object:  \(info.kind.rawValue) \(Format.printable(info.name))",
                "path:    \(Format.printable(info.path))",
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

        /// `--json` after the ``ObjectHeader`` keys: the shape in the help above; `seals`,
        /// `region` and `objectOffset` may be null.
        struct Report: Encodable {
            struct Region: Encodable {
                var start: String
                var end: String
                var perms: String
                var shared: Bool
                var offset: UInt64
            }
            var path: String
            @NullWhenAbsent var seals: [String]?
            var rights: String
            var inode: UInt64
            var device: String
            @NullWhenAbsent var region: Region?
            @NullWhenAbsent var objectOffset: UInt64?

            enum CodingKeys: String, CodingKey { case path, seals, rights, inode, device, region, objectOffset }
        }
    }
}
