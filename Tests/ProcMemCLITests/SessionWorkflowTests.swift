import Foundation
import Glibc
import ProcessMemoryTestTraits
import Testing

/// A small game built here with gcc (PIE, so ASLR moves it on every start): a health value in a
/// heap `Player` reached through the global `g_world -> World -> player`. It reads commands on
/// stdin: `hit` (health -= 7), `heal` (+= 3), `print` (`health=N`), `where` (`where=0xADDR` of health).
enum Game {
    static let source = """
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <unistd.h>
        struct Player { int health; float score; char name[16]; };
        struct World { long tick; long pad[2]; struct Player *player; };
        struct World *g_world;
        int main(void) {
            g_world = calloc(1, sizeof *g_world);
            g_world->player = calloc(1, sizeof *g_world->player);
            g_world->player->health = 100;
            strcpy(g_world->player->name, "hero");
            printf("ready %d\\n", (int)getpid());
            fflush(stdout);
            char line[64];
            while (fgets(line, sizeof line, stdin)) {
                if (!strncmp(line, "hit", 3)) { g_world->player->health -= 7; g_world->tick++; }
                else if (!strncmp(line, "heal", 4)) g_world->player->health += 3;
                else if (!strncmp(line, "print", 5)) printf("health=%d\\n", g_world->player->health);
                else if (!strncmp(line, "where", 5)) printf("where=%p\\n", (void *)&g_world->player->health);
                fflush(stdout);
            }
            return 0;
        }
        """

    /// The directory the game is built in (once per test run).
    static let directory: Result<URL, any Error> = Result {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-game-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("game.c")
        try source.write(to: file, atomically: true, encoding: .utf8)
        let gcc = Process()
        gcc.executableURL = URL(fileURLWithPath: ToolLookup.path(of: "gcc") ?? "/usr/bin/gcc")
        gcc.arguments = ["-O0", "-fPIE", "-pie", "-o", directory.appendingPathComponent("game").path, file.path]
        try gcc.run()
        gcc.waitUntilExit()
        guard gcc.terminationStatus == 0 else { throw POSIXError(.ENOEXEC) }
        return directory
    }

    /// Whether ASLR is on (then a restarted game's heap lies elsewhere).
    static var aslr: Bool {
        (try? String(contentsOfFile: "/proc/sys/kernel/randomize_va_space", encoding: .utf8))?.hasPrefix("0") == false
    }
}

/// Lines from a pipe, waited for with `poll(2)` and a deadline.
final class PipeLines {
    let handle: FileHandle
    private(set) var text = ""
    private var consumed = String.Index?.none

    init(_ pipe: Pipe) { handle = pipe.fileHandleForReading }

    /// Reads until the output after the last wait contains `needle`; returns that output.
    @discardableResult
    func wait(for needle: String, timeout: Double = 60) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let start = consumed ?? text.startIndex
            if let found = text[start...].range(of: needle) {
                let line = text[found.upperBound...].firstIndex(of: "\n") ?? text.endIndex
                let chunk = String(text[start..<line])
                consumed = line
                return chunk
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else {
                throw WaitFailure(message: "no '\(needle)' within \(timeout) s; output so far: \(text[start...])")
            }
            var descriptor = pollfd(fd: handle.fileDescriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, Int32(min(remaining, 1) * 1000)) > 0 else { continue }
            let data = handle.availableData
            guard !data.isEmpty else { throw WaitFailure(message: "the pipe closed before '\(needle)'; output: \(text[start...])") }
            text += String(decoding: data, as: UTF8.self)
        }
    }

    struct WaitFailure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}

/// A running game, driven through its stdin.
final class RunningGame {
    let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    let lines: PipeLines
    let pid: Int32

    init() throws {
        process.executableURL = try Game.directory.get().appendingPathComponent("game")
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        lines = PipeLines(output)
        try process.run()
        pid = process.processIdentifier
        try lines.wait(for: "ready")
    }

    func send(_ command: String) throws {
        try input.fileHandleForWriting.write(contentsOf: Data((command + "\n").utf8))
    }

    func health() throws -> Int {
        try send("print")
        let line = try lines.wait(for: "health=")
        return Int(line.split(separator: "=").last ?? "") ?? Int.min
    }

    func healthAddress() throws -> String {
        try send("where")
        return String(try lines.wait(for: "where=").split(separator: "=").last ?? "")
    }

