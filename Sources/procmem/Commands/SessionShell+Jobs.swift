import ProcessMemory
import ProcessMemoryCore
import Synchronization

/// The session's commands that act on chosen matches: freeze and watch in the background,
/// `jobs`, `pointer scan`, `save`.
extension SessionShell {
    /// Matches a background command may take without naming them.
    static let implicitMatchLimit = 100

    /// The value type a match is shown and written as: the set's type, any-int by its width.
    func valueType(of set: MatchSet, match: MatchSet.Match) -> ValueType {
        guard case .values(let type, _) = set.content else { return .u8 }
        if let fixed = type.valueType { return fixed }
        switch match.width {
        case 1: return .i8
        case 2: return .i16
        case 4: return .i32
        default: return .i64
        }
    }

    /// The chosen matches (all when none are named, up to ``implicitMatchLimit``).
    private func chosen(_ indices: [Int], verb: String) throws -> (MatchSet, [Int]) {
        guard case .matches(let set) = session.state, set.count > 0 else {
            throw SessionUsage("there are no matches to \(verb): scan a value first")
        }
        if indices.isEmpty {
            guard set.count <= Self.implicitMatchLimit else {
                throw SessionUsage("\(set.count) matches: narrow them first, or name the ones to \(verb) (\(verb) 0 1 2)")
            }
            return (set, Array(0..<set.count))
        }
        if let bad = indices.first(where: { $0 >= set.count }) {
            throw SessionUsage("there is no match \(bad): matches are numbered 0 ... \(set.count - 1)")
        }
        return (set, indices)
    }

    /// `freeze [N…] [= VALUE]`: keeps the chosen matches at VALUE (or at their value now), in the background.
    func freeze(_ arguments: [String]) throws {
        var words = arguments
        var value: String?
        if let equals = words.firstIndex(where: { $0.hasPrefix("=") }) {
            let glued = String(words[equals].dropFirst())
            let rest = words[(equals + 1)...]
            value = glued.isEmpty ? rest.joined(separator: " ") : ([glued] + rest).joined(separator: " ")
            words.removeSubrange(equals...)
            if value?.isEmpty ?? true { throw SessionUsage("freeze: give the value after =, as in freeze 0 =999") }
        }
        let (set, indices) = try chosen(try SessionFilters.indices(words), verb: "freeze")
        var added: [String] = []
        for index in indices {
            let match = set[index]
            let type = valueType(of: set, match: match)
            let bytes: [UInt8]
            if let value {
                bytes = try encode(value, type: type)
            } else {
                bytes = try readNow(match.address, count: match.width)
            }
            let id = jobs.add(.freeze(bytes), .address(match.address), label: "#\(index)")
            jobValueTypes[id] = type
            added.append("#\(index) \(Format.hex(match.address)) = \(type.format(bytes, hex: false))")
        }
        guard jobs.start(interval: interval) else {
            throw ProcessMemoryError(.noMemory, pid: handle.pid, message: "no thread could be started for the background jobs")
        }
        jobs.round()
        reportEvents()
        Output.line("freezing \(added.joined(separator: ", ")) (every \(interval); `jobs` shows them, `unfreeze` stops them)")
    }

    /// `watch [N…]`: reports changes of the chosen matches between prompts.
    func watch(_ arguments: [String]) throws {
        let (set, indices) = try chosen(try SessionFilters.indices(arguments), verb: "watch")
        for index in indices {
            let match = set[index]
            let id = jobs.add(.watch(size: match.width), .address(match.address), label: "#\(index)")
            jobValueTypes[id] = valueType(of: set, match: match)
        }
        guard jobs.start(interval: interval) else {
            throw ProcessMemoryError(.noMemory, pid: handle.pid, message: "no thread could be started for the background jobs")
        }
        Output.line("watching \(indices.count) match\(indices.count == 1 ? "" : "es"); changes show before each prompt and on `jobs`")
    }

    /// `unfreeze|unwatch|stop [ID…]`: ends background jobs (all of the kind when no id is given).
    func stopJobs(_ arguments: [String], kind: String?) {
        let ids = Set(arguments.compactMap { Int($0.hasPrefix("%") ? String($0.dropFirst()) : $0) })
        let removed = jobs.remove { job in
            let isKind: Bool
            switch (kind, job.kind) {
            case (nil, _), ("freeze", .freeze), ("watch", .watch): isKind = true
            default: isKind = false
            }
            return isKind && (ids.isEmpty || ids.contains(job.id))
        }
        if jobs.jobs.isEmpty { jobs.stop() }
        Output.line("stopped \(removed) job\(removed == 1 ? "" : "s")")
    }

