import ArgumentParser
import ProcessMemory
import ProcessMemorySymbols

/// Exit statuses and one-line reports for ``SymbolError`` (the `symbols` and `symbolize` commands).
extension ExitCodes {
    /// The status for a symbol failure: a distinct value per code, the process codes' values for a
    /// failure of the process itself, and `usage` for a malformed name.
    static func status(for error: SymbolError) -> Int32 {
        if let processError = error.processError { return status(for: processError.code) }
        switch error.code {
        case .symbolNotFound: return 23
        case .ambiguousSymbol: return 24
        case .moduleNotFound: return 25
        case .malformedModule: return 26
        case .unreadableModule: return 27
        case .malformedName: return usage
        case .process: return status(for: ProcessMemoryError.Code.io)
        }
    }

    /// The rows the symbol codes add to the exit-status table.
    static var symbolRows: [(status: Int32, name: String, meaning: String)] {
        [
            (23, SymbolError.Code.symbolNotFound.rawValue, "no mapped module defines the symbol"),
            (24, SymbolError.Code.ambiguousSymbol.rawValue, "the symbol has several definitions; write MODULE!SYMBOL"),
            (25, SymbolError.Code.moduleNotFound.rawValue, "no mapped module has that name"),
            (26, SymbolError.Code.malformedModule.rawValue, "a module's file is not valid ELF"),
            (27, SymbolError.Code.unreadableModule.rawValue, "a module's file could not be read"),
        ]
    }
}

extension ErrorReporting {
    /// Reports a symbol failure as one line on stderr and returns the `ExitCode` to throw.
    static func fail(_ error: SymbolError, pid: Int32) -> ExitCode {
        if let processError = error.processError { return fail(processError) }
        let hint: String?
        switch error.code {
        case .symbolNotFound: hint = "run `procmem symbols \(pid) PATTERN` to list the names that exist"
        case .ambiguousSymbol: hint = "name the module: MODULE!SYMBOL"
        case .moduleNotFound: hint = "run `procmem maps \(pid)` to see the mapped files"
        case .malformedName: hint = "write SYMBOL, MODULE!SYMBOL, or either followed by +0x10"
        case .malformedModule, .unreadableModule, .process: hint = nil
        }
        Output.error(oneLine("\(error.code.rawValue): \(error.message)", hint: hint))
        return ExitCode(ExitCodes.status(for: error))
    }
}
