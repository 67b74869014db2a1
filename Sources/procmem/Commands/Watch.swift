import ArgumentParser
import Glibc
import ProcessMemory

/// `procmem watch PID [ADDRESS… --as TYPE] [--entry TYPE:ADDRESS …] [--interval 100ms]`: print each
/// change as it happens.
struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print each change of a value as it happens.",
        discussion: """
            Reads every ADDRESS each --interval (all of them with one batched read) and prints one line \
            per change: `TIME 0xADDR: OLD -> NEW`, TIME in UTC (2026-01-31T12:00:00.123Z). The first \
            line for each address is `TIME 0xADDR: VALUE (initial)`; a value that cannot be read shows \
            as <CODE>. Runs until Ctrl-C (or SIGTERM), then prints a summary on stderr and exits 0. If \
            the process exits, the watch ends with its error (status 14, badState). An address inside \
            a symbol of a mapped module is named: `TIME 0xADDR <module!symbol+0x10>: OLD -> NEW` (not \
            with --no-symbols).

            --json prints one object per change: {"time":"…","address":"0x…","old":V|null,"new":V}, \
            where V is a number, a "0x…" string with --hex, or {"error":"CODE"}; "symbol":"module!symbol+0x10" \
            is added when the address lies inside a symbol.

            Values of different types are watched together with --entry TYPE:ADDRESS, repeated \
            (`--entry u32:[heap]+0x10 --entry f64:"game+0x40 -> +0x8"`), alone or after ADDRESS… \
            --as TYPE; every ADDRESS may be a pointer chain, resolved once at the start.
            """
    )

    @OptionGroup var processOption: ProcessOption

    var pid: Int32 { processOption.pid }

    @Argument(help: AddressArgument.help, transform: AddressArgument.parse)
    var addresses: [AddressArgument] = []

    @Option(name: .customLong("as"), help: ArgumentHelp("The type of the ADDRESS values (not cstring).", valueName: "type"))
    var type: ValueType?

    @Option(name: .customLong("entry"), parsing: .singleValue,
            help: ArgumentHelp("Another value to watch, with its own type: TYPE:ADDRESS (repeatable).", valueName: "entry"),
            transform: { try ValueEntry.parse($0, withValue: false) })
    var entries: [ValueEntry] = []

    /// Every value to watch: the ADDRESS arguments with --as, then each --entry.
    private var allEntries: [ValueEntry] {
        addresses.map { ValueEntry(type: type ?? .u8, address: $0) } + entries
    }

    @Option(help: ArgumentHelp("Time between reads: 100ms, 0.5s, 2s (a bare number is seconds).", valueName: "interval"),
            transform: WatchInterval.parse)
    var interval: Duration = .milliseconds(100)

    @Flag(help: "Print integer values in hex.")
    var hex = false

    @OptionGroup var jsonOption: JSONOption

    var json: Bool { jsonOption.json }

    @OptionGroup var symbolsOption: SymbolsOption

    func validate() throws {
        guard !addresses.isEmpty || !entries.isEmpty else { throw ValidationError("give at least one ADDRESS (with --as) or --entry TYPE:ADDRESS") }
        if !addresses.isEmpty && type == nil { throw ValidationError("ADDRESS needs --as TYPE") }
        if addresses.isEmpty && type != nil { throw ValidationError("--as applies to ADDRESS arguments; give each --entry its own TYPE:") }
        let types = allEntries.map(\.type)
        guard types.allSatisfy({ $0.size != nil }) else { throw ValidationError("cstring cannot be watched; use a fixed-size type") }
        if hex && !types.contains(where: \.isInteger) { throw ValidationError("--hex needs an integer type") }
    }

    func run() throws {
        let handle = try TargetProcess.open(pid, rights: .read)
        defer { handle.close() }
        var targets: [Watcher.Target] = []
        let entries = allEntries
        let names = SymbolNames(handle: handle, option: symbolsOption)
        for entry in entries {
            targets.append(Watcher.Target(address: try TargetProcess.resolve(entry.address, in: handle, names: names),
                                          size: entry.type.size ?? 1))
        }
        // Named once, before the first read: the lines then cost no lookups.
        let labels = targets.map { names.label(for: $0.address) }
        Interruption.install()
        let watcher = Watcher(handle: handle, targets: targets)
        do {
            try watcher.run(interval: interval, cancellation: Interruption.cancellation) { change in
                Output.line(line(for: change, address: targets[change.target].address, symbol: labels[change.target],
                                 type: entries[change.target].type))
            }
        } catch {
            Output.error(summary(watcher))
            throw ErrorReporting.fail(error)
        }
        Output.error(summary(watcher))
    }

    private func summary(_ watcher: Watcher) -> String {
        "watch stopped after \(watcher.rounds) read\(watcher.rounds == 1 ? "" : "s"): \(watcher.changes) change\(watcher.changes == 1 ? "" : "s")"
    }

    private func line(for change: Watcher.Change, address: UInt64, symbol: String?, type: ValueType) -> String {
        let time = WatchInterval.timestamp(change.time)
        if json {
            return JSONOutput.text(ChangeReport(time: time, address: Format.hex(address),
                                                old: change.old.map { jsonValue($0, type) } ?? .null,
                                                new: jsonValue(change.new, type), symbol: symbol))
        }
        let named = Format.hex(address) + (symbol.map { " <" + Format.printable($0) + ">" } ?? "")
        guard let old = change.old else { return "\(time) \(named): \(text(change.new, type)) (initial)" }
        return "\(time) \(named): \(text(old, type)) -> \(text(change.new, type))"
    }

    private func text(_ value: Watcher.Value, _ type: ValueType) -> String {
        switch value {
        case .bytes(let bytes): return type.format(bytes, hex: hex && type.isInteger)
        case .unreadable(let error): return "<\(error.code.rawValue)>"
        }
    }

    private func jsonValue(_ value: Watcher.Value, _ type: ValueType) -> JSON {
        switch value {
        case .bytes(let bytes): return type.json(bytes, hex: hex)
        case .unreadable(let error): return .encoded(UnreadableValue(error: error.code.rawValue))
        }
    }
}

