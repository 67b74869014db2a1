import ArgumentParser
import ProcessMemory

/// An ADDRESS argument as typed, checked for syntax when the arguments are parsed.
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
        "0x hex, decimal, or REGION+OFFSET / REGION-OFFSET.",
        discussion: "REGION is a bracketed name ([heap], [stack], [vdso], [anon:NAME]), a path, or the file name of a mapped file (libc.so.6); it stands for the start of the first region with that name.",
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

    /// The absolute address `argument` stands for in `handle`'s process (its map is read only for
    /// region names).
    static func resolve(_ argument: AddressArgument, in handle: ProcessHandle) throws(ExitCode) -> UInt64 {
        let map: MemoryMap
        if case .absolute = argument.expression.base {
            map = MemoryMap(regions: [])
        } else {
            map = try memoryMap(handle)
        }
        do {
            return try argument.expression.resolve(in: map)
        } catch {
            throw ErrorReporting.fail(error, text: argument.text, pid: handle.pid)
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