    /// `jobs`: what runs in the background, and what it saw.
    func showJobs() {
        reportEvents(includeFreezes: true)
        let all = jobs.jobs
        guard !all.isEmpty else {
            Output.line("no background jobs")
            return
        }
        var lines: [String] = []
        for job in all {
            let type = jobValueTypes[job.id] ?? .u8
            let place: String
            switch job.location {
            case .address(let address): place = Format.hex(address)
            case .expression(let expression, _): place = expression.description
            }
            switch job.kind {
            case .freeze(let bytes): lines.append("%\(job.id) freeze \(job.label) \(place) = \(type.format(bytes, hex: false))")
            case .watch: lines.append("%\(job.id) watch  \(job.label) \(place)")
            }
        }
        if let ended = jobs.endedBecause { lines.append("ended: \(ended.description)") }
        Output.lines(lines)
    }

    /// `pointer scan N`: pointer chains from static data to match N, the likely-stable first;
    /// the best is remembered for `save`.
    func pointer(_ arguments: [String]) throws {
        var words = arguments
        if words.first == "scan" { words.removeFirst() }
        guard words.count == 1, let index = Int(words[0]) else { throw SessionUsage("pointer scan takes one match number: pointer scan 0") }
        let (set, _) = try chosen([index], verb: "scan pointers to")
        let target = set[index].address
        var options = PointerScanOptions()
        options.maxResults = 200
        let scanOptions = options
        let names = self.names
        let result = try SessionInterrupts.running { cancellation in
            try session.scanPointers(toMatch: index, options: scanOptions, cancellation: cancellation, baseNames: { names.label(for: $0) })
        }
        let ranked = Self.rank(result.chains, executable: handle.executablePath())
        foundChains[target] = ranked
        let baseNames = Dictionary(zip(result.chains, result.baseNames).compactMap { chain, name in name.map { (chain, $0) } },
                                   uniquingKeysWith: { first, _ in first })
        var lines = ["\(result.chains.count) chain\(result.chains.count == 1 ? "" : "s") to match \(index) (\(Format.hex(target)))\(result.isComplete ? "" : "; incomplete: \(result.incompleteReason ?? "interrupted")")"]
        for (number, chain) in ranked.prefix(10).enumerated() {
            lines.append("  [\(number)] " + Format.printable(chain.description) + (baseNames[chain].map { "  <" + Format.printable($0) + ">" } ?? ""))
        }
        if ranked.count > 10 { lines.append("  … \(ranked.count - 10) more") }
        if let best = ranked.first {
            chains[target] = best
            lines.append("`save FILE \(index)` records [0] \(Format.printable(best.description)); `save FILE \(index) chain=K` another")
        }
        Output.lines(lines)
    }

    /// Chains whose base is the program itself first (they survive a restart; the loader's and
    /// libc's bookkeeping rarely help), then the scan's order (shortest, smallest offsets).
    static func rank(_ chains: [PointerChain], executable: String?) -> [PointerChain] {
        let program = executable.flatMap { $0.split(separator: "/").last.map(String.init) }
        func score(_ chain: PointerChain) -> Int {
            guard case .region(let name, _) = chain.base else { return 3 }
            if let program, name == program || name.hasSuffix("/" + program) { return 0 }
            if name.hasPrefix("ld-linux") || name.hasPrefix("ld-") { return 2 }
            return 1
        }
        return chains.enumerated().sorted { a, b in
            let (x, y) = (score(a.element), score(b.element))
            return x != y ? x < y : a.offset < b.offset
        }.map(\.element)
    }

