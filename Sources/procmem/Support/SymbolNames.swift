import ArgumentParser
import ProcessMemory
import ProcessMemorySymbols

/// `--no-symbols`: print addresses without `<module!symbol+0x10>` names.
struct SymbolsOption: ParsableArguments {
    @Flag(help: ArgumentHelp(
        "Do not name addresses by their symbols.",
        discussion: "By default an address that lies inside a symbol of a mapped ELF module is followed by its name, <module!symbol+0x10> (in --json a \"symbol\" key beside the number, left out when no symbol holds the address). The modules' symbols are read only when an address lies in a module, once per command; a module whose symbols cannot be read leaves its addresses unnamed, with one note on stderr."))
    var noSymbols = false
}

/// Symbols for one command, in both directions, read at most once and only when first needed.
///
/// As an ``AddressNameResolver``, names in ADDRESS expressions that no mapped region has are looked
/// up as symbols: `g_world`, `libc.so.6!malloc`, `main+0x10` (inside chains too); the last failure
/// is kept so that the error can list the modules searched. As a namer, ``label(for:)`` gives
/// `module!symbol+0x10` for an address inside a symbol. The process's map and module list are read
/// when the first of these needs them; each module's table when an address first falls in it.
/// A process without symbols (or whose modules cannot be read) costs one failed attempt and gives
/// no names.
final class SymbolNames: AddressNameResolver {
    private let handle: ProcessHandle
    /// Whether output names addresses (`--no-symbols` turns it off; lookups by name still work).
    let namesOutput: Bool
    private var symbolizer: Symbolizer?
    private var attempted = false
    private var noted: Set<String> = []
    /// Why the last name given to ``address(of:in:)`` could not be resolved as a symbol.
    private(set) var lastFailure: SymbolError?

    /// Why the last name was no symbol: the modules searched and those without symbols, the
    /// candidates of an ambiguous name, or why the process's modules could not be listed.
    var lastFailureMessage: String? {
        guard let lastFailure else { return nil }
        return lastFailure.code == .process ? "its modules could not be listed: " + lastFailure.message : lastFailure.message
    }

    init(handle: ProcessHandle, namesOutput: Bool = true) {
        self.handle = handle
        self.namesOutput = namesOutput
    }

    convenience init(handle: ProcessHandle, option: SymbolsOption) {
        self.init(handle: handle, namesOutput: !option.noSymbols)
    }

    /// The symbolizer, created on first use; `nil` (with one note on stderr when output wanted
    /// names) when the process's map cannot be read.
    private func loaded(noteFailure: Bool) -> Symbolizer? {
        if !attempted {
            attempted = true
            do {
                symbolizer = try Symbolizer(handle: handle)
            } catch {
                lastFailure = error
                if noteFailure { note("symbols unavailable (\(error.message)); addresses are shown without names") }
            }
        }
        return symbolizer
    }

    func address(of name: String, in map: MemoryMap) -> UInt64? {
        guard let symbolizer = loaded(noteFailure: false) else { return nil }
        do {
            let address = try symbolizer.address(of: name)
            lastFailure = nil
            return address
        } catch {
            lastFailure = error
            return nil
        }
    }

    /// `module!symbol+0x10` for an address inside a symbol (within its size, or at a sized-zero
    /// symbol's own address), `nil` otherwise or with `--no-symbols`: never a guess past a
    /// symbol's end or a bare `module+offset`.
    func label(for address: UInt64) -> String? {
        guard namesOutput, let symbolizer = loaded(noteFailure: true),
              let named = symbolizer.name(for: address) else { return nil }
        if named.symbol == nil { noteUnreadable(named.module, symbolizer) }
        guard named.symbol != nil, named.isInsideSymbol else { return nil }
        return named.name
    }

    /// The module that maps `address` (its file name) and ``label(for:)``, or `nil` outside every
    /// module or with `--no-symbols`.
    func module(for address: UInt64) -> (module: String, symbol: String?)? {
        guard namesOutput, let symbolizer = loaded(noteFailure: true),
              let module = symbolizer.module(containing: address) else { return nil }
        return (module.name, label(for: address))
    }

    /// ` <module!symbol+0x10>` (escaped for a terminal), or "" when ``label(for:)`` has no name.
    func suffix(for address: UInt64) -> String {
        label(for: address).map { " <" + Format.printable($0) + ">" } ?? ""
    }

    /// One note per module whose symbols could not be read (a module without any is no failure).
    private func noteUnreadable(_ module: Module, _ symbolizer: Symbolizer) {
        guard !noted.contains(module.name) else { return }
        noted.insert(module.name)
        do {
            _ = try symbolizer.symbols(of: module)
        } catch {
            note("no symbols for \(module.name) (\(error.message)); its addresses are shown without names")
        }
    }

    private func note(_ text: String) {
        Output.error("note: " + Format.printable(text))
    }
}
