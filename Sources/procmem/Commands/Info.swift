import ArgumentParser
import ProcessMemory

/// `procmem info PID`: command line, executable, state, uid and a summary of the map.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a process is and how much memory it maps.",
        discussion: """
            Shows the command line (/proc/PID/cmdline, arguments joined by spaces), the executable \
            (/proc/PID/exe), the state (alive, execed, exiting, zombie, gone), the real and \
            effective uid, the number of regions and the bytes in readable regions.

            --json prints one object:
              {"pid":N,"name":"…"|null,"executable":"…"|null,"commandLine":["…",…],
               "state":"alive","uid":N|null,"effectiveUid":N|null,"regions":N,
               "readableBytes":N}
            """
    )

    @Argument(help: "The process ID.")
    var pid: Int32

    @Flag(help: "Print JSON (shape above).")
    var json = false

    func run() throws {
        let handle = try TargetProcess.open(pid, rights: .read)
        defer { handle.close() }
        let map = try TargetProcess.memoryMap(handle)
        let arguments = (ProcFiles.read("/proc/\(pid)/cmdline") ?? [])
            .split(separator: 0, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        let commandLine = arguments.last == "" ? Array(arguments.dropLast()) : arguments
        let executable = ProcFiles.readLink("/proc/\(pid)/exe")
        let status = Self.status(ProcFiles.read("/proc/\(pid)/status") ?? [])
        let state: ProcessState
        do {
            state = try handle.state()
        } catch {
            throw ErrorReporting.fail(error)
        }
        if json {
            Output.line(JSON.object([
                ("pid", .int(Int64(pid))),
                ("name", .optional(status["Name"]?.first) { .string($0) }),
                ("executable", .optional(executable) { .string($0) }),
                ("commandLine", .array(commandLine.map { .string($0) })),
                ("state", .string(state.rawValue)),
                ("uid", .optional(status["Uid"]?.first.flatMap { UInt32($0) }) { .uint(UInt64($0)) }),
                ("effectiveUid", .optional(status["Uid"]?.dropFirst().first.flatMap { UInt32($0) }) { .uint(UInt64($0)) }),
                ("regions", .int(Int64(map.count))),
                ("readableBytes", .uint(map.readableBytes)),
            ]).text)
            return
        }
        let uids = status["Uid"] ?? []
        let uid = uids.first.map { real in
            uids.count > 1 && uids[1] != real ? "\(real) (effective \(uids[1]))" : real
        }
        Output.lines([
            "pid:        \(pid)",
            "name:       \(Format.printable(status["Name"]?.first ?? "?"))",
            "executable: \(Format.printable(executable ?? "?"))",
            "command:    \(Format.printable(commandLine.joined(separator: " ")))",
            "state:      \(state.rawValue)",
            "uid:        \(uid ?? "?")",
            "regions:    \(map.count)",
            "readable:   \(map.readableBytes) bytes (\(map.readableBytes / 1024) KiB)",
        ])
    }

    /// `/proc/PID/status` as `key: [values]` (values split at whitespace; `Name` kept whole).
    static func status(_ bytes: [UInt8]) -> [String: [String]] {
        var fields: [String: [String]] = [:]
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            let text = String(decoding: line, as: UTF8.self)
            guard let colon = text.firstIndex(of: ":") else { continue }
            let key = String(text[..<colon])
            let rest = text[text.index(after: colon)...]
            fields[key] = key == "Name" ? [String(rest).trimmingWhitespace]
                : rest.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        }
        return fields
    }
}
