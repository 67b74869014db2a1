import ArgumentParser
import ProcessMemory
import ProcessMemoryCore

/// `procmem table show|watch|freeze|apply PID FILE`: use a cheat table on a process.
struct Table: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show, watch, freeze or apply the entries of a cheat table.",
        discussion: """
            A cheat table is a text file (a small TOML subset) of named entries, written by a \
            session's `save` or by hand:

              [[entry]]
              name = "health"
              address = "game+0x4078 -> +0x18 -> +0x0"
              type = "i32"
              description = "the player's health"
              freeze = "999"

            address is any ADDRESS: 0x…, REGION+OFFSET, a pointer chain, a symbol \
            (game!g_world -> +0x18). type is one of u8 … i64, f32, f64, cstring; description and \
            freeze are optional. Every entry's address is resolved again each time it is used (each \
            round of watch and freeze), so a table made before a restart works after it, whatever \
            ASLR did. A malformed file is refused with its line number.
            """,
        subcommands: [TableShow.self, TableWatch.self, TableFreeze.self, TableApply.self]
    )
}

/// What every table subcommand takes: PID, FILE and the entries to use.
struct TableArguments: ParsableArguments {
    @OptionGroup var processOption: ProcessOption

    @Argument(help: ArgumentHelp("The cheat-table file.", valueName: "file"), completion: .file())
    var file: String

    @Option(name: .customLong("entry"), help: ArgumentHelp("Use only the entry with this name (repeatable).", valueName: "name"))
    var names: [String] = []

    @Option(help: ArgumentHelp("Time between rounds of watch and freeze.", valueName: "interval"), transform: WatchInterval.parse)
    var interval: Duration = .milliseconds(100)

    /// The table's chosen entries, or the reason it cannot be read.
    func entries() throws -> [CheatTable.Entry] {
        let table: CheatTable
        do {
            table = try CheatTable(contentsOf: file)
        } catch {
            throw ErrorReporting.fail(error)
        }
        for name in names where table.entry(named: name) == nil {
            Output.error("invalidArguments: \(Format.printable(file)) has no entry named '\(Format.printable(name))'")
            throw ExitCode(ExitCodes.usage)
        }
        let chosen = names.isEmpty ? table.entries : table.entries.filter { names.contains($0.name) }
        guard !chosen.isEmpty else {
            Output.error("invalidArguments: \(Format.printable(file)) has no entries")
            throw ExitCode(ExitCodes.usage)
        }
        return chosen
    }

    /// The chosen entries that have a freeze value, or a usage error when none has.
    func freezeEntries() throws -> [CheatTable.Entry] {
        let entries = try entries().filter { $0.freeze != nil }
        guard !entries.isEmpty else {
            Output.error("invalidArguments: no chosen entry of \(Format.printable(file)) has a freeze value")
            throw ExitCode(ExitCodes.usage)
        }
        return entries
    }

    /// The bytes an entry's value spans when read: its type's size, or for a cstring its freeze
    /// value's length (else 64 bytes, shown up to the NUL).
    static func size(_ entry: CheatTable.Entry) -> Int {
        entry.type.size ?? max(1, min(4096, entry.freezeBytes?.count ?? 64))
    }

    /// `bytes` as the entry's type.
    static func format(_ bytes: [UInt8], _ entry: CheatTable.Entry) -> String {
        if entry.type == .cstring { return JSON.quoted(cstring(bytes)) }
        return entry.type.format(bytes, hex: false)
    }

    /// `bytes` as the entry's type, for `--json`.
    static func json(_ bytes: [UInt8], _ entry: CheatTable.Entry) -> JSON {
        entry.type == .cstring ? .string(cstring(bytes)) : entry.type.json(bytes, hex: false)
    }

    /// A cstring entry's text: the bytes up to the first NUL.
    static func cstring(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.firstIndex(of: 0).map { Array(bytes[..<$0]) } ?? bytes, as: UTF8.self)
    }
}