    /// `save FILE [N…] [name=NAME]`: adds cheat-table entries for the chosen matches to FILE (made
    /// if missing): each with the pointer chain found for it, else its module or region offset,
    /// else its address; a frozen match keeps its freeze value.
    func save(_ arguments: [String]) throws {
        guard let path = arguments.first else { throw SessionUsage("save takes a file and match numbers: save game.table 0") }
        var words = Array(arguments.dropFirst())
        var baseName: String?
        if let named = words.firstIndex(where: { $0.hasPrefix("name=") }) {
            baseName = String(words[named].dropFirst(5))
            words.remove(at: named)
        }
        var chainNumber: Int?
        if let chosenChain = words.firstIndex(where: { $0.hasPrefix("chain=") }) {
            guard let number = Int(words[chosenChain].dropFirst(6)), number >= 0 else {
                throw SessionUsage("chain=K takes the number `pointer scan` showed")
            }
            chainNumber = number
            words.remove(at: chosenChain)
        }
        let (set, indices) = try chosen(try SessionFilters.indices(words), verb: "save")
        var table = try Self.existingTable(path)
        let map = try handle.memoryMap()
        let frozen = Dictionary(jobs.jobs.compactMap { job -> (UInt64, [UInt8])? in
            guard case .address(let address) = job.location, case .freeze(let bytes) = job.kind else { return nil }
            return (address, bytes)
        }, uniquingKeysWith: { _, last in last })
        var lines: [String] = []
        for (position, index) in indices.enumerated() {
            let match = set[index]
            let type = valueType(of: set, match: match)
            var picked = chains[match.address]
            if let chainNumber {
                guard let found = foundChains[match.address], chainNumber < found.count else {
                    throw SessionUsage("no chain \(chainNumber) for match \(index): run `pointer scan \(index)` first")
                }
                picked = found[chainNumber]
            }
            let address = picked?.description
                ?? SessionPlaces.expression(for: match.address, in: map)
                ?? Format.hex(match.address)
            var name = baseName.map { indices.count > 1 ? "\($0)-\(position + 1)" : $0 } ?? "match-\(index)"
            var suffix = 2
            let stem = name
            while table.entry(named: name) != nil {
                name = "\(stem)-\(suffix)"
                suffix += 1
            }
            let value = set.number(ofMatch: index).map { "\($0)" } ?? "?"
            let entry = try Self.entry(name: name, address: address, type: type,
                                       description: "found by procmem session on pid \(handle.pid); \(value) when saved",
                                       freeze: frozen[match.address].map { type.format($0, hex: false) })
            table.entries.append(entry)
            lines.append("\(Format.printable(name)): \(Format.printable(address)) \(type.rawValue)\(entry.freeze.map { " freeze \($0)" } ?? "")")
        }
        try table.save(to: path)
        Output.lines(["saved \(indices.count) entr\(indices.count == 1 ? "y" : "ies") to \(Format.printable(path))"] + lines.map { "  " + $0 })
    }

    /// The table at `path`, or an empty one when there is no file yet.
    private static func existingTable(_ path: String) throws(ProcessMemoryError) -> CheatTable {
        do throws(ProcessMemoryError) {
            return try CheatTable(contentsOf: path)
        } catch {
            if error.code == .notFound { return CheatTable() }
            throw error
        }
    }

    private static func entry(name: String, address: String, type: ValueType, description: String,
                              freeze: String?) throws(ProcessMemoryError) -> CheatTable.Entry {
        do throws(CheatTable.Failure) {
            return try CheatTable.Entry(name: name, address: address, type: type, description: description, freeze: freeze)
        } catch {
            throw ProcessMemoryError(.invalidArguments, message: error.description)
        }
    }

    private func encode(_ text: String, type: ValueType) throws -> [UInt8] {
        do throws(ValueType.EncodingFailure) {
            return try type.encode(text)
        } catch {
            throw SessionUsage(error.description)
        }
    }

    private func readNow(_ address: UInt64, count: Int) throws -> [UInt8] {
        try handle.read(from: address, count: count)
    }
}

/// Symbol names for expressions resolved on the background thread: ``SymbolNames`` behind a lock.
final class SharedSymbolNames: AddressNameResolver, Sendable {
    private let inner: Mutex<SymbolNames>

    init(handle: ProcessHandle) {
        inner = Mutex(SymbolNames(handle: handle))
    }

    func address(of name: String, in map: MemoryMap) -> UInt64? {
        inner.withLock { $0.address(of: name, in: map) }
    }

    /// ``SymbolNames/label(for:)``: `module!symbol+0x10` for an address inside a symbol.
    func label(for address: UInt64) -> String? {
        inner.withLock { $0.label(for: address) }
    }
}
