import ArgumentParser
import Glibc
import ProcessMemory
import ProcessMemoryCore

/// The interpreter behind `procmem session`: one ``ScanSession`` (matches, type, undo), one set
/// of background ``ValueJobs`` (freeze, watch), and the commands that drive them. Commands come
/// from the line editor, a pipe, or `-c`; a failed command prints its error and the session goes on.
final class SessionShell {
    let handle: ProcessHandle
    let session: ScanSession
    let jobs: ValueJobs
    let names: SharedSymbolNames
    let interval: Duration
    /// Pointer chains found by `pointer scan`, by the address they lead to (used by `save`).
    var chains: [UInt64: PointerChain] = [:]
    /// Every chain `pointer scan` found, ranked, by target address (for `save … chain=K`).
    var foundChains: [UInt64: [PointerChain]] = [:]
    /// The first error's exit status, for a scripted run.
    private(set) var firstFailure: Int32?
    /// Set by `quit`.
    private(set) var quitting = false
    /// `--json`: one ``SessionCommandReport`` line per command instead of text.
    var json = false
    /// The errors of the command running, for `--json`.
    private var commandErrors: [SessionErrorReport] = []

    init(handle: ProcessHandle, session: ScanSession, interval: Duration) {
        self.handle = handle
        self.session = session
        self.jobs = ValueJobs(handle: handle)
        self.names = SharedSymbolNames(handle: handle)
        self.interval = interval
    }

    /// `procmem 1234 [i32, 17 matches]> `.
    var prompt: String {
        let what: String
        switch session.state {
        case .empty: what = "no matches"
        case .snapshot: what = "snapshot"
        case .matches(let set): what = "\(set.count) match\(set.count == 1 ? "" : "es")\(set.isPartial ? ", partial" : "")"
        }
        let running = jobs.jobs.count
        return "procmem \(handle.pid) [\(session.type.rawValue), \(what)\(running > 0 ? ", \(running) job\(running == 1 ? "" : "s")" : "")]> "
    }

    /// Runs one input line: commands separated by `;`. Returns false after `quit`.
    @discardableResult
    func execute(line: String) -> Bool {
        for part in line.split(separator: ";", omittingEmptySubsequences: true) {
            let words = part.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard !words.isEmpty, !words[0].hasPrefix("#") else { continue }
            if json {
                commandErrors = []
                let ((), captured) = Output.capturing { runReporting(words) }
                Output.line(JSONOutput.text(commandReport(String(part).trimmingWhitespace, captured)))
            } else {
                runReporting(words)
            }
            if quitting { return false }
        }
        return true
    }

    /// Runs one command, printing its error, then what the background jobs saw.
    private func runReporting(_ words: [String]) {
        do {
            try run(words)
        } catch let error as ProcessMemoryError {
            report(error)
        } catch let error as SessionUsage {
            fail(error.message, status: ExitCodes.usage)
        } catch {
            fail("\(error)", status: 1)
        }
        reportEvents()
    }

    /// The `--json` object for a command that printed `captured`.
    func commandReport(_ command: String, _ captured: Output.Captured) -> SessionCommandReport {
        var report = SessionCommandReport(command: command, ok: commandErrors.isEmpty, output: captured.output, errors: commandErrors,
                                          state: "empty", type: currentType.rawValue, matchCount: nil, partial: false, matches: [],
                                          jobs: jobs.jobs.count)
        switch session.state {
        case .empty: break
        case .snapshot(_, _): report.state = "snapshot"
        case .matches(let set):
            report.state = "matches"
            report.matchCount = set.count
            report.partial = set.isPartial
            let rows = (try? session.current(0..<min(20, set.count))) ?? []
            report.matches = rows.map { row in
                SessionMatchReport(index: row.index, address: Format.hex(row.match.address), type: typeName(set, width: row.match.width),
                                   value: SessionCommandReport.json(row.now))
            }
        }
        return report
    }

    /// Prints what the background jobs saw since the last prompt: watch changes, failures, an end.
    func reportEvents(includeFreezes: Bool = false) {
        let (events, dropped) = jobs.takeEvents()
        var lines: [String] = []
        for event in events {
            let label = Format.printable(event.label)
            switch event.what {
            case .changed(let old, let new):
                let type = jobType(event.job)
                let was = old.map { " (was \(type.format($0, hex: false)))" } ?? ""
                lines.append("\(WatchInterval.timestamp(event.time)) watch \(label) \(Format.hex(event.address)): \(type.format(new, hex: false))\(was)")
            case .restored(let found) where includeFreezes:
                let type = jobType(event.job)
                lines.append("\(WatchInterval.timestamp(event.time)) freeze \(label) \(Format.hex(event.address)): restored (was \(found.map { type.format($0, hex: false) } ?? "<unreadable>"))")
            case .restored, .held: break
            case .failed(let error):
                lines.append("\(WatchInterval.timestamp(event.time)) job \(label): \(error.description)")
            case .ended(let error):
                lines.append("\(WatchInterval.timestamp(event.time)) jobs ended: \(error.description)")
            }
        }
        if dropped > 0 { lines.append("(\(dropped) older job events dropped)") }
        if !lines.isEmpty { Output.lines(lines) }
    }