    /// Polls the health until it is `value` (a background freeze takes a round to act).
    func waitForHealth(_ value: Int, timeout: Double = 20) throws -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        var now = try health()
        while now != value && Date() < deadline {
            usleep(50_000)
            now = try health()
        }
        return now
    }

    func stop() {
        kill(pid, SIGKILL)
        process.waitUntilExit()
    }
}

/// A `procmem` process with a pipe on stdin (a scripted session, or a table freeze to interrupt).
final class RunningProcmem {
    let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    let errors: URL
    let lines: PipeLines

    init(_ arguments: [String]) throws {
        process.executableURL = try Binaries.url("procmem")
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        errors = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-session-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: errors)
        lines = PipeLines(output)
        try process.run()
    }

    func send(_ line: String) throws {
        try input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
    }

    /// Sends `line` and waits for `needle` in what follows.
    @discardableResult
    func run(_ line: String, expect needle: String) throws -> String {
        try send(line)
        return try lines.wait(for: needle)
    }

    /// Closes stdin and waits for the exit status (SIGKILL after `timeout`).
    func finish(timeout: Double = 60) -> Int32 {
        try? input.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    var stderr: String { (try? String(contentsOf: errors, encoding: .utf8)) ?? "" }

    deinit { try? FileManager.default.removeItem(at: errors) }
}

@Suite("Session workflows on a game", .requiresTool("gcc"), .serialized)
struct SessionWorkflowTests {
    /// The index `list` shows for `address`, if any.
    func index(of address: String, in listing: String) -> Int? {
        for line in listing.split(separator: "\n") where line.contains(" \(address) ") {
            let inside = line.drop { $0 == "[" || $0 == " " }.prefix { $0.isNumber }
            return Int(inside)
        }
        return nil
    }

    @Test("Known value through a pipe: scan, narrow by value and by -7, delete and undo, set, a background freeze holds while the game hits, pointer scan, save; a restarted game's table show and freeze find and hold the value")
    func knownValueThenRestart() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-session-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let table = directory.appendingPathComponent("game.table").path

        let game = try RunningGame()
        let address = try game.healthAddress()
        let session = try RunningProcmem(["session", String(game.pid)])
        try session.run("100", expect: "scan for 100:")
        try game.send("hit")
        #expect(try game.health() == 93)
        try session.run("93", expect: "narrowed by 93")
        try game.send("hit")
        #expect(try game.health() == 86)
        try session.run("-7", expect: "narrowed by -7")
        var listing = try session.run("list; help list", expect: "Shows the first N")
        let found = try #require(index(of: address, in: listing), "the health is among the matches: \(listing)")
        #expect(listing.contains("86"))
        let count = try session.run("delete \(found)", expect: "deleted 1;")
        #expect(!count.contains(address))
        try session.run("undo", expect: "undone:")
        listing = try session.run("list", expect: address)
        try session.run("set 500 \(found)", expect: "wrote 500 to 1 match")
        #expect(try game.health() == 500)
        try session.run("freeze \(found) =999", expect: "freezing #\(found)")
        #expect(try game.waitForHealth(999) == 999)
        try game.send("hit")
        try game.send("hit")
        #expect(try game.waitForHealth(999) == 999, "the freeze writes the value back after each hit")
        let chains = try session.run("pointer scan \(found)", expect: "records")
        #expect(chains.contains("[0] game+"), "the best chain starts in the game: \(chains)")
        let saved = try session.run("save \(table) \(found) name=health", expect: "freeze 999")
        #expect(saved.contains("saved 1 entry") && saved.contains("health: game+"), "\(saved)")
        try session.run("unfreeze", expect: "stopped 1 job")
        try game.send("hit")
        #expect(try game.health() == 992)
        try session.send("quit")
        #expect(session.finish() == 0, "\(session.stderr)")
        game.stop()

        let text = try String(contentsOfFile: table, encoding: .utf8)
        #expect(text.contains("name = \"health\"") && text.contains("address = \"game+") && text.contains("freeze = \"999\""), "\(text)")

