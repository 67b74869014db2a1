import ArgumentParser
import ProcessMemory

/// An ADDRESS argument as typed, checked for syntax when the arguments are parsed; the library's
/// ``AddressExpression`` does the parsing and resolving.
struct AddressArgument: Sendable {
    var text: String
    var expression: AddressExpression

    /// The `transform` for `@Argument`: a malformed address is a usage error (exit 64).
    static func parse(_ text: String) throws -> AddressArgument {
        do throws(AddressExpression.Failure) {
            return AddressArgument(text: text, expression: try AddressExpression.parse(text))
        } catch {
            throw ValidationError("invalid ADDRESS '\(text)': \(error.message)")
        }
    }

    static let help = ArgumentHelp(
        "0x hex, decimal, REGION+OFFSET / REGION-OFFSET, or a pointer chain.",
        discussion: "REGION is a bracketed name ([heap], [stack], [vdso], [anon:NAME]), a path, or the file name of a mapped file (libc.so.6); it stands for the start of the first region with that name. A pointer chain, quoted, adds hops: \"game+0x4078 -> +0x18 -> +0x0\" reads the 8-byte pointer at each address and adds the next offset; it is resolved once, when the command starts.",
        valueName: "address")
}

/// Opening the target and resolving addresses in it, with failures reported and turned into exit codes.
enum TargetProcess {
    /// Opens `pid` with `rights`, or reports why not.
    static func open(_ pid: Int32, rights: AccessRights) throws(ExitCode) -> ProcessHandle {
        do {
            return try ProcessHandle(pid: pid, rights: rights)
        } catch {
            throw ErrorReporting.fail(error)
        }
    }

    /// The absolute address `argument` stands for in `handle`'s process, its pointer hops followed
    /// in `mode` (the map is read only for names). Names no region has go to `names` (where a
    /// symbol table plugs in). An unresolvable expression is reported with the hop that failed and why.
    /// A name that is neither a region nor a symbol fails with `notFound` (its exit status), the
    /// message listing the modules searched and those without symbols.
    static func resolve(_ argument: AddressArgument, in handle: ProcessHandle, mode: AccessModeOption = .debugger,
                        names: SymbolNames? = nil) throws(ExitCode) -> UInt64 {
        let names = names ?? SymbolNames(handle: handle)
        do {
            return try handle.resolve(argument.expression, names: names, mode: mode.readMode)
        } catch {
            var error = error
            // The core says "no region named X is mapped, and no mapped module defines a symbol of
            // that name"; the symbolizer knows which modules it searched.
            let generic = "no mapped module defines a symbol of that name"
            if error.code == .notFound, let why = names.lastFailureMessage, error.message.hasSuffix(generic) {
                error.message = String(error.message.dropLast(generic.count)) + why
            }
            throw ErrorReporting.fail(error, mode: mode)
        }
    }

    /// The process's map, or reports why not.
    static func memoryMap(_ handle: ProcessHandle) throws(ExitCode) -> MemoryMap {
        do {
            return try handle.memoryMap()
        } catch {
            throw ErrorReporting.fail(error)
        }
    }

    /// Reads up to `count` bytes: the bytes that were read and the transfer's outcome.
    static func read(_ handle: ProcessHandle, at address: UInt64, count: Int, mode: AccessModeOption) throws(ExitCode) -> ([UInt8], PartialTransfer) {
        var buffer = [UInt8](repeating: 0, count: count)
        let outcome = buffer.withUnsafeMutableBytes { raw in
            Result { () throws(ProcessMemoryError) -> PartialTransfer in try handle.readTransfer(from: address, into: raw, mode: mode.readMode) }
        }
        switch outcome {
        case .success(let transfer):
            buffer.removeLast(count - min(count, transfer.bytesTransferred))
            return (buffer, transfer)
        case .failure(let error):
            throw ErrorReporting.fail(error, mode: mode)
        }
    }
}