    /// The value type of job `id`, for printing.
    private func jobType(_ id: Int) -> ValueType { jobValueTypes[id] ?? .u8 }

    /// The value types of jobs, by id.
    var jobValueTypes: [Int: ValueType] = [:]

    func report(_ error: ProcessMemoryError) {
        let exit = ErrorReporting.fail(error)
        commandErrors.append(SessionErrorReport(code: error.code.rawValue, exitCode: exit.rawValue, message: error.description))
        if firstFailure == nil { firstFailure = exit.rawValue }
    }

    func fail(_ message: String, status: Int32, code: ProcessMemoryError.Code? = nil) {
        Output.error(message)
        let name = code?.rawValue ?? (status == ExitCodes.usage ? "usage" : "failed")
        commandErrors.append(SessionErrorReport(code: name, exitCode: status, message: message))
        if firstFailure == nil { firstFailure = status }
    }

    /// Dispatches one command.
    private func run(_ words: [String]) throws {
        let command = words[0].lowercased()
        let arguments = Array(words.dropFirst())
        switch command {
        case "help", "?": help(arguments.first)
        case "quit", "exit", "q": quitting = true
        case "list", "ls", "l": try list(arguments)
        case "delete", "del": try delete(arguments)
        case "undo": try undo()
        case "reset": try session.reset(); Output.line("matches forgotten (undo brings them back)")
        case "type": try setType(arguments)
        case "snapshot": try snapshot()
        case "set": try set(arguments)
        case "freeze": try freeze(arguments)
        case "unfreeze": stopJobs(arguments, kind: "freeze")
        case "watch": try watch(arguments)
        case "unwatch": stopJobs(arguments, kind: "watch")
        case "stop": stopJobs(arguments, kind: nil)
        case "jobs": showJobs()
        case "pointer": try pointer(arguments)
        case "save": try save(arguments)
        case "sleep": try sleep(arguments)
        case "changed", "unchanged", "increased", "decreased", "=", "==", "!=", "<", ">", "inc", "dec":
            try narrow(SessionFilters.parse(words, type: currentType), shown: words.joined(separator: " "))
        default:
            if let filter = try SessionFilters.parseShorthand(words, type: currentType, narrowing: !isEmpty) {
                try narrow(filter.predicate, shown: filter.shown, scanValue: filter.scanValue)
            } else {
                throw SessionUsage("unknown command '\(Format.printable(command))'; `help` lists the commands")
            }
        }
    }

    /// Whether the session holds nothing yet.
    var isEmpty: Bool {
        if case .empty = session.state { return true }
        return false
    }

    /// The type values are parsed as: the current set's, else the session's.
    var currentType: ScanValueType {
        if case .matches(let set) = session.state, case .values(let type, _) = set.content { return type }
        if case .snapshot(_, let type) = session.state { return type }
        return session.type
    }

    private func narrow(_ predicate: RescanPredicate, shown: String, scanValue: ScanValue? = nil) throws {
        let before = session.state
        let result = try SessionInterrupts.running { cancellation in
            if let scanValue { return try session.enter(scanValue, cancellation: cancellation) }
            return try session.narrow(predicate, cancellation: cancellation)
        }
        let verb: String
        switch before {
        case .empty: verb = "scan for \(shown)"
        case .snapshot: verb = "compared with the snapshot (\(shown))"
        case .matches(let set): verb = "\(set.count) → narrowed by \(shown)"
        }
        var notes: [String] = []
        if result.interrupted { notes.append("interrupted: the set is partial") }
        if result.truncated { notes.append("stopped at the match limit") }
        if !result.skipped.isEmpty { notes.append("\(result.skipped.count) ranges unreadable") }
        let count = result.matches.count
        Output.line("\(verb): \(count) match\(count == 1 ? "" : "es") (\(String(format2: result.elapsed)) s)\(notes.isEmpty ? "" : "; " + notes.joined(separator: "; "))")
        if count > 0 && count <= 10 { try list([]) }
    }

    private func snapshot() throws {
        let result = try SessionInterrupts.running { cancellation in try session.takeSnapshot(cancellation: cancellation) }
        let mib = Double(result.bytesScanned) / Double(1 << 20)
        Output.line("snapshot of \(String(format2: mib)) MiB taken (\(String(format2: result.elapsed)) s)\(result.interrupted ? "; interrupted: partial" : ""); now narrow with changed, unchanged, increased, decreased, +N, -N, < N, > N")
    }

    private func undo() throws {
        if try session.undo() {
            Output.line("undone: \(describeState())")
        } else {
            Output.line("nothing to undo")
        }
    }

    private func describeState() -> String {
        switch session.state {
        case .empty: return "no matches"
        case .snapshot: return "back to the snapshot"
        case .matches(let set): return "\(set.count) match\(set.count == 1 ? "" : "es")"
        }
    }

