import ArgumentParser
import ProcessMemory

/// `procmem maps PID`: the process's mappings as a pmap-like table or JSON.
struct Maps: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the memory map of a process.",
        discussion: """
            The table has one row per region: start address, size in KiB, permissions with p (private) \
            or s (shared), file offset, device, inode, kind and path; a total line follows. --details \
            reads /proc/PID/smaps and adds RSS, Dirty (private and shared dirty) and swap (KiB) and the \
            kernel's VmFlags.

            --json prints one array, one object per region, in address order:
              {"start":"0x…","end":"0x…","startValue":N,"endValue":N,"size":N,
               "perms":"rw-","shared":BOOL,"offset":N,"dev":"fd:01","inode":N,
               "path":"…"|null,"deleted":BOOL,"kind":"file"}
            kind is one of \(MemoryRegion.Kind.allCases.map(\.rawValue).joined(separator: ", ")). \
            With --details each object also has "rss", "pss", "dirty", "swap" (bytes) and "vmFlags" (an \
            array of two-letter strings); "dirty" was added in this version.
            """
    )

    @OptionGroup var processOption: ProcessOption

    var pid: Int32 { processOption.pid }

    @OptionGroup var jsonOption: JSONOption

    var json: Bool { jsonOption.json }

    @Flag(help: "Add RSS, Dirty, swap and VmFlags from /proc/PID/smaps.")
    var details = false

    func run() throws {
        let handle = try TargetProcess.open(pid, rights: .read)
        defer { handle.close() }
        let rows: [(MemoryRegion, RegionDetails?)]
        if details {
            do {
                rows = try handle.regionDetails().map { ($0.region, $0) }
            } catch {
                throw ErrorReporting.fail(error)
            }
        } else {
            rows = try TargetProcess.memoryMap(handle).regions.map { ($0, nil) }
        }
        if json {
            Output.line(JSONOutput.text(rows.map { Report(region: $0, details: $1) }))
        } else {
            Output.lines(Self.table(rows, details: details))
        }
    }

    /// One region in `--json`: the shape in the help above; the smaps keys only with --details.
    struct Report: Encodable {
        var region: MemoryRegion
        var details: RegionDetails?

        enum CodingKeys: String, CodingKey {
            case start, end, startValue, endValue, size, perms, shared, offset, dev, inode, path, deleted, kind
            case rss, pss, dirty, swap, vmFlags
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(Format.hex(region.start), forKey: .start)
            try container.encode(Format.hex(region.end), forKey: .end)
            try container.encode(region.start, forKey: .startValue)
            try container.encode(region.end, forKey: .endValue)
            try container.encode(region.size, forKey: .size)
            try container.encode(region.permissions.description, forKey: .perms)
            try container.encode(region.isShared, forKey: .shared)
            try container.encode(region.offset, forKey: .offset)
            try container.encode(Maps.device(region), forKey: .dev)
            try container.encode(region.inode, forKey: .inode)
            try container.encode(region.path, forKey: .path)
            try container.encode(region.isDeleted, forKey: .deleted)
            try container.encode(region.kind.rawValue, forKey: .kind)
            if let details {
                try container.encode(details.rss, forKey: .rss)
                try container.encode(details.pss, forKey: .pss)
                try container.encode(details.dirty, forKey: .dirty)
                try container.encode(details.swap, forKey: .swap)
                try container.encode(details.vmFlags, forKey: .vmFlags)
            }
        }
    }

    static func table(_ rows: [(MemoryRegion, RegionDetails?)], details: Bool) -> [String] {
        var header = ["Address", "Kbytes", "Mode", "Offset", "Device", "Inode", "Kind"]
        if details { header += ["RSS", "Dirty", "Swap", "VmFlags"] }
        header.append("Path")
        var cells: [[String]] = rows.map { region, extra in
            var row = [
                Format.paddedHex(region.start, width: 16),
                String(region.size / 1024),
                region.permissions.description + (region.isShared ? "s" : "p"),
                Format.paddedHex(region.offset, width: 8),
                device(region),
                String(region.inode),
                region.kind.rawValue,
            ]
            if details {
                row += [String((extra?.rss ?? 0) / 1024), String((extra?.dirty ?? 0) / 1024), String((extra?.swap ?? 0) / 1024),
                        extra?.vmFlags.joined(separator: " ") ?? ""]
            }
            row.append(Format.printable(region.path ?? "") + (region.isDeleted ? " (deleted)" : ""))
            return row
        }
        var total = ["total", String(rows.reduce(0) { $0 + $1.0.size } / 1024), "", "", "", "", ""]
        if details {
            total += [String(rows.reduce(0) { $0 + ($1.1?.rss ?? 0) } / 1024),
                      String(rows.reduce(0) { $0 + ($1.1?.dirty ?? 0) } / 1024),
                      String(rows.reduce(0) { $0 + ($1.1?.swap ?? 0) } / 1024), ""]
        }
        total.append("")
        cells.insert(header, at: 0)
        cells.append(total)
        let numeric: Set<String> = ["Kbytes", "Inode", "RSS", "Dirty", "Swap"]
        let widths = header.indices.map { column in cells.map { $0[column].count }.max() ?? 0 }
        return cells.map { row in
            var line = ""
            for (column, cell) in row.enumerated() {
                if column > 0 { line += " " }
                if column == row.count - 1 {
                    line += cell
                } else if numeric.contains(header[column]) {
                    line += Format.right(cell, widths[column])
                } else {
                    line += Format.left(cell, widths[column])
                }
            }
            while line.hasSuffix(" ") { line.removeLast() }
            return line
        }
    }

    /// `major:minor` in hex, two digits each at least, as in /proc/PID/maps.
    static func device(_ region: MemoryRegion) -> String {
        Format.paddedHex(UInt64(region.deviceMajor), width: 2) + ":" + Format.paddedHex(UInt64(region.deviceMinor), width: 2)
    }
}
