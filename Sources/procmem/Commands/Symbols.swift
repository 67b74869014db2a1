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

    @Argument(help: "The process ID.", completion: PIDCompletion.kind)
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
            Output.line(JSONOutput.text(Report(symbols: symbols.map(Entry.init),
                                               failures: failures.map { Failure(module: $0.0.name, code: $0.1.code.rawValue, message: $0.1.message) })))
        } else {
            Output.lines(symbols.map(Self.row))
            for (module, error) in failures {
                Output.error("\(module.name): \(error.code.rawValue): \(error.message)")
            }
        }
        if !failures.isEmpty { throw ExitCode(ExitCodes.partial) }
    }

    /// `{"symbols":[…],"failures":[{"module","code","message"}]}`.
    struct Report: Encodable {
        var symbols: [Entry]
        var failures: [Failure]
    }

    /// One symbol: `{"address":"0x…","addressValue":N,"size":N,"kind","binding","source","module","name"}`.
    struct Entry: Encodable {
        var address: String
        var addressValue: UInt64
        var size: UInt64
        var kind: String
        var binding: String
        var source: String
        var module: String
        var name: String

        init(_ resolved: ResolvedSymbol) {
            address = Format.hex(resolved.address)
            addressValue = resolved.address
            size = resolved.symbol.size
            kind = resolved.symbol.kind.rawValue
            binding = resolved.symbol.binding.rawValue
            source = resolved.symbol.source.rawValue
            module = resolved.module.name
            name = resolved.symbol.name
        }
    }

    /// A module whose symbols could not be read.
    struct Failure: Encodable {
        var module: String
        var code: String
        var message: String
    }

    /// `0x00007f…  SIZE  kind  binding  module!name`.
    static func row(_ resolved: ResolvedSymbol) -> String {
        Format.paddedHex(resolved.address, width: 16) + " " + Format.right(String(resolved.symbol.size), 8) + " "
            + Format.left(resolved.symbol.kind.rawValue, 16) + " " + Format.left(resolved.symbol.binding.rawValue, 6) + " "
            + resolved.qualifiedName
    }
}
