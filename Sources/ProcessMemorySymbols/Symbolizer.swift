import ProcessMemoryCore
import Synchronization

/// Where a symbolizer looks for symbols.
public struct SymbolizerOptions: Sendable, Hashable {
    /// Roots for separate debug files (`DIR/.build-id/xx/rest.debug`, `DIR/MODULE_DIR/NAME`).
    public var debugDirectories: [String]
    /// Whether to look for separate debug files at all.
    public var useSeparateDebugFiles: Bool
    /// The largest module or debug file read, in bytes.
    public var maximumFileSize: Int

    /// `/usr/lib/debug`, separate debug files on, files up to 1 GiB.
    public init(debugDirectories: [String] = ["/usr/lib/debug"], useSeparateDebugFiles: Bool = true,
                maximumFileSize: Int = 1 << 30) {
        self.debugDirectories = debugDirectories
        self.useSeparateDebugFiles = useSeparateDebugFiles
        self.maximumFileSize = maximumFileSize
    }
}

/// A symbol at its address in the process.
public struct ResolvedSymbol: Sendable, Hashable, CustomStringConvertible {
    /// The module that defines it.
    public var module: Module
    /// The symbol (link-time value and size).
    public var symbol: Symbol
    /// Its address in the process (for a thread-local symbol: its offset in the TLS block).
    public var address: UInt64

    /// `module!name`.
    public var qualifiedName: String { module.name + "!" + symbol.name }

    /// `module!name (0xADDRESS)`.
    public var description: String { "\(qualifiedName) (0x\(String(address, radix: 16)))" }
}

/// An address named by the nearest symbol: `<module!symbol+0x10>`.
public struct SymbolizedAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address that was looked up.
    public var address: UInt64
    /// The module whose mappings hold it.
    public var module: Module
    /// The nearest symbol at or below the address, or `nil` when there is none (then ``offset``
    /// counts from the module's start).
    public var symbol: Symbol?
    /// `address` minus the symbol's address (or the module's start).
    public var offset: UInt64
    /// Whether the address lies inside the symbol's extent (`st_size`), not merely after it.
    public var isInsideSymbol: Bool

    /// `module!symbol+0x10`, `module!symbol` at offset 0, or `module+0x1234` without a symbol.
    public var name: String {
        let base = symbol.map { module.name + "!" + $0.name } ?? module.name
        return offset == 0 && symbol != nil ? base : base + "+0x" + String(offset, radix: 16)
    }

    /// `<module!symbol+0x10>`.
    public var description: String { "<" + name + ">" }
}

/// Symbols of every ELF module mapped into one process: lookups by name and by address.
///
/// Created from a ``ProcessHandle``; reads the map once (`/proc/PID/maps`) and, lazily and once per
/// module, the module's file through `/proc/PID/map_files/START-END` (the vDSO from the process's
/// memory) and its separate debug file. Parsed tables are cached by build ID for the life of this
/// process, so other symbolizers reuse them. Call ``refresh()`` after the process maps or unmaps
/// libraries. Safe to share between threads.
///
/// This is the resolver the address expressions plug into: ``address(of:)`` for a name,
/// ``name(for:)`` for an address. An expression's base that is no region name (or has a `!`)
/// goes to ``address(of:)`` (which applies its own `+OFFSET`/`-OFFSET`); a failure is a
/// ``SymbolError``, reported by the CLI's `ErrorReporting.fail(_:pid:)` with exit codes 22–26.
/// Output names an address with `name(for: address)?.description`, `<module!symbol+0x10>`.
/// Create one symbolizer per command and only when a name needs it: the map is read at creation
/// and each module's table on first use.
public final class Symbolizer: Sendable {
    /// The process handle the symbolizer reads through.
    public let handle: ProcessHandle
    /// Where it looks for symbols.
    public let options: SymbolizerOptions