        // A new game: new pid and, with ASLR, a new heap. The table resolves its chain again.
        let next = try RunningGame()
        defer { next.stop() }
        let moved = try next.healthAddress()
        if Game.aslr { #expect(moved != address, "ASLR moved the heap") }
        let shown = try procmem(["table", "show", String(next.pid), table])
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.text.contains(moved) && shown.text.contains(" 100 "), "\(shown.text)")
        let json = try procmem(["table", "show", String(next.pid), table, "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(json.text.utf8)) as? [[String: Any]], "\(json.text)")
        #expect(entries.count == 1 && entries[0]["name"] as? String == "health" && entries[0]["address"] as? String == moved
                && (entries[0]["value"] as? NSNumber)?.intValue == 100 && entries[0]["error"] is NSNull
                && entries[0]["freeze"] as? String == "999", "\(json.text)")
        let freeze = try RunningProcmem(["table", "freeze", String(next.pid), table, "--interval", "20ms"])
        try freeze.lines.wait(for: "(was 100)")
        #expect(try next.health() == 999)
        try next.send("hit")
        try next.send("hit")
        #expect(try next.waitForHealth(999) == 999)
        kill(freeze.process.processIdentifier, SIGINT)
        #expect(freeze.finish() == 0, "\(freeze.stderr)")
        let applied = try procmem(["table", "apply", String(next.pid), table])
        #expect(applied.status == 0 && applied.text.contains("health \(moved): 999"), "\(applied.text)")
    }

    @Test("Unknown value through a pipe: snapshot, decreased, increased, -7, unchanged; undo back to the snapshot; set the one left")
    func unknownValue() throws {
        let game = try RunningGame()
        defer { game.stop() }
        let address = try game.healthAddress()
        let session = try RunningProcmem(["session", String(game.pid)])
        try session.run("snapshot", expect: "snapshot of")
        try game.send("hit")
        #expect(try game.health() == 93)
        try session.run("decreased", expect: "compared with the snapshot")
        try game.send("heal")
        #expect(try game.health() == 96)
        try session.run("increased", expect: "narrowed by increased")
        try game.send("hit")
        #expect(try game.health() == 89)
        try session.run("-7", expect: "narrowed by -7")
        try session.run("unchanged", expect: "narrowed by unchanged")
        var listing = try session.run("list; help quit", expect: "Ends the session")
        #expect(index(of: address, in: listing) != nil, "the health is among the matches: \(listing)")
        try session.run("undo; undo; undo; undo", expect: "back to the snapshot")
        try session.run("= 89", expect: "compared with the snapshot (= 89)")
        listing = try session.run("list 1000; help list", expect: "Shows the first N")
        let again = try #require(index(of: address, in: listing))
        try session.run("set 42 \(again)", expect: "wrote 42")
        #expect(try game.health() == 42)
        try session.send("quit")
        #expect(session.finish() == 0, "\(session.stderr)")
    }

    @Test("-c runs commands separated by ;: scan, ranges and comparisons, set, type; a bad command is reported with status 64 and the session goes on")
    func scripted() throws {
        let game = try RunningGame()
        defer { game.stop() }
        let address = try game.healthAddress()
        let run = try procmem(["session", String(game.pid), "-c", "100; 90..110; > 99; < 101; != 5; = 100; list", "-c", "bogus; set 77; type; type i16; list"])
        #expect(run.status == 64, "the first failure's status")
        #expect(run.stderr.contains("unknown command 'bogus'"))
        #expect(run.text.contains(address), "\(run.text)")
        #expect(run.text.contains("wrote 77"))
        #expect(run.text.contains("type i16; matches reset (undo brings them back)"))
        #expect(try game.health() == 77)
        let fine = try procmem(["session", String(game.pid), "-c", "77; undo; quit; bogus"])
        #expect(fine.status == 0, "quit ends the script before bogus: \(fine.stderr)")
        #expect(fine.text.contains("undone: no matches"))
    }

    @Test("set N[,N…]=VALUE, scanmem's form: each group gets its own value, in order; a malformed group writes nothing")
    func setGroups() throws {
        let game = try RunningGame()
        defer { game.stop() }
        let address = try game.healthAddress()
        let pid = String(game.pid)
        let listing = try procmem(["session", pid, "-c", "100; list 100000"])
        let index = try #require(self.index(of: address, in: listing.text), "\(listing.text)")
        let bad = try procmem(["session", pid, "-c", "100; set \(index)=61 x=5"])
        #expect(bad.status == 64, "\(bad.stderr)")
        #expect(bad.stderr.contains("is not a match number"), "\(bad.stderr)")
        #expect(try game.health() == 100, "a malformed group writes nothing")
        let run = try procmem(["session", pid, "-c", "100; set \(index)=61 \(index)=62"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.text.contains("wrote 61 to 1 match\n") && run.text.contains("wrote 62 to 1 match\n"), "\(run.text)")
        #expect(try game.health() == 62, "the groups are written in order")
    }
}