/// `procmem table show PID FILE`: each entry's address now and its value.
struct TableShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Resolve each entry and print its address and value.",
        discussion: """
            One line per entry: NAME  0xADDRESS  TYPE  VALUE  (ADDRESS as written)[  freeze VALUE]. An \
            entry that cannot be resolved or read prints its error instead; the exit status is then \
            the first such error's.

            --json prints one array, an object per entry: {"name","expression","type","description",\
            "freeze","address","addressValue","value","error"}. address, addressValue and value are \
            null when the entry cannot be resolved or read, error (as `procmem read --help` \
            describes it) is null when it can; description and freeze are null when the table has none.
            """
    )

    @OptionGroup var arguments: TableArguments
    @OptionGroup var jsonOption: JSONOption

    /// One entry for `--json`.
    struct Report: Encodable {
        var name: String
        var expression: String
        var type: String
        @NullWhenAbsent var description: String?
        @NullWhenAbsent var freeze: String?
        @NullWhenAbsent var address: String?
        @NullWhenAbsent var addressValue: UInt64?
        @NullWhenAbsent var value: JSON?
        @NullWhenAbsent var error: ErrorReport?
    }

    func run() throws {
        let entries = try arguments.entries()
        let handle = try TargetProcess.open(arguments.processOption.pid, rights: .read)
        defer { handle.close() }
        let names = SymbolNames(handle: handle)
        if jsonOption.json {
            var failure: Int32?
            let reports = entries.map { entry -> Report in
                var report = Report(name: entry.name, expression: entry.address, type: entry.type.rawValue,
                                    description: entry.description, freeze: entry.freeze)
                do throws(ProcessMemoryError) {
                    let address = try handle.resolve(entry.expression, names: names)
                    report.address = Format.hex(address)
                    report.addressValue = address
                    let bytes = try handle.read(from: address, count: TableArguments.size(entry))
                    report.value = TableArguments.json(bytes, entry)
                } catch {
                    report.error = ErrorReport(error)
                    if failure == nil { failure = ExitCodes.status(for: error.code) }
                }
                return report
            }
            Output.line(JSONOutput.text(reports))
            if let failure { throw ExitCode(failure) }
            return
        }
        var failure: Int32?
        var lines: [String] = []
        let width = entries.map(\.name.count).max() ?? 0
        for entry in entries {
            let name = Format.left(Format.printable(entry.name), width)
            do {
                let address = try handle.resolve(entry.expression, names: names)
                let bytes = try handle.read(from: address, count: TableArguments.size(entry))
                var line = "\(name)  \(Format.hex(address))  \(Format.left(entry.type.rawValue, 4)) \(TableArguments.format(bytes, entry))  (\(Format.printable(entry.address)))"
                if let freeze = entry.freeze { line += "  freeze \(Format.printable(freeze))" }
                lines.append(line)
            } catch {
                Output.lines(lines)
                lines = []
                Output.error("\(Format.printable(entry.name)): \(error.description)")
                if failure == nil { failure = ExitCodes.status(for: error.code) }
            }
        }
        Output.lines(lines)
        if let failure { throw ExitCode(failure) }
    }
}

/// Runs table entries as background-style jobs in the foreground until Ctrl-C.
enum TableJobs {
    /// One event of `table watch --json` or `table freeze --json`: the shape in their help.
    struct EventReport: Encodable {
        var time: String
        var name: String
        /// "changed", "restored", "held" or "failed".
        var event: String
        @NullWhenAbsent var address: String?
        @NullWhenAbsent var value: JSON?
        @NullWhenAbsent var old: JSON?
        @NullWhenAbsent var error: ErrorReport?
    }

    /// The JSON shape of table watch and freeze, for their help.
    static let jsonHelp = """
        --json prints one object per event, a line each: {"time","name","event","address","value",\
        "old","error"}: event is "changed" (watch; old null in the first round), "restored" (freeze \
        wrote value back; old is what it found, null when unreadable), "held" (freeze found value \
        in place in its first round) or "failed" (address null when the entry could not be \
        resolved; error as `procmem read --help` describes it, null otherwise).
        """

    static func run(_ jobs: ValueJobs, entries: [CheatTable.Entry], interval: Duration, freezing: Bool, json: Bool = false) throws {
        var byID: [Int: CheatTable.Entry] = [:]
        let names = SharedSymbolNames(handle: jobs.handle)
        for entry in entries {
            let kind: ValueJobs.Kind
            if freezing {
                guard let bytes = entry.freezeBytes else { continue }
                kind = .freeze(bytes)
            } else {
                kind = .watch(size: TableArguments.size(entry))
            }
            byID[jobs.add(kind, .expression(entry.expression, names: names), label: entry.name)] = entry
        }
        Interruption.install()
        while !Interruption.requested {
            let alive = jobs.round()
            var lines: [String] = []
            for event in jobs.takeEvents().events {
                guard let entry = byID[event.job] else { continue }
                let name = Format.printable(entry.name)
                let time = WatchInterval.timestamp(event.time)
                if json {
                    var report = EventReport(time: time, name: entry.name, event: "held", address: Format.hex(event.address))
                    let freezeValue = entry.freezeBytes.map { TableArguments.json($0, entry) }
                    switch event.what {
                    case .changed(let old, let new):
                        report.event = "changed"
                        report.value = TableArguments.json(new, entry)
                        report.old = old.map { TableArguments.json($0, entry) }
                    case .restored(let found):
                        report.event = "restored"
                        report.value = freezeValue
                        report.old = found.map { TableArguments.json($0, entry) }
                    case .held:
                        report.value = freezeValue
                    case .failed(let error):
                        report.event = "failed"
                        if event.address == 0 { report.address = nil }
                        report.error = ErrorReport(error)
                    case .ended(let error):
                        Output.lines(lines)
                        throw ErrorReporting.fail(error)
                    }
                    lines.append(JSONOutput.text(report))
                    continue
                }
                switch event.what {
                case .changed(let old, let new):
                    lines.append("\(time) \(name) \(Format.hex(event.address)): \(TableArguments.format(new, entry))\(old.map { " (was \(TableArguments.format($0, entry)))" } ?? "")")
                case .restored(let found):
                    lines.append("\(time) \(name) \(Format.hex(event.address)): \(Format.printable(entry.freeze ?? "")) (was \(found.map { TableArguments.format($0, entry) } ?? "<unreadable>"))")
                case .held:
                    lines.append("\(time) \(name) \(Format.hex(event.address)): \(Format.printable(entry.freeze ?? "")) (already held)")
                case .failed(let error):
                    Output.lines(lines)
                    lines = []
                    Output.error("\(time) \(name): \(error.description)")
                case .ended(let error):
                    Output.lines(lines)
                    throw ErrorReporting.fail(error)
                }
            }
            Output.lines(lines)
            if !alive { break }
            Watcher.sleep(interval, unless: Interruption.cancellation)
        }
    }
}

