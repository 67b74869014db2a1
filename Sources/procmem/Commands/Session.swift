import ArgumentParser
import Glibc
import ProcessMemory
import ProcessMemoryCore

/// `procmem session PID [--as TYPE] [-c 'cmd; cmd']`: an interactive scan session.
struct Session: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find, narrow, set, freeze and save values at a prompt, as scanmem does.",
        discussion: """
            A prompt that keeps the current matches, type and options: `procmem 1234 [i32, 17 \
            matches]> `. Type a value to scan for it, then the value again as it changes (or \
            `snapshot` and then changed, decreased, +N, < N, A..B for an unknown value); `list`, \
            `set 999`, `freeze 0 =999`, `watch 0`, `pointer scan 0`, `save game.table 0`, `undo`. \
            `help` inside lists every command. On a terminal, lines can be edited and recalled \
            (arrows, Ctrl-A/E/U/W); Ctrl-C stops a running scan, never the session; Ctrl-D or \
            `quit` ends it.

            Commands also come from a pipe (no prompt is shown) and from -c 'cmd; cmd', so a \
            session can be scripted. A failed command prints its error and the session goes on; \
            the exit status is then the first failure's (see the exit codes of `procmem --help`). \
            Snapshots and large earlier match sets are kept in a private directory (mode 0700) \
            under --temp-dir, removed when the session ends; a set of more than 262,144 matches \
            keeps them in an unnamed file there (no match limit).

            --json prints one line per command (each `;`-separated part), for scripts: \
            {"command","ok","output","errors","state","type","matchCount","partial","matches","jobs"}: \
            output is the lines the text session would print, errors a list of \
            {"code","exitCode","message"} (code as in `procmem --help`, or "usage"), state "empty", \
            "snapshot" or "matches", matchCount null without a match set, matches the first 20 as \
            {"index","address","type","value"} with the value now (null when unreadable), jobs the \
            background freezes and watches running. Events of background jobs are in the output of \
            the command after which they were seen.
            """
    )

    @OptionGroup var processOption: ProcessOption

    @Option(name: .customLong("as"), help: ArgumentHelp("The value type to scan for (u8 … i64, f32, f64, any-int).", valueName: "type"))
    var type: ScanValueType = .i32

    @Option(name: .short, help: ArgumentHelp("Run these commands (separated by ;) and exit.", valueName: "commands"))
    var commands: [String] = []

    @Option(help: ArgumentHelp("Time between rounds of background freezes and watches.", valueName: "interval"),
            transform: WatchInterval.parse)
    var interval: Duration = .milliseconds(100)

    @OptionGroup var jsonOption: JSONOption

    @Option(name: .customLong("temp-dir"), help: ArgumentHelp("Where the session's private directory is made.", valueName: "dir"), completion: .directory)
    var temporaryDirectory: String = "/tmp"

    func run() throws {
        let handle = try TargetProcess.open(processOption.pid, rights: .readWrite)
        defer { handle.close() }
        let session: ScanSession
        do {
            var options = ScanOptions()
            options.temporaryDirectory = temporaryDirectory
            session = try ScanSession(handle: handle, type: type, options: options, temporaryDirectory: temporaryDirectory)
        } catch {
            throw ErrorReporting.fail(error)
        }
        defer { session.close() }
        let shell = SessionShell(handle: handle, session: session, interval: interval)
        shell.json = jsonOption.json
        defer { shell.jobs.stop() }
        let directory = session.directoryPath
        SessionInterrupts.install { SessionCleanup.remove(directory) }
        if !commands.isEmpty {
            for line in commands where shell.execute(line: line) == false { break }
        } else {
            let editor = SessionLineEditor()
            if editor.interactive && !jsonOption.json {
                Output.line("procmem session on pid \(handle.pid): `help` lists the commands, `quit` or Ctrl-D ends.")
            }
            while let line = editor.readLine(prompt: editor.interactive ? shell.prompt : "") {
                if !shell.execute(line: line) { break }
            }
        }
        if jsonOption.json {
            let ((), captured) = Output.capturing { shell.reportEvents() }
            if !captured.output.isEmpty || !captured.errors.isEmpty {
                Output.line(JSONOutput.text(shell.commandReport("(end)", captured)))
            }
        } else {
            shell.reportEvents()
        }
        if let status = shell.firstFailure { throw ExitCode(status) }
    }
}

/// Removing a session's private directory from the SIGTERM handler, when `defer` will not run.
enum SessionCleanup {
    static func remove(_ path: String) {
        guard let slash = path.lastIndex(of: "/") else { return }
        let parent = String(path[..<slash])
        let name = String(path[path.index(after: slash)...])
        guard let directory = try? OutputDirectory.open(parent.isEmpty ? "/" : parent, create: false) else { return }
        directory.removeTree(name)
        directory.close()
    }
}
