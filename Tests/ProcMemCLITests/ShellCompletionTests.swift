import Foundation
import Glibc
import ProcessMemoryTestTraits
import Testing

/// The generated completion scripts in the shells themselves: a PID argument offers running pids,
/// a FILE argument files.
@Suite("Shell completion in bash, zsh and fish", .serialized)
struct ShellCompletionTests {
    /// A directory with the completion script for `shell` and a table file to complete.
    final class Scratch {
        let directory: String
        let script: String

        init(shell: String) throws {
            directory = NSTemporaryDirectory() + "procmem-completion-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
            script = directory + "/procmem." + shell
            let generated = try procmem("--generate-completion-script", shell)
            try #require(generated.status == 0, "\(generated.stderr)")
            try Data(generated.stdout).write(to: URL(fileURLWithPath: script))
            try Data("[[entry]]\n".utf8).write(to: URL(fileURLWithPath: directory + "/game.table"))
        }

        deinit { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// The directory `procmem` was built in, for PATH (the scripts call `procmem` by name).
    func binDirectory() throws -> String {
        try Binaries.url("procmem").deletingLastPathComponent().path
    }

    @Test("bash: the sourced script's _procmem offers running pids for `procmem read <TAB>`, and files for a table", .requiresTool("bash"))
    func bashFunction() throws {
        try withFixture { fixture in
            let scratch = try Scratch(shell: "bash")
            let bash = Process()
            bash.executableURL = URL(fileURLWithPath: try #require(ToolLookup.path(of: "bash")))
            let prefix = String(fixture.pidArgument.dropLast())
            bash.arguments = ["--norc", "--noprofile", "-c", """
                source "$1" || exit 3
                complete -p procmem || exit 4
                COMP_WORDS=(procmem read "$2"); COMP_CWORD=2; COMP_LINE="procmem read $2"; COMP_POINT=${#COMP_LINE}
                _procmem procmem "$2" read
                printf 'pid:%s\\n' "${COMPREPLY[@]}"
                COMP_WORDS=(procmem table show "$3" "$4/gam"); COMP_CWORD=4; COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
                _procmem procmem "$4/gam" "$3"
                printf 'file:%s\\n' "${COMPREPLY[@]}"
                """, "bash", scratch.script, prefix, fixture.pidArgument, scratch.directory]
            var environment = ProcessInfo.processInfo.environment
            environment["PATH"] = try binDirectory() + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
            bash.environment = environment
            let output = Pipe()
            bash.standardOutput = output
            try bash.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            bash.waitUntilExit()
            #expect(bash.terminationStatus == 0, "\(text)")
            let lines = text.split(separator: "\n").map(String.init)
            #expect(lines.contains("complete -o filenames -F _procmem procmem"), "\(lines.prefix(3))")
            let pids = lines.filter { $0.hasPrefix("pid:") }.map { String($0.dropFirst(4)) }
            #expect(pids.contains(fixture.pidArgument), "\(pids.prefix(20))")
            #expect(!pids.isEmpty && pids.allSatisfy { $0.hasPrefix(prefix) && Int32($0) != nil }, "\(pids.prefix(20))")
            #expect(lines.contains("file:\(scratch.directory)/game.table"), "\(lines)")
        }
    }

    /// Types into `shell` on a terminal (tmux): source the script, then `procmem read PREFIX<TAB>`
    /// and `procmem table show PID DIR/gam<TAB>`; returns the screens.
    func typeInto(_ shell: [String], setup: String, scratch: Scratch, fixture: Fixture) throws -> (pid: String, file: String) {
        let terminal = SessionTerminalTests.Terminal()
        let path = try binDirectory() + ":/usr/bin:/bin"
        try terminal.run(["new-session", "-d", "-s", "s", "-x", "200", "-y", "50", (["env", "PATH=\(path)", "TERM=xterm"] + shell).joined(separator: " ")])
        terminal.panePID = pid_t(try terminal.run(["display-message", "-p", "-t", "s", "#{pane_pid}"]).text.trimmingCharacters(in: .whitespacesAndNewlines))
        try terminal.keys(setup + "; echo sourced-ok", "Enter")
        try terminal.wait(for: "sourced-ok", count: 2)
        let prefix = String(fixture.pidArgument.dropLast())
        try terminal.keys("procmem read \(prefix)", "Tab")
        usleep(300_000)
        try terminal.keys("Tab")
        let pidScreen = try terminal.wait(for: fixture.pidArgument, timeout: 15)
        // End of line, then erase it (Ctrl-E, Ctrl-U: the same in bash, zsh and fish).
        try terminal.keys("C-e", "C-u")
        try terminal.keys("procmem table show \(fixture.pidArgument) \(scratch.directory)/gam", "Tab")
        let fileScreen = try terminal.wait(for: "game.table", timeout: 15)
        try terminal.keys("C-e", "C-u")
        return (pidScreen, fileScreen)
    }

    @Test("bash on a terminal: Tab completes a running pid and a table file", .requiresTool("bash"), .requiresTool("tmux"))
    func bashTerminal() throws {
        try withFixture { fixture in
            let scratch = try Scratch(shell: "bash")
            let screens = try typeInto(["bash", "--norc", "--noprofile", "-i"], setup: "source \(scratch.script)", scratch: scratch, fixture: fixture)
            #expect(screens.pid.contains(fixture.pidArgument))
            #expect(screens.file.contains("\(scratch.directory)/game.table"))
        }
    }

    @Test("zsh on a terminal: Tab completes a running pid and a table file", .requiresTool("zsh"), .requiresTool("tmux"))
    func zshTerminal() throws {
        try withFixture { fixture in
            let scratch = try Scratch(shell: "zsh")
            let screens = try typeInto(["zsh", "-f", "-i"], setup: "autoload -U compinit && compinit -u && source \(scratch.script)",
                                       scratch: scratch, fixture: fixture)
            #expect(screens.pid.contains(fixture.pidArgument))
            #expect(screens.file.contains("\(scratch.directory)/game.table"))
        }
    }

    @Test("fish on a terminal: Tab completes a running pid and a table file", .requiresTool("fish"), .requiresTool("tmux"))
    func fishTerminal() throws {
        try withFixture { fixture in
            let scratch = try Scratch(shell: "fish")
            let screens = try typeInto(["fish", "--no-config"], setup: "source \(scratch.script)", scratch: scratch, fixture: fixture)
            #expect(screens.pid.contains(fixture.pidArgument))
            #expect(screens.file.contains("\(scratch.directory)/game.table"))
        }
    }
}
