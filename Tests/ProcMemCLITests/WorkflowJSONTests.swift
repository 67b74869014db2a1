import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing

/// Issue 12's rest: JSON for scripts from session, freeze and table; undo and redo as commands.
@Suite("procmem workflow: JSON for scripts, undo and redo")
struct WorkflowJSONTests {
    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "procmem-workflow-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        return path
    }

    func objects(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        }
    }

    /// The one JSON object of a line read from a background run.
    func jsonLine(_ line: String?) throws -> [String: Any] {
        let text = try #require(line, "no line")
        return try #require(try objects(text).first)
    }

    func matchCount(_ result: RunResult) throws -> Int {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any], "\(result.text) \(result.stderr)")
        return try #require(object["matchCount"] as? Int)
    }

    @Test("session --json: one object per command with the match count, the matches and errors with their code")
    func sessionJSON() throws {
        try withFixture { fixture in
            let run = try procmem("session", fixture.pidArgument, "--as", "u32", "--json", "-c", "0x5EED1234; bogus; type")
            #expect(run.status == 64, "the first failure's status: \(run.stderr)")
            let lines = try objects(run.text)
            try #require(lines.count == 3, "\(run.text)")
            #expect(lines[0]["command"] as? String == "0x5EED1234")
            #expect(lines[0]["ok"] as? Bool == true)
            #expect(lines[0]["state"] as? String == "matches")
            #expect(lines[0]["matchCount"] as? Int == 7)
            let matches = try #require(lines[0]["matches"] as? [[String: Any]])
            #expect(matches.count == 7)
            #expect(matches.allSatisfy { $0["value"] as? Int == 0x5EED1234 && $0["type"] as? String == "u32" })
            #expect(matches.map { $0["index"] as? Int } == (0..<7).map { $0 })
            #expect((lines[0]["output"] as? [String])?.first?.hasPrefix("scan for 0x5EED1234: 7 matches") == true)
            #expect(lines[1]["ok"] as? Bool == false)
            let errors = try #require(lines[1]["errors"] as? [[String: Any]])
            #expect(errors.first?["code"] as? String == "usage" && errors.first?["exitCode"] as? Int == 64)
            #expect((errors.first?["message"] as? String)?.contains("unknown command 'bogus'") == true)
            #expect(lines[1]["matchCount"] as? Int == 7, "the set survives a failed command")
            #expect(lines[2]["errors"] as? [Any] != nil && lines[2]["ok"] as? Bool == true)
            #expect(run.stderr.isEmpty, "errors go in the JSON: \(run.stderr)")
            // Without a set, matchCount is null (the key is kept).
            let empty = try procmem("session", fixture.pidArgument, "--json", "-c", "list")
            let object = try #require(try objects(empty.text).first)
            #expect(object["matchCount"] is NSNull && object["state"] as? String == "empty")
            // A failed read of the target has its library error code.
            let set = try procmem("session", fixture.pidArgument, "--as", "u32", "--json", "-c", "0x5EED1234; delete 1-6; set 7")
            let wrote = try objects(set.text)
            #expect(wrote.last?["ok"] as? Bool == true, "\(set.text)")
            #expect((wrote.last?["matches"] as? [[String: Any]])?.first?["value"] as? Int == 7)
        }
    }

    @Test("undo and redo: the set an undo stepped back from comes back, until a new rescan drops the redo chain")
    func undoRedo() throws {
        try withFixture { fixture in
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let file = directory + "/hp.scan"
            #expect(try matchCount(try procmem("scan", fixture.pidArgument, "0x5EED1234", "--as", "u32", "--save", file, "--json")) == 7)
            #expect(try procmem("rescan", file, "--eq", "5").status == 0)
            let nothing = try procmem("redo", file)
            #expect(nothing.status == 10 && nothing.stderr.contains("nothing to redo"), "\(nothing.status) \(nothing.stderr)")
            let undone = try procmem("undo", file, "--json")
            #expect(undone.status == 0, "\(undone.stderr)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(undone.stdout)) as? [String: Any])
            #expect(report["earlierGenerations"] as? Int == 0 && report["redoable"] as? Int == 1 && report["file"] as? String == file)
            #expect(try matchCount(try procmem("rescan", file, "--unchanged", "--no-save", "--json")) == 7)
            let redone = try procmem("redo", file)
            #expect(redone.status == 0 && redone.text.contains("stepped forward"), "\(redone.stderr)")
            #expect(try matchCount(try procmem("rescan", file, "--unchanged", "--no-save", "--json")) == 0)
            #expect(FileManager.default.fileExists(atPath: file + ".1"))
            // rescan --undo is the same undo: redo follows it too.
            #expect(try procmem("rescan", "--undo", file).status == 0)
            #expect(FileManager.default.fileExists(atPath: file + ".redo.1"))
            let mode = try FileManager.default.attributesOfItem(atPath: file + ".redo.1")[.posixPermissions] as? Int
            #expect(mode == 0o600)
            // A new rescan drops the redo chain.
            #expect(try procmem("rescan", file, "--unchanged").status == 0)
            #expect(!FileManager.default.fileExists(atPath: file + ".redo.1"))
            #expect(try procmem("redo", file).status == 10)
            // A redo file that is a link is refused, never followed.
            #expect(try procmem("undo", file).status == 0)
            try FileManager.default.removeItem(atPath: file + ".redo.1")
            try FileManager.default.createSymbolicLink(atPath: file + ".redo.1", withDestinationPath: "/etc/passwd")
            let link = try procmem("redo", file)
            #expect(link.status != 0 && link.stderr.contains("symbolic link"), "\(link.status) \(link.stderr)")
        }
    }

    @Test("freeze --json: a line per write or first hold, with the value, what was found and the symbol key")
    func freezeJSON() throws {
        try withFixture { fixture in
            let address = try fixture.layout.value("u32")
            let freeze = try BackgroundProcmem(["freeze", fixture.pidArgument, hex(address), "7", "--as", "u32", "--interval", "10ms", "--json"])
            let first = try jsonLine(freeze.nextLine())
            #expect(first["event"] as? String == "restored" && first["value"] as? Int == 7 && first["old"] as? Int == 3735928559, "\(first)")
            #expect(first["address"] as? String == hex(address))
            #expect(first.keys.contains("symbol") && first["error"] is NSNull)
            try fixture.ok("write \(address) 2a000000")
            let second = try jsonLine(freeze.nextLine())
            #expect(second["event"] as? String == "restored" && second["old"] as? Int == 42, "\(second)")
            #expect(freeze.interrupt() == 0)
            // Already in place: a "held" line with old null.
            let held = try BackgroundProcmem(["freeze", fixture.pidArgument, hex(address), "7", "--as", "u32", "--json"])
            let line = try jsonLine(held.nextLine())
            #expect(line["event"] as? String == "held" && line["old"] is NSNull, "\(line)")
            #expect(held.interrupt() == 0)
        }
    }

    @Test("table watch, freeze and apply --json: a line per event, one object for apply, errors with their code")
    func tableJSON() throws {
        try withFixture { fixture in
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let address = try fixture.layout.value("u32")
            let table = directory + "/t.table"
            try """
                [[entry]]
                name = "value"
                address = "\(hex(address))"
                type = "u32"
                freeze = "9"

                [[entry]]
                name = "nowhere"
                address = "0x10"
                type = "u8"
                freeze = "1"

                """.write(toFile: table, atomically: false, encoding: .utf8)
            let apply = try procmem("table", "apply", fixture.pidArgument, table, "--json")
            #expect(apply.status == 16, "the first failure's status: \(apply.stderr)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(apply.stdout)) as? [String: Any], "\(apply.text)")
            let entries = try #require(object["entries"] as? [[String: Any]])
            try #require(entries.count == 2)
            #expect(entries[0]["name"] as? String == "value" && entries[0]["value"] as? Int == 9 && entries[0]["old"] as? Int == 3735928559)
            #expect(entries[0]["error"] is NSNull && entries[0]["address"] as? String == hex(address))
            #expect((entries[1]["error"] as? [String: Any])?["code"] as? String == "notFound", "\(entries[1])")
            #expect(try fixture.selfReadHex(address, 4) == "09000000")

            let watch = try BackgroundProcmem(["table", "watch", fixture.pidArgument, table, "--json", "--interval", "10ms", "--entry", "value"])
            let initial = try jsonLine(watch.nextLine())
            #expect(initial["event"] as? String == "changed" && initial["value"] as? Int == 9 && initial["old"] is NSNull, "\(initial)")
            try fixture.ok("write \(address) 2a000000")
            let change = try jsonLine(watch.nextLine())
            #expect(change["value"] as? Int == 42 && change["old"] as? Int == 9 && change["name"] as? String == "value", "\(change)")
            #expect(watch.interrupt() == 0)

            let freeze = try BackgroundProcmem(["table", "freeze", fixture.pidArgument, table, "--json", "--interval", "10ms"])
            var seen: [String: [String: Any]] = [:]
            while seen.count < 2, let line = freeze.nextLine() {
                let event = try jsonLine(line)
                seen[event["name"] as? String ?? ""] = event
            }
            #expect(seen["value"]?["event"] as? String == "restored" && seen["value"]?["old"] as? Int == 42, "\(seen)")
            #expect(seen["nowhere"]?["event"] as? String == "failed", "\(seen)")
            #expect((seen["nowhere"]?["error"] as? [String: Any])?["code"] as? String == "notFound")
            #expect(freeze.interrupt() == 0)
        }
    }
}
