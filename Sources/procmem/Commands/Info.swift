import ArgumentParser
import ProcessMemory

/// `procmem info PID`: command line, executable, state, uid, threads, RSS and a summary of the map.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a process is and how much memory it maps.",
        discussion: """
            Shows the command line (/proc/PID/cmdline, arguments joined by spaces), the executable \
            (/proc/PID/exe), the state (alive, execed, exiting, zombie, gone), the real and \
            effective uid, the number of threads and the resident memory (Threads and VmRSS in \
            /proc/PID/status), the number of regions and the bytes in readable regions. Every file is \
            read through the process handle, so a reused PID is never shown as the old process.

            --json prints one object:
              {"pid":N,"name":"…"|null,"executable":"…"|null,"commandLine":["…",…],
               "state":"alive","uid":N|null,"effectiveUid":N|null,"threads":N|null,
               "residentBytes":N|null,"regions":N,"readableBytes":N}
            ("threads" and "residentBytes" were added in this version; the other keys are unchanged.)
            """
    )

    @OptionGroup var processOption: ProcessOption

    var pid: Int32 { processOption.pid }

    @OptionGroup var jsonOption: JSONOption

    var json: Bool { jsonOption.json }

    func run() throws {
        let handle = try TargetProcess.open(pid, rights: .read)
        defer { handle.close() }
        let map = try TargetProcess.memoryMap(handle)
        let commandLine: [String]
        let status: ProcessStatus
        let state: ProcessState
        do {
            commandLine = try handle.commandLine()
            status = try handle.status()
            state = try handle.state()
        } catch {
            throw ErrorReporting.fail(error)
        }
        let executable = handle.executablePath()
        if json {
            Output.line(JSONOutput.text(Report(pid: pid, name: status.name.isEmpty ? nil : status.name, executable: executable,
                                               commandLine: commandLine, state: state.rawValue, uid: status.realUID,
                                               effectiveUid: status.effectiveUID, threads: status.threads,
                                               residentBytes: status.residentBytes, regions: map.count,
                                               readableBytes: map.readableBytes)))
            return
        }
        let uid = status.realUID.map { real in
            status.effectiveUID.map { $0 != real ? "\(real) (effective \($0))" : "\(real)" } ?? "\(real)"
        }
        Output.lines([
            "pid:        \(pid)",
            "name:       \(Format.printable(status.name.isEmpty ? "?" : status.name))",
            "executable: \(Format.printable(executable ?? "?"))",
            "command:    \(Format.printable(commandLine.joined(separator: " ")))",
            "state:      \(state.rawValue)",
            "uid:        \(uid ?? "?")",
            "threads:    \(status.threads.map(String.init) ?? "?")",
            "resident:   \(status.residentBytes.map { "\($0) bytes (\($0 / 1024) KiB)" } ?? "?")",
            "regions:    \(map.count)",
            "readable:   \(map.readableBytes) bytes (\(map.readableBytes / 1024) KiB)",
        ])
    }

    /// `--json`: the shape in the help above; a missing value is null, never left out.
    struct Report: Encodable {
        var pid: Int32
        @NullWhenAbsent var name: String?
        @NullWhenAbsent var executable: String?
        var commandLine: [String]
        var state: String
        @NullWhenAbsent var uid: UInt32?
        @NullWhenAbsent var effectiveUid: UInt32?
        @NullWhenAbsent var threads: Int?
        @NullWhenAbsent var residentBytes: UInt64?
        var regions: Int
        var readableBytes: UInt64

        enum CodingKeys: String, CodingKey {
            case pid, name, executable, commandLine, state, uid, effectiveUid, threads, residentBytes, regions, readableBytes
        }
    }
}