    private struct State: Sendable {
        var modules: [Module]
        var loaded: [Int: Result<ModuleSymbols, SymbolError>]
        /// For lookups by address: one reference per loaded module (one retain, not a struct copy).
        var fast: [FastEntry?]

        init(modules: [Module], loaded: [Int: Result<ModuleSymbols, SymbolError>]) {
            self.modules = modules
            self.loaded = loaded
            fast = modules.indices.map { index in
                guard case .success(let symbols)? = loaded[index] else { return nil }
                return FastEntry(symbols)
            }
        }
    }

    private final class FastEntry: Sendable {
        let symbols: ModuleSymbols
        init(_ symbols: ModuleSymbols) { self.symbols = symbols }
    }
    private let state: Mutex<State>

    /// A symbolizer for `handle`'s process, with the modules of its current map
    /// (`/proc/PID/maps`).
    ///
    /// - Throws: ``SymbolError`` with ``SymbolError/Code/process`` when the map cannot be read.
    public init(handle: ProcessHandle, options: SymbolizerOptions = SymbolizerOptions()) throws(SymbolError) {
        self.handle = handle
        self.options = options
        let modules: [Module]
        do {
            modules = Module.modules(in: try handle.memoryMap())
        } catch {
            throw SymbolError(error)
        }
        state = Mutex(State(modules: modules, loaded: [:]))
    }

    /// Rereads the map (`/proc/PID/maps`); modules still mapped at the same place keep their tables.
    public func refresh() throws(SymbolError) {
        let modules: [Module]
        do {
            modules = Module.modules(in: try handle.memoryMap())
        } catch {
            throw SymbolError(error)
        }
        state.withLock { state in
            var kept: [Int: Result<ModuleSymbols, SymbolError>] = [:]
            for (index, module) in modules.enumerated() {
                if let old = state.modules.firstIndex(of: module), let loaded = state.loaded[old] { kept[index] = loaded }
            }
            state = State(modules: modules, loaded: kept)
        }
    }

    /// Forgets the tables cached by build ID, which every symbolizer in this process shares (for a
    /// long-running profiler that has seen many libraries come and go, and for cold-start measurements).
    public static func removeCachedTables() { SymbolTableCache.removeAll() }

    /// The ELF modules mapped in the process, by address.
    public var modules: [Module] { state.withLock { $0.modules } }

    /// The symbols of `module`, loaded on first use (its file read through
    /// `/proc/PID/map_files/START-END`, the vDSO through the process's memory).
    ///
    /// - Throws: ``SymbolError`` when the file cannot be read or is not valid ELF.
    public func symbols(of module: Module) throws(SymbolError) -> ModuleSymbols {
        guard let index = state.withLock({ $0.modules.firstIndex(of: module) }) else {
            throw SymbolError(.moduleNotFound, "\(module.name) is not among the process's modules; call refresh()")
        }
        return try symbols(at: index, module).get()
    }

    /// The symbols of `module`, which was at `index` when the caller read the module list; a
    /// concurrent ``refresh()`` may have changed the list since, so both are checked under the lock
    /// (a module no longer at `index` is loaded but not kept).
    private func symbols(at index: Int, _ module: Module) -> Result<ModuleSymbols, SymbolError> {
        let loaded = state.withLock { state -> Result<ModuleSymbols, SymbolError>? in
            guard state.modules.indices.contains(index), state.modules[index] == module else { return nil }
            return state.loaded[index]
        }
        if let loaded { return loaded }
        // Parsed outside the lock, so lookups in loaded modules go on meanwhile.
        let result = Result { () throws(SymbolError) -> ModuleSymbols in
            try ModuleLoader.load(module, handle: handle, options: options)
        }
        return state.withLock { state in
            if state.modules.indices.contains(index), state.modules[index] == module {
                if let raced = state.loaded[index] { return raced }
                state.loaded[index] = result
                if case .success(let symbols) = result { state.fast[index] = FastEntry(symbols) }
            }
            return result
        }
    }

