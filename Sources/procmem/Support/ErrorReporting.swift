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
            if error.message.contains("did not stop within") {
                return "a thread is blocked (uninterruptible sleep, vfork, a stopped tracer); try again, or use --stop none to read without stopping"
            }
            return "the process is exiting or gone; there is nothing left to read"
        case .wrongType:
            return "pick a user-space process; kernel threads have no user memory"
        case .invalidArguments:
            // Only a range can be fixed by another ADDRESS or LENGTH (not a bad file or a refusal).
            guard error.address != nil else { return nil }
            return "check ADDRESS and LENGTH; `procmem maps \(pid)` shows the valid ranges"
        case .noMemory:
            return "try a smaller LENGTH"
        case .badHandle, .notSupported, .io, .invalidBuffer:
            return nil
        }
    }
}

/// ERROR in `--json` output: `{"code","exitCode","message","pid","address","bytesTransferred",
/// "systemCall","errno","accessDenial","description"}` (its shape is in `procmem read --help`);
/// a missing fact is null.
struct ErrorReport: Encodable, Sendable {
    var code: String
    var exitCode: Int32
    var message: String
    @NullWhenAbsent var pid: Int32?
    @NullWhenAbsent var address: String?
    var bytesTransferred: Int
    @NullWhenAbsent var systemCall: String?
    @NullWhenAbsent var errno: Int32?
    @NullWhenAbsent var accessDenial: String?
    var description: String

    init(_ error: ProcessMemoryError) {
        code = error.code.rawValue
        exitCode = ExitCodes.status(for: error.code)
        message = error.message
        pid = error.pid
        address = error.address.map(Format.hex)
        bytesTransferred = error.bytesTransferred
        systemCall = error.systemCall?.description
        // Errno's number through the Error protocol: this target does not import SystemPackage.
        errno = error.errno.map { $0.rawValue }
        accessDenial = error.accessDenial?.description
        description = error.description
    }

    enum CodingKeys: String, CodingKey {
        case code, exitCode, message, pid, address, bytesTransferred, systemCall, errno, accessDenial, description
    }
}