    private func setType(_ arguments: [String]) throws {
        guard let name = arguments.first else {
            Output.line("type \(session.type.rawValue) (one of \(ScanValueType.allCases.map(\.rawValue).joined(separator: ", ")))")
            return
        }
        guard let type = ScanValueType(rawValue: name.lowercased()) else {
            throw SessionUsage("unknown type '\(Format.printable(name))' (one of \(ScanValueType.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let had = !isEmpty
        try session.setType(type)
        Output.line("type \(type.rawValue)\(had ? "; matches reset (undo brings them back)" : "")")
    }

    /// `list [N]`: the first N matches (default 20) with their values now.
    func list(_ arguments: [String]) throws {
        guard case .matches(let set) = session.state else {
            Output.line(isEmpty ? "no matches: enter a value to scan for it" : "a snapshot: narrow it first (changed, decreased, ...)")
            return
        }
        let limit = try arguments.first.map { text -> Int in
            guard let n = Int(text), n >= 0 else { throw SessionUsage("list takes a number of matches, not '\(Format.printable(text))'") }
            return n
        } ?? 20
        let rows = try session.current(0..<min(limit, set.count))
        let indexWidth = String(max(0, set.count - 1)).count
        let map = try? handle.memoryMap()
        var lines: [String] = []
        for row in rows {
            let type = typeName(set, width: row.match.width)
            let value = row.now.map { "\($0)" } ?? "<unreadable>"
            let was = set.number(ofMatch: row.index).map { "\($0)" } ?? "?"
            let place = map.map { SessionPlaces.describe(row.match.address, in: $0) } ?? ""
            lines.append("[\(Format.right(String(row.index), indexWidth))] \(Format.hex(row.match.address))  \(Format.left(type, 4)) \(Format.left(value, 12)) \(value == was ? "" : "(was \(was)) ")\(Format.printable(place))")
        }
        if set.count > rows.count { lines.append("… \(set.count - rows.count) more (list \(set.count))") }
        Output.lines(lines)
    }

    private func typeName(_ set: MatchSet, width: Int) -> String {
        guard case .values(let type, _) = set.content else { return "bytes" }
        if type == .anyInt { return "i\(width * 8)" }
        return type.rawValue
    }

    private func delete(_ arguments: [String]) throws {
        let indices = try SessionFilters.indices(arguments)
        guard !indices.isEmpty else { throw SessionUsage("delete takes match numbers: delete 0 3 5-7") }
        try session.delete(indices)
        Output.line("deleted \(indices.count); \(describeState())")
    }

    /// `set VALUE [N…]`: writes VALUE to all matches or the chosen ones; `set N[,N…]=VALUE …`
    /// (scanmem's form) writes a value of its own to each group of matches, in one command.
    private func set(_ arguments: [String]) throws {
        guard let first = arguments.first else { throw SessionUsage("set takes a value and optionally match numbers: set 999 [0 2], or set 0,3=42 5=7") }
        if first.contains("=") {
            // The syntax of every group is checked before anything is written; each group then
            // writes as `set VALUE N…` does, in order.
            let groups = try arguments.map { word -> (indices: [Int], value: String) in
                guard let equals = word.firstIndex(of: "="), equals != word.startIndex, word.index(after: equals) != word.endIndex else {
                    throw SessionUsage("'\(Format.printable(word))' is not N[,N…]=VALUE (set 0,3=42 5=7)")
                }
                return (try SessionFilters.indices([String(word[..<equals])]), String(word[word.index(after: equals)...]))
            }
            for group in groups { try set(group.value, to: group.indices) }
            return
        }
        try set(first, to: try SessionFilters.indices(Array(arguments.dropFirst())))
    }

    /// Writes `value` to the matches `chosen` (every match when empty) and says how many it wrote.
    private func set(_ value: String, to chosen: [Int]) throws {
        // Counted as they are written, so setting every match of a large set needs no memory per match.
        var written = 0
        var failed: [(index: Int, error: ProcessMemoryError)] = []
        try session.set(value, matches: chosen.isEmpty ? nil : chosen) { index, error in
            if let error { failed.append((index, error)) } else { written += 1 }
        }
        Output.line("wrote \(value) to \(written) match\(written == 1 ? "" : "es")")
        for failure in failed {
            fail("match \(failure.index): \(failure.error.description)", status: ExitCodes.status(for: failure.error.code), code: failure.error.code)
        }
    }

    private func sleep(_ arguments: [String]) throws {
        guard let text = arguments.first, let duration = try? WatchInterval.parse(text) else {
            throw SessionUsage("sleep takes a time: sleep 2, sleep 500ms")
        }
        SessionInterrupts.running { cancellation in Watcher.sleep(duration, unless: cancellation) }
    }
}

/// A mistake in a session command: printed, with the usage exit status for scripts.
struct SessionUsage: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

extension String {
    /// Two decimals.
    init(format2 value: Double) {
        let hundredths = Int((value * 100).rounded())
        let whole = hundredths / 100
        let fraction = abs(hundredths % 100)
        self = "\(whole)." + (fraction < 10 ? "0" : "") + "\(fraction)"
    }
}