/// `procmem table watch PID FILE`: every entry's changes until Ctrl-C.
struct TableWatch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Print each entry's value and its changes until Ctrl-C.",
        discussion: "Prints `TIME NAME 0xADDRESS: VALUE (was OLD)` for each change (the first round prints every value). Each round resolves every entry's address again. An entry that cannot be resolved or read is reported on stderr once until that changes.\n\n" + TableJobs.jsonHelp
    )

    @OptionGroup var arguments: TableArguments
    @OptionGroup var jsonOption: JSONOption

    func run() throws {
        let entries = try arguments.entries()
        let handle = try TargetProcess.open(arguments.processOption.pid, rights: .read)
        defer { handle.close() }
        try TableJobs.run(ValueJobs(handle: handle), entries: entries, interval: arguments.interval, freezing: false, json: jsonOption.json)
    }
}

/// `procmem table freeze PID FILE`: keep every entry with a freeze value until Ctrl-C.
struct TableFreeze: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "freeze",
        abstract: "Keep every entry that has a freeze value at it until Ctrl-C.",
        discussion: "Each round resolves every entry's address again (a pointer chain follows the object when the program moves it) and writes the freeze value when it differs, printing `TIME NAME 0xADDRESS: VALUE (was OLD)`. A cstring entry's text is written without a NUL. Entries without a freeze value are left alone.\n\n" + TableJobs.jsonHelp
    )

    @OptionGroup var arguments: TableArguments
    @OptionGroup var jsonOption: JSONOption

    func run() throws {
        let entries = try arguments.freezeEntries()
        let handle = try TargetProcess.open(arguments.processOption.pid, rights: .readWrite)
        defer { handle.close() }
        try TableJobs.run(ValueJobs(handle: handle), entries: entries, interval: arguments.interval, freezing: true, json: jsonOption.json)
    }
}

/// `procmem table apply PID FILE`: write every freeze value once.
struct TableApply: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Write each entry's freeze value once.",
        discussion: """
            Prints `NAME 0xADDRESS: VALUE (was OLD)` per entry written. An entry that cannot be \
            resolved or written prints its error; the exit status is then the first such error's.

            --json prints one object: {"entries": [{"name","address","value","old","error"}]}, an \
            entry per chosen entry with a freeze value: address null when it could not be \
            resolved, old null when it could not be read first, error (as `procmem read --help` \
            describes it) null when the write was done.
            """
    )

    @OptionGroup var arguments: TableArguments
    @OptionGroup var jsonOption: JSONOption

    /// `table apply --json`.
    struct Report: Encodable {
        struct Entry: Encodable {
            var name: String
            @NullWhenAbsent var address: String?
            var value: JSON
            @NullWhenAbsent var old: JSON?
            @NullWhenAbsent var error: ErrorReport?
        }
        var entries: [Entry]
    }

    func run() throws {
        let entries = try arguments.freezeEntries()
        let handle = try TargetProcess.open(arguments.processOption.pid, rights: .readWrite)
        defer { handle.close() }
        let names = SymbolNames(handle: handle)
        var failure: Int32?
        var report = Report(entries: [])
        for entry in entries {
            guard let bytes = entry.freezeBytes else { continue }
            var item = Report.Entry(name: entry.name, value: TableArguments.json(bytes, entry))
            defer { report.entries.append(item) }
            do throws(ProcessMemoryError) {
                let address = try handle.resolve(entry.expression, names: names)
                item.address = Format.hex(address)
                let old = try? handle.read(from: address, count: bytes.count)
                item.old = old.map { TableArguments.json($0, entry) }
                try handle.writeExactly(bytes, to: address)
                if jsonOption.json { continue }
                Output.line("\(Format.printable(entry.name)) \(Format.hex(address)): \(Format.printable(entry.freeze ?? "")) (was \(old.map { TableArguments.format($0, entry) } ?? "<unreadable>"))")
            } catch {
                item.error = ErrorReport(error)
                if !jsonOption.json { Output.error("\(Format.printable(entry.name)): \(error.description)") }
                if failure == nil { failure = ExitCodes.status(for: error.code) }
            }
        }
        if jsonOption.json { Output.line(JSONOutput.text(report)) }
        if let failure { throw ExitCode(failure) }
    }
}
