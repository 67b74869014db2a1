import ArgumentParser
import ProcessMemory
import ProcessMemorySymbols

/// `procmem symbols PID [PATTERN]`: the symbols of the process's ELF modules.
struct Symbols: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the symbols of the ELF modules a process maps.",
        discussion: """
            Reads each mapped ELF module (the executable, shared objects, the vDSO) through \
            /proc/PID/map_files, its .symtab and .dynsym, and its separate debug file under \
            /usr/lib/debug (by build ID or .gnu_debuglink, CRC checked). One row per symbol, by \
            address: address, size, kind, binding, module!name. Thread-local symbols show their \
            offset in the TLS block instead of an address.

            PATTERN is a glob (* and ?) or, without wildcards, a substring of the name; \
            MODULE!PATTERN lists only that module (libc.so.6, or libc). Modules that could not \
            be read are reported on stderr, and the exit status is then 1 (partial).

            --json prints one object:
              {"symbols":[{"address":"0x…","addressValue":N,"size":N,"kind":"function",
                "binding":"global","source":"dynsym","module":"libc.so.6","name":"malloc"},…],
               "failures":[{"module":"…","code":"…","message":"…"},…]}
            kind is one of \(Symbol.Kind.allCases.map(\.rawValue).joined(separator: ", ")).
            """
    )

    @Argument(help: "The process ID.")
    var pid: Int32

    @Argument(help: "A glob or substring of the names to list; MODULE!PATTERN for one module.")
    var pattern: String?

    @Flag(help: "Print JSON (shape above).")
    var json = false

    @Flag(help: "Do not look for separate debug files.")
    var noDebugFiles = false

    func run() throws {
        let handle = try TargetProcess.open(pid, rights: .read)
        defer { handle.close() }
        let symbolizer: Symbolizer
        do {
            symbolizer = try Symbolizer(handle: handle, options: SymbolizerOptions(useSeparateDebugFiles: !noDebugFiles))
        } catch {
            throw ErrorReporting.fail(error, pid: pid)
        }
        if let pattern, let bang = pattern.firstIndex(of: "!") {
            let module = String(pattern[..<bang])
            if symbolizer.modules(named: module).isEmpty {
                throw ErrorReporting.fail(SymbolError(.moduleNotFound, "no mapped module is called '\(module)'"), pid: pid)
            }
        }
        let (symbols, failures) = symbolizer.symbols(matching: pattern)
        if json {
            Output.line(JSON.object([
                ("symbols", .array(symbols.map(Self.json))),
                ("failures", .array(failures.map { module, error in
                    .object([("module", .string(module.name)), ("code", .string(error.code.rawValue)), ("message", .string(error.message))])
                })),
            ]).text)
        } else {
            Output.lines(symbols.map(Self.row))
            for (module, error) in failures {
                Output.error("\(module.name): \(error.code.rawValue): \(error.message)")
            }
        }
        if !failures.isEmpty { throw ExitCode(ExitCodes.partial) }
    }

    static func json(_ resolved: ResolvedSymbol) -> JSON {
        .object([
            ("address", .hex(resolved.address)),
            ("addressValue", .uint(resolved.address)),
            ("size", .uint(resolved.symbol.size)),
            ("kind", .string(resolved.symbol.kind.rawValue)),
            ("binding", .string(resolved.symbol.binding.rawValue)),
            ("source", .string(resolved.symbol.source.rawValue)),
            ("module", .string(resolved.module.name)),
            ("name", .string(resolved.symbol.name)),
        ])
    }

    /// `0x00007f…  SIZE  kind  binding  module!name`.
    static func row(_ resolved: ResolvedSymbol) -> String {
        Format.paddedHex(resolved.address, width: 16) + " " + Format.right(String(resolved.symbol.size), 8) + " "
            + Format.left(resolved.symbol.kind.rawValue, 16) + " " + Format.left(resolved.symbol.binding.rawValue, 6) + " "
            + resolved.qualifiedName
    }
}