    /// The modules `name` (a file name `libc.so.6`, its stem `libc`, or a path) refers to.
    public func modules(named name: String) -> [Module] {
        let all = modules
        let exact = all.filter { $0.name == name || $0.path == name }
        if !exact.isEmpty { return exact }
        return all.filter { $0.name.hasPrefix(name + ".") || $0.name.hasPrefix(name + "-") }
    }

    // MARK: Lookups by name

    /// The address `expression` names: `SYMBOL`, `MODULE!SYMBOL`, either followed by `+OFFSET` or
    /// `-OFFSET` (hex with `0x`, or decimal).
    ///
    /// A name defined at several addresses resolves to the global definition when there is one
    /// such address (else the weak one, else the local one); otherwise it is ambiguous.
    /// - Throws: ``SymbolError`` ``SymbolError/Code/symbolNotFound`` (listing the modules searched
    ///   and those without symbols), ``SymbolError/Code/ambiguousSymbol`` (listing candidates),
    ///   ``SymbolError/Code/moduleNotFound``, ``SymbolError/Code/malformedName``.
    public func address(of expression: String) throws(SymbolError) -> UInt64 {
        try resolve(expression).address
    }

    /// The symbol `expression` names and its address with the offset applied (see ``address(of:)``).
    public func resolve(_ expression: String) throws(SymbolError) -> (symbol: ResolvedSymbol, address: UInt64) {
        let parsed = try SymbolExpression.parse(expression)
        let found = try lookup(parsed.name, module: parsed.module)
        guard found.symbol.kind != .threadLocal else {
            throw SymbolError(.malformedName, "\(found.qualifiedName) is thread-local: its value is an offset in each thread's TLS block, not an address")
        }
        let (address, overflow) = parsed.isNegative ? found.address.subtractingReportingOverflow(parsed.offset)
                                                    : found.address.addingReportingOverflow(parsed.offset)
        guard !overflow else { throw SymbolError(.malformedName, "'\(expression)' lies outside the 64-bit address space") }
        return (found, address)
    }

    /// The one definition of `name` (in the modules called `module`, when given).
    public func lookup(_ name: String, module moduleName: String? = nil) throws(SymbolError) -> ResolvedSymbol {
        let all = modules
        var searched: [Int] = []
        if let moduleName {
            let wanted = Set(modules(named: moduleName))
            guard !wanted.isEmpty else {
                throw SymbolError(.moduleNotFound, "no mapped module is called '\(moduleName)' (modules: \(Self.names(all)))")
            }
            searched = all.indices.filter { wanted.contains(all[$0]) }
        } else {
            searched = Array(all.indices)
        }
        var found: [ResolvedSymbol] = []
        var lacking: [String] = []
        for index in searched {
            switch symbols(at: index, all[index]) {
            case .success(let loaded):
                if loaded.table.isEmpty { lacking.append("\(all[index].name) (no .symtab or .dynsym)") }
                for symbol in loaded.table.symbols(named: name) {
                    found.append(ResolvedSymbol(module: all[index], symbol: symbol, address: loaded.address(of: symbol)))
                }
            case .failure(let error):
                lacking.append("\(all[index].name) (\(error.message))")
            }
        }
        guard !found.isEmpty else {
            let where_ = moduleName.map { "in \($0)" } ?? "in any of the \(searched.count) modules"
            var error = SymbolError(.symbolNotFound, "no symbol '\(name)' \(where_) (searched: \(Self.names(searched.map { all[$0] })))"
                                    + (lacking.isEmpty ? "" : "; without symbols: " + lacking.joined(separator: ", ")))
            error.searchedModules = searched.map { all[$0].name }
            error.modulesWithoutSymbols = lacking
            throw error
        }
        for tier in [[Symbol.Binding.global, .unique], [.weak], [.local]] {
            let candidates = found.filter { tier.contains($0.symbol.binding) }
            let addresses = Set(candidates.map(\.address))
            if addresses.count == 1, let first = candidates.first { return first }
            if addresses.count > 1 {
                var unique: [ResolvedSymbol] = []
                for candidate in candidates where !unique.contains(where: { $0.address == candidate.address }) { unique.append(candidate) }
                var error = SymbolError(.ambiguousSymbol, "'\(name)' has \(unique.count) definitions: "
                                        + unique.map(\.description).joined(separator: ", ") + "; write MODULE!\(name)")
                error.candidates = unique.map(\.description)
                throw error
            }
        }
        throw SymbolError(.symbolNotFound, "no symbol '\(name)'")
    }

