import ArgumentParser
import ProcessMemory

/// `procmem freeze PID [ADDRESS VALUE --as TYPE] [--entry TYPE:ADDRESS=VALUE …] [--interval 100ms]`:
/// keep writing values.
struct Freeze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keep values at addresses until stopped.",
        discussion: """
            Each --interval, reads the value at ADDRESS and writes VALUE back when it differs (all or \
            nothing, native byte order; --as cstring writes the UTF-8 bytes and a NUL). Prints \
            `TIME 0xADDR: VALUE (was OLD)` for each write, OLD being what was found there (or \
            `VALUE (already held)` when the first look finds it in place); a failed write is \
            reported on stderr and retried. Runs until Ctrl-C (or SIGTERM), then prints a summary on \
            stderr and exits 0. If the process exits, the freeze ends with its error (status 14, \
            badState).

            Several values, each with its own type, are frozen together with --entry \
            TYPE:ADDRESS=VALUE, repeated (`--entry u32:[heap]+0x10=100 --entry f32:"game+0x40 -> \
            +0x8"=2.5`), alone or after ADDRESS VALUE --as TYPE; every ADDRESS may be a pointer \
            chain, resolved once at the start. Each round looks at the entries in order. An address \
            inside a symbol of a mapped module is named, `0xADDR <module!symbol+0x10>: …` (not with \
            --no-symbols).

            --json prints one object per line instead, a line per write, first hold or failed \
            write: {"time","address","symbol","event","value","old","error"}: event is "restored" \
            (value written back; old is what was found, null when unreadable), "held" (the first \
            look found value in place; old null) or "writeFailed" (error as `procmem read --help` \
            describes it, null otherwise); symbol is "module!symbol+0x10" or null. A cstring's \
            value and old are strings.
            """
    )

    @OptionGroup var processOption: ProcessOption

    var pid: Int32 { processOption.pid }

    @Argument(help: AddressArgument.help, transform: AddressArgument.parse)
    var address: AddressArgument?

    @Argument(help: ArgumentHelp("The value to keep (integers in decimal or 0x hex; floats as Swift parses them).", valueName: "value"))
    var value: String?

    @Option(name: .customLong("as"), help: ArgumentHelp("The type of VALUE.", valueName: "type"))
    var type: ValueType?

    @Option(name: .customLong("entry"), parsing: .singleValue,
            help: ArgumentHelp("Another value to keep, with its own type: TYPE:ADDRESS=VALUE (repeatable).", valueName: "entry"),
            transform: { try ValueEntry.parse($0, withValue: true) })
    var entries: [ValueEntry] = []

    @Option(help: ArgumentHelp("Time between rounds: 100ms, 0.5s, 2s (a bare number is seconds).", valueName: "interval"),
            transform: WatchInterval.parse)
    var interval: Duration = .milliseconds(100)

    @OptionGroup var modeOption: ModeOption

    var mode: AccessModeOption { modeOption.mode }

    @OptionGroup var symbolsOption: SymbolsOption

    @OptionGroup var jsonOption: JSONOption

    /// One line of `freeze --json`.
    struct EventReport: Encodable {
        var time: String
        var address: String
        @NullWhenAbsent var symbol: String?
        /// "restored", "held" or "writeFailed".
        var event: String
        var value: JSON
        @NullWhenAbsent var old: JSON?
        @NullWhenAbsent var error: ErrorReport?
    }

    /// A frozen entry: what it writes and how it is shown.
    struct Item {
        var freezer: Freezer
        var type: ValueType
        var shown: String
        var named: String
        var address: UInt64
        var symbol: String?
        var bytes: [UInt8]
    }

    /// `bytes` as `type` for `--json` (a cstring's text up to its NUL).
    private static func json(_ bytes: [UInt8], _ type: ValueType) -> JSON {
        type.size == nil ? .string(TableArguments.cstring(bytes)) : type.json(bytes, hex: false)
    }

    func validate() throws {
        _ = try payloads()
    }

    /// Every entry with the bytes to keep: ADDRESS VALUE --as TYPE first, then each --entry.
    private func payloads() throws -> [(entry: ValueEntry, bytes: [UInt8])] {
        var all: [ValueEntry] = []
        switch (address, value, type) {
        case (let address?, let value?, let type?): all.append(ValueEntry(type: type, address: address, value: value))
        case (nil, nil, nil): break
        case (_?, nil, _): throw ValidationError("ADDRESS needs a VALUE")
        case (_?, _?, nil): throw ValidationError("VALUE needs --as TYPE")
        default: throw ValidationError("--as applies to ADDRESS VALUE; give each --entry its own TYPE:")
        }
        all += entries
        guard !all.isEmpty else { throw ValidationError("give ADDRESS VALUE --as TYPE, or --entry TYPE:ADDRESS=VALUE") }
        return try all.map { entry in
            do throws(ValueType.EncodingFailure) {
                return (entry, try entry.type.encode(entry.value ?? ""))
            } catch {
                throw ValidationError(all.count > 1 ? "\(entry.address.text): \(error.description)" : error.description)
            }
        }
    }

    func run() throws {
        let payloads = try payloads()
        let handle = try TargetProcess.open(pid, rights: .readWrite)
        defer { handle.close() }
        var freezers: [Item] = []
        let names = SymbolNames(handle: handle, option: symbolsOption)
        for (entry, bytes) in payloads {
            let start = try TargetProcess.resolve(entry.address, in: handle, mode: mode, names: names)
            let shown = entry.type.size == nil ? JSON.quoted(entry.value ?? "") : entry.type.format(bytes, hex: false)
            freezers.append(Item(freezer: Freezer(handle: handle, address: start, bytes: bytes, mode: mode.writeMode), type: entry.type, shown: shown,
                                 named: Format.hex(start) + names.suffix(for: start), address: start, symbol: names.label(for: start), bytes: bytes))
        }
        Interruption.install()
        let json = jsonOption.json
        func report(_ event: Freezer.Event?, _ item: Item) {
            if json {
                var line = EventReport(time: "", address: Format.hex(item.address), symbol: item.symbol, event: "held",
                                       value: Self.json(item.bytes, item.type))
                switch event {
                case .restored(let time, let found)?:
                    line.time = WatchInterval.timestamp(time)
                    line.event = "restored"
                    line.old = found.map { Self.json($0, item.type) }
                case .writeFailed(let time, let error)?:
                    line.time = WatchInterval.timestamp(time)
                    line.event = "writeFailed"
                    line.error = ErrorReport(error)
                case nil:
                    line.time = WatchInterval.timestamp(Watcher.now())
                }
                Output.line(JSONOutput.text(line))
                return
            }
            switch event {
            case nil:
                Output.line("\(WatchInterval.timestamp(Watcher.now())) \(item.named): \(item.shown) (already held)")
            case .restored(let time, let found)?:
                let old = found.map { item.type.size == nil ? "\($0.count) bytes" : item.type.format($0, hex: false) } ?? "<unreadable>"
                Output.line("\(WatchInterval.timestamp(time)) \(item.named): \(item.shown) (was \(old))")
            case .writeFailed(let time, let error)?:
                Output.error("\(WatchInterval.timestamp(time)) write failed: \(error.description)")
            }
        }
        do {
            // The first round always says something for each entry, even when the value already holds.
            for item in freezers {
                report(try item.freezer.freezeOnce(), item)
            }
            while !Interruption.requested {
                Watcher.sleep(interval, unless: Interruption.cancellation)
                if Interruption.requested { break }
                for item in freezers {
                    if let event = try item.freezer.freezeOnce() { report(event, item) }
                }
            }
        } catch {
            Output.error(summary(freezers.map(\.freezer)))
            throw ErrorReporting.fail(error, mode: mode)
        }
        Output.error(summary(freezers.map(\.freezer)))
    }

    private func summary(_ freezers: [Freezer]) -> String {
        let rounds = freezers.map(\.rounds).max() ?? 0
        let writes = freezers.reduce(0) { $0 + $1.writes }
        let failures = freezers.reduce(0) { $0 + $1.failures }
        return "freeze stopped after \(rounds) round\(rounds == 1 ? "" : "s"): \(writes) write\(writes == 1 ? "" : "s"), \(failures) failed"
    }
}
