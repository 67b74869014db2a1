import ProcessMemoryCore

/// Why a symbol lookup or a module's symbols failed.
public struct SymbolError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// No module defines the name (``SymbolError/searchedModules`` says where it looked).
        case symbolNotFound
        /// The name has several definitions at different addresses (``SymbolError/candidates``).
        case ambiguousSymbol
        /// No mapped module matches the `MODULE!` part, or several do.
        case moduleNotFound
        /// The text is not `SYMBOL`, `MODULE!SYMBOL` or either with `+OFFSET` / `-OFFSET`.
        case malformedName
        /// A module's file (or separate debug file) is not a valid ELF image (``SymbolError/elfError``).
        case malformedModule
        /// The module's file could not be read (an errno from `openat`/`fstat`/`pread`).
        case unreadableModule
        /// The process could not be accessed (``SymbolError/processError``).
        case process
    }

    /// The kind of failure.
    public var code: Code
    /// What failed, in one sentence.
    public var message: String
    /// For ``Code/ambiguousSymbol``: `module!name (0xADDRESS)` for each definition.
    public var candidates: [String] = []
    /// For ``Code/symbolNotFound``: the names of the modules that were searched.
    public var searchedModules: [String] = []
    /// For ``Code/symbolNotFound``: searched modules that had no symbols, with the reason.
    public var modulesWithoutSymbols: [String] = []
    /// For ``Code/malformedModule``: the ELF reader's error.
    public var elfError: ELFError?
    /// For ``Code/process``: the library's error.
    public var processError: ProcessMemoryError?

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Wraps an error from the process handle.
    public init(_ error: ProcessMemoryError) {
        self.code = .process
        self.message = error.message
        self.processError = error
    }

    /// `code: message`.
    public var description: String { "\(code.rawValue): \(message)" }
}