    /// Every symbol whose name matches `pattern` (a glob with `*` and `?`, or a substring when it has
    /// neither; `MODULE!PATTERN` limits the modules), by address; and the modules that could not be
    /// read. All symbols when `pattern` is `nil`.
    public func symbols(matching pattern: String?) -> (symbols: [ResolvedSymbol], failures: [(Module, SymbolError)]) {
        var modulePattern: String?
        var namePattern = pattern
        if let pattern, let bang = pattern.firstIndex(of: "!") {
            modulePattern = String(pattern[..<bang])
            namePattern = String(pattern[pattern.index(after: bang)...])
            if namePattern?.isEmpty == true { namePattern = nil }
        }
        let all = modules
        let wanted = modulePattern.map { Set(modules(named: $0)) }
        let matcher = namePattern.map(NameMatcher.init)
        var results: [ResolvedSymbol] = []
        var failures: [(Module, SymbolError)] = []
        for index in all.indices where wanted?.contains(all[index]) ?? true {
            switch symbols(at: index, all[index]) {
            case .success(let loaded):
                for symbol in loaded.table.symbols where matcher?.matches(symbol.name) ?? true {
                    results.append(ResolvedSymbol(module: all[index], symbol: symbol, address: loaded.address(of: symbol)))
                }
            case .failure(let error):
                failures.append((all[index], error))
            }
        }
        results.sort { $0.address != $1.address ? $0.address < $1.address : $0.symbol.name < $1.symbol.name }
        return (results, failures)
    }

    // MARK: Lookups by address

    /// The nearest symbol at or below `address` in the module that maps it, or `nil` when no module
    /// maps the address. A module without symbols (or one that cannot be read) names the address as
    /// `module+offset`. O(log modules + log symbols) once the module is loaded.
    public func name(for address: UInt64) -> SymbolizedAddress? {
        // One lock for the warm path: the module's index and its loaded table, if any.
        let found = state.withLock { state -> (Int, Module, FastEntry?)? in
            guard let index = Self.index(in: state.modules, containing: address) else { return nil }
            return (index, state.modules[index], state.fast[index])
        }
        guard let (index, module, entry) = found else { return nil }
        if let entry {
            let loaded = entry.symbols
            if let (symbol, offset) = loaded.table.lookup(linkAddress: address &- loaded.loadBias) {
                return SymbolizedAddress(address: address, module: loaded.module, symbol: symbol, offset: offset,
                                         isInsideSymbol: symbol.size > 0 ? offset < symbol.size : offset == 0)
            }
            return SymbolizedAddress(address: address, module: loaded.module, symbol: nil, offset: address - loaded.module.start,
                                     isInsideSymbol: false)
        }
        guard case .success(let loaded) = symbols(at: index, module) else {
            return SymbolizedAddress(address: address, module: module, symbol: nil, offset: address - module.start, isInsideSymbol: false)
        }
        guard let (symbol, offset) = loaded.table.lookup(linkAddress: address &- loaded.loadBias) else {
            return SymbolizedAddress(address: address, module: module, symbol: nil, offset: address - module.start, isInsideSymbol: false)
        }
        return SymbolizedAddress(address: address, module: module, symbol: symbol, offset: offset,
                                 isInsideSymbol: symbol.size > 0 ? offset < symbol.size : offset == 0)
    }