/// One change in `watch --json`: the shape in `procmem watch --help`.
struct ChangeReport: Encodable {
    var time: String
    var address: String
    /// null for an address's first line.
    var old: JSON
    var new: JSON
    /// `module!symbol+0x10` when the address lies inside a symbol; left out otherwise.
    var symbol: String?

    enum CodingKeys: String, CodingKey { case time, address, old, new, symbol }
}

/// A value `watch` could not read, in `--json`: `{"error":"CODE"}`.
struct UnreadableValue: Encodable, Sendable {
    var error: String
}

/// `--interval` parsing and timestamps for watch and freeze.
enum WatchInterval {
    /// `100ms`, `0.5s`, `2s`, `1m`, or a bare number of seconds; 1 ms ... 1 hour.
    static func parse(_ text: String) throws -> Duration {
        let input = text.trimmingWhitespace.lowercased()
        var number = Substring(input)
        var scale = 1.0
        if input.hasSuffix("ms") {
            number = number.dropLast(2)
            scale = 0.001
        } else if input.hasSuffix("s") {
            number = number.dropLast()
        } else if input.hasSuffix("m") {
            number = number.dropLast()
            scale = 60
        }
        guard let value = Double(number), value.isFinite else {
            throw ValidationError("--interval: '\(text)' is not a duration (write 100ms, 0.5s or 2)")
        }
        let seconds = value * scale
        guard seconds >= 0.001, seconds <= 3600 else { throw ValidationError("--interval must be between 1ms and 1 hour") }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    /// `2026-01-31T12:00:00.123Z` for `seconds` since the Unix epoch (`gmtime_r(3)`).
    static func timestamp(_ seconds: Double) -> String {
        var whole = time_t(seconds.rounded(.down))
        let millis = Int(((seconds - Double(whole)) * 1000).rounded(.down))
        var parts = tm()
        gmtime_r(&whole, &parts)
        func pad(_ value: Int32, _ width: Int = 2) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1))-\(pad(parts.tm_mday))T"
            + "\(pad(parts.tm_hour)):\(pad(parts.tm_min)):\(pad(parts.tm_sec)).\(pad(Int32(min(max(millis, 0), 999)), 3))Z"
    }
}
