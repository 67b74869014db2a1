import Foundation
import Glibc
import ProcessMemoryTestTraits
import Testing

/// `procmem session` on a real terminal: tmux runs it, send-keys types, capture-pane reads the screen.
@Suite("Session line editing on a terminal", .requiresTool("gcc"), .requiresTool("tmux"))
struct SessionTerminalTests {
    /// A tmux server of the test's own (its own socket), so no other tmux is touched.
    final class Terminal {
        let socket = "procmem-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let tmux = ToolLookup.path(of: "tmux") ?? "/usr/bin/tmux"

        /// Runs tmux with `arguments` (posix_spawn and waitpid: Foundation's Process waits forever
        /// for a client whose daemon child, the tmux server, inherits its descriptors), its stdout
        /// in a file (the server keeps its inherited stdout open for its whole life).
        @discardableResult
        func run(_ arguments: [String]) throws -> (status: Int32, text: String) {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(socket)-\(UUID().uuidString).out").path
            defer { unlink(file) }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, file, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
            let argv = ([tmux, "-L", socket] + arguments).map { strdup($0) } + [nil]
            defer { for pointer in argv { free(pointer) } }
            var pid: pid_t = 0
            let spawned = posix_spawn(&pid, tmux, &actions, nil, argv, environ)
            guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EIO) }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let exited = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            return (exited, String(decoding: (try? readCapture(file)) ?? [], as: UTF8.self))
        }

        func keys(_ keys: String...) throws { try run(["send-keys", "-t", "s"] + keys) }

        var screen: String { (try? run(["capture-pane", "-p", "-t", "s"]).text) ?? "" }

        /// Waits until the screen shows `text` (after `from` occurrences of it).
        @discardableResult
        func wait(for text: String, count: Int = 1, timeout: Double = 30) throws -> String {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                let now = screen
                if now.components(separatedBy: text).count - 1 >= count { return now }
                usleep(50_000)
            }
            throw PipeLines.WaitFailure(message: "the screen never showed '\(text)' ×\(count):\n\(screen)")
        }

        var alive: Bool { (try? run(["has-session", "-t", "s"]).status) == 0 }

        /// The pane's process (procmem), killed with SIGKILL at the end whatever happened.
        var panePID: pid_t?

        deinit {
            if let panePID { kill(panePID, SIGKILL) }
            _ = try? run(["kill-server"])
        }
    }

    @Test("Arrows, Home, Delete, Backspace, Ctrl-A/K, history; Ctrl-C ends a running command, not the session; Ctrl-D ends it")
    func lineEditing() throws {
        let game = try RunningGame()
        defer { game.stop() }
        let terminal = Terminal()
        let procmem = try Binaries.url("procmem").path
        try terminal.run(["new-session", "-d", "-s", "s", "-x", "160", "-y", "40", "\(procmem) session \(game.pid)"])
        terminal.panePID = pid_t(try terminal.run(["display-message", "-p", "-t", "s", "#{pane_pid}"]).text.trimmingCharacters(in: .whitespacesAndNewlines))
        try terminal.wait(for: "[i32, no matches]>")
        // "x100" with the x deleted from the start.
        try terminal.keys("x100", "Home", "DC", "Enter")
        try terminal.wait(for: "scan for 100:")
        // "lisx", Backspace, "t": list.
        try terminal.keys("lisx", "BSpace", "t", "Enter")
        var screen = try terminal.wait(for: "[heap]+", count: 2)
        // Up twice recalls "100"; Left and typing in the middle: "1900" → Ctrl-A Ctrl-K clears; then help.
        try terminal.keys("Up", "Up")
        try terminal.wait(for: "> 100", count: 2)
        try terminal.keys("Left", "Left", "9", "C-a", "C-k", "help undo", "Enter")
        try terminal.wait(for: "Goes back one step")
        // Ctrl-C stops a sleep; the session answers the next command.
        try terminal.keys("sleep 60", "Enter")
        usleep(300_000)
        try terminal.keys("C-c")
        try terminal.keys("type", "Enter")
        screen = try terminal.wait(for: "type i32 (one of")
        #expect(!screen.contains("1900"))
        #expect(terminal.alive)
        try terminal.keys("C-d")
        let deadline = Date().addingTimeInterval(20)
        while terminal.alive && Date() < deadline { usleep(50_000) }
        #expect(!terminal.alive, "Ctrl-D on an empty line ends the session")
    }
}