    /// The module whose mappings (or `.bss`) hold `address`.
    public func module(containing address: UInt64) -> Module? {
        state.withLock { state in Self.index(in: state.modules, containing: address).map { state.modules[$0] } }
    }

    private static func index(in modules: [Module], containing address: UInt64) -> Int? {
        var low = 0
        var high = modules.count
        while low < high {
            let middle = (low + high) >> 1
            if modules[middle].start <= address { low = middle + 1 } else { high = middle }
        }
        guard low > 0, modules[low - 1].contains(address) else { return nil }
        return low - 1
    }

    private static func names(_ modules: [Module]) -> String {
        modules.isEmpty ? "none" : modules.map(\.name).joined(separator: ", ")
    }
}

/// `SYMBOL`, `MODULE!SYMBOL`, with an optional `+OFFSET` / `-OFFSET`.
public struct SymbolExpression: Sendable, Hashable {
    /// The module part, if any.
    public var module: String?
    /// The symbol name.
    public var name: String
    /// The offset's magnitude.
    public var offset: UInt64
    /// The offset is subtracted.
    public var isNegative: Bool

    /// Parses `text`.
    /// - Throws: ``SymbolError/Code/malformedName`` when it names no symbol.
    public static func parse(_ text: String) throws(SymbolError) -> SymbolExpression {
        var rest = Substring(text)
        while rest.first == " " { rest.removeFirst() }
        while rest.last == " " { rest.removeLast() }
        var module: String?
        if let bang = rest.firstIndex(of: "!") {
            module = String(rest[..<bang])
            rest = rest[rest.index(after: bang)...]
            guard module?.isEmpty == false else { throw SymbolError(.malformedName, "'\(text)' has no module before '!'") }
        }
        var offset: UInt64 = 0
        var negative = false
        if let sign = rest.lastIndex(where: { $0 == "+" || $0 == "-" }), sign != rest.startIndex,
           let value = parseNumber(rest[rest.index(after: sign)...]) {
            offset = value
            negative = rest[sign] == "-"
            rest = rest[..<sign]
            while rest.last == " " { rest.removeLast() }
        }
        guard let first = rest.first, first != "+", first != "-" else {
            throw SymbolError(.malformedName, "'\(text)' names no symbol")
        }
        guard !rest.contains(where: { $0 == " " || $0 == "!" }) else {
            throw SymbolError(.malformedName, "'\(text)' is not SYMBOL, MODULE!SYMBOL or either +OFFSET")
        }
        return SymbolExpression(module: module, name: String(rest), offset: offset, isNegative: negative)
    }

    /// `0x` hex or decimal, at most 64 bits.
    static func parseNumber(_ text: Substring) -> UInt64? {
        var digits = text
        while digits.first == " " { digits.removeFirst() }
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") { return UInt64(digits.dropFirst(2), radix: 16) }
        return UInt64(digits, radix: 10)
    }
}

/// A glob (`*`, `?`) or, without wildcards, a substring.
struct NameMatcher {
    let pattern: [UInt8]
    let isGlob: Bool

    init(_ pattern: String) {
        self.pattern = Array(pattern.utf8)
        isGlob = pattern.contains("*") || pattern.contains("?")
    }

    func matches(_ name: String) -> Bool {
        let text = Array(name.utf8)
        guard isGlob else {
            guard pattern.count <= text.count else { return false }
            if pattern.isEmpty { return true }
            for start in 0...(text.count - pattern.count) where text[start..<(start + pattern.count)].elementsEqual(pattern) {
                return true
            }
            return false
        }
        // Iterative glob with one backtrack point (the last '*').
        var p = 0, t = 0, star = -1, mark = 0
        while t < text.count {
            if p < pattern.count && (pattern[p] == UInt8(ascii: "?") || pattern[p] == text[t]) {
                p += 1; t += 1
            } else if p < pattern.count && pattern[p] == UInt8(ascii: "*") {
                star = p; mark = t; p += 1
            } else if star >= 0 {
                p = star + 1; mark += 1; t = mark
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }
}
