import ArgumentParser
import ProcessMemory
import SystemPackage

/// Turns failures into one line on stderr (with a hint where one helps) and an exit status.
enum ErrorReporting {
    /// Reports `error` and returns the `ExitCode` to throw.
    ///
    /// Prints `procmem: <code>: <message> (pid N, address 0x…, …); hint: …` as one line;
    /// `mode` is the `--mode` the failed access used, if any.
    static func fail(_ error: ProcessMemoryError, mode: AccessModeOption? = nil) -> ExitCode {
        Output.error(oneLine(error.description, hint: hint(for: error, mode: mode)))
        return ExitCode(ExitCodes.status(for: error.code))
    }

    /// Reports an ADDRESS that could not be resolved and returns the `ExitCode` to throw: a usage
    /// error for malformed text, `notFound` for an unknown region, `invalidArguments` for overflow.
    static func fail(_ failure: AddressExpression.Failure, text: String, pid: Int32) -> ExitCode {
        switch failure.kind {
        case .malformed:
            Output.error(oneLine("usage: invalid ADDRESS '\(text)': \(failure.message)",
                                 hint: "write 0x7f0000001000, 4096, [heap]+0x10 or libc.so.6+0x1000 (see procmem read --help)"))
            return ExitCode(ExitCodes.usage)
        case .unknownRegion:
            return fail(ProcessMemoryError(.notFound, pid: pid, message: "cannot resolve '\(text)': \(failure.message)"))
        case .outOfRange:
            return fail(ProcessMemoryError(.invalidArguments, pid: pid, message: "cannot resolve '\(text)': \(failure.message)"))
        }
    }

    /// An error and what to do next, as the one line the CLI prints: `…; hint: …`.
    static func oneLine(_ message: String, hint: String?) -> String {
        guard let hint else { return message }
        return message + "; hint: " + hint
    }

    /// `short read: 4096 of 12288 bytes; stopped at 0x…: notFound: nothing is mapped at 0x…`.
    static func shortTransferLine(verb: String, done: Int, requested: Int, stop: ProcessMemoryError) -> String {
        let at = stop.address.map { " at " + Format.hex($0) } ?? ""
        return "short \(verb): \(done) of \(requested) bytes; stopped\(at): \(stop.code.rawValue): \(stop.message)"
    }

    /// What to do next, when something useful can be said.
    static func hint(for error: ProcessMemoryError, mode: AccessModeOption? = nil) -> String? {
        let pid = error.pid.map(String.init) ?? "PID"
        switch error.code {
        case .accessDenied:
            // The library's message often ends with the reason already.
            guard let reason = error.accessDenial?.description, !error.message.contains(reason) else { return nil }
            return reason
        case .execed:
            return "run again: the process has a new image"
        case .notFound:
            if error.address == nil && error.systemCall?.name == .pidfdOpen {
                return "check the PID (ps -p \(pid)); the process may have exited"
            }
            return "run `procmem maps \(pid)` to see what is mapped"
        case .protectionFailure:
            let maps = "run `procmem maps \(pid)` to see the region and its permissions"
            return mode == .protect ? maps + "; --mode debugger also reaches pages the process itself cannot" : maps
        case .outOfRange:
            return "the mapping is longer than the file behind it; read only up to the file's size"
        case .badState:
            return "the process is exiting or gone; there is nothing left to read"
        case .wrongType:
            return "pick a user-space process; kernel threads have no user memory"
        case .invalidArguments:
            return "check ADDRESS and LENGTH; `procmem maps \(pid)` shows the valid ranges"
        case .noMemory:
            return "try a smaller LENGTH"
        case .badHandle, .notSupported, .io, .invalidBuffer:
            return nil
        }
    }

    /// The error as JSON: `{"code","exitCode","message","pid","address","bytesTransferred",
    /// "systemCall","errno","accessDenial","description"}` (absent facts are `null`).
    static func json(_ error: ProcessMemoryError) -> JSON {
        .object([
            ("code", .string(error.code.rawValue)),
            ("exitCode", .int(Int64(ExitCodes.status(for: error.code)))),
            ("message", .string(error.message)),
            ("pid", .optional(error.pid) { .int(Int64($0)) }),
            ("address", .optional(error.address) { .hex($0) }),
            ("bytesTransferred", .int(Int64(error.bytesTransferred))),
            ("systemCall", .optional(error.systemCall) { .string($0.description) }),
            // Errno's number through the Error protocol: this target does not import SystemPackage.
            ("errno", .optional(error.errno) { .int(Int64($0.rawValue)) }),
            ("accessDenial", .optional(error.accessDenial) { .string($0.description) }),
            ("description", .string(error.description)),
        ])
    }
}
