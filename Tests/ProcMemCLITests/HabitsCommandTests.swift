import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing

/// The habits of issue 12: undo of rescans, pointer-scan bases, progress lines, string matches as text.
@Suite("procmem habits: undo, pointer bases, progress, strings as text")
struct HabitsCommandTests {
    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "procmem-habits-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        return path
    }

    func matchCount(_ result: RunResult) throws -> Int {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any], "\(result.text) \(result.stderr)")
        return try #require(object["matchCount"] as? Int)
    }

    @Test("A wrong rescan keeps the set it replaced; rescan --undo brings it back, also a snapshot; --keep bounds the generations")
    func undo() throws {
        try withFixture { fixture in
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let file = directory + "/hp.scan"
            #expect(try matchCount(try procmem("scan", fixture.pidArgument, "0x5EED1234", "--as", "u32", "--save", file, "--json")) == 7)
            let wrong = try procmem("rescan", file, "--eq", "5")
            #expect(wrong.status == 0, "\(wrong.stderr)")
            #expect(wrong.text.contains("the previous one kept as \(file).1"))
            #expect(try matchCount(try procmem("rescan", file, "--unchanged", "--no-save", "--json")) == 0)
            let undone = try procmem("rescan", "--undo", file)
            #expect(undone.status == 0, "\(undone.stderr)")
            #expect(try matchCount(try procmem("rescan", file, "--unchanged", "--no-save", "--json")) == 7)
            #expect(!FileManager.default.fileExists(atPath: file + ".1"))
            let nothing = try procmem("rescan", "--undo", file)
            #expect(nothing.status == 10 && nothing.stderr.contains("no earlier generation"), "\(nothing.status) \(nothing.stderr)")

            // --keep 2: three more rescans keep only the two before the newest.
            for _ in 0..<3 { #expect(try procmem("rescan", file, "--unchanged", "--keep", "2").status == 0) }
            let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { !$0.hasPrefix(".") }.sorted()
            #expect(names == ["hp.scan", "hp.scan.1", "hp.scan.2"])
            let mode = try FileManager.default.attributesOfItem(atPath: file + ".2")[.posixPermissions] as? Int
            #expect(mode == 0o600)

            // A snapshot replaced by its first comparison comes back with --undo.
            let snapshot = directory + "/s.snap"
            #expect(try procmem("scan", fixture.pidArgument, "--snapshot", "--as", "u32", "--save", snapshot).status == 0)
            #expect(try procmem("rescan", snapshot, "--changed").status == 0)
            #expect(try procmem("rescan", "--undo", snapshot).status == 0)
            let again = try procmem("rescan", snapshot, "--unchanged", "--no-save", "--json")
            #expect(again.status == 0, "\(again.stderr)")
            #expect(try matchCount(again) > 7, "a comparison against the snapshot again, not the match set")
            #expect(try procmem("rescan", "--undo", file, "--eq", "1").status == 64)
            // A snapshot saved over an existing file keeps it as FILE.1 too.
            #expect(try procmem("scan", fixture.pidArgument, "--snapshot", "--as", "u8", "--save", file).status == 0)
            #expect(MatchFileKind.isSnapshot(file) && !MatchFileKind.isSnapshot(file + ".1"))
        }
    }

    @Test("pointer scan: --module keeps bases in that module, the loader is left out unless asked for, the expected chain ranks first")
    func pointerBases() throws {
        try withFixture { fixture in
            let target = try fixture.layout.value("u32")
            let data = try fixture.dataSegment()
            let slot = data.end - 64
            let page = try fixture.mapPage()
            try fixture.storePointer(page, at: slot)
            try fixture.storePointer(target, at: page + 0x18)
            let expected = "procmem-fixture+\(hex(slot - data.moduleStart)) -> +0x18 -> +0x0"
            let scan = try procmem("pointer", "scan", fixture.pidArgument, hex(target), "--depth", "2", "--max-offset", "0x100")
            #expect(scan.status == 0 || scan.status == 1, "\(scan.stderr)")
            #expect(scan.lines.contains(expected), "\(scan.lines.prefix(5))")
            #expect(scan.lines.first?.hasPrefix("procmem-fixture+") == true, "the main executable's bases first: \(scan.lines.prefix(5))")
            #expect(!scan.text.contains("ld-linux"))
            let module = try procmem("pointer", "scan", fixture.pidArgument, hex(target), "--depth", "2", "--max-offset", "0x100",
                                     "--module", "procmem-fixture!")
            #expect(module.lines.contains(expected))
            #expect(module.lines.allSatisfy { $0.hasPrefix("procmem-fixture+") }, "\(module.lines.prefix(5))")
            let loader = try procmem("pointer", "scan", fixture.pidArgument, hex(target), "--depth", "1", "--include-loader", "--max-results", "100000")
            let without = try procmem("pointer", "scan", fixture.pidArgument, hex(target), "--depth", "1", "--max-results", "100000")
            #expect(loader.lines.count >= without.lines.count)
            #expect(without.lines.allSatisfy { !$0.hasPrefix("ld-") })
            let missing = try procmem("pointer", "scan", fixture.pidArgument, hex(target), "--module", "no-such.so")
            #expect(missing.status == 10, "\(missing.stderr)")
        }
    }

    @Test("--progress draws done / total, the percentage, the rate and the time left on stderr for scan, rescan, compare, pointer scan and dump")
    func progressLines() throws {
        try withFixture { fixture in
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let file = directory + "/m.scan"
            let scan = try procmem("scan", fixture.pidArgument, "0x5EED1234", "--as", "u32", "--save", file, "--progress")
            #expect(scan.stderr.contains("scan: ") && scan.stderr.contains(" / ") && scan.stderr.contains("%)") && scan.stderr.contains("/s"),
                    "\(scan.stderr)")
            let rescan = try procmem("rescan", file, "--unchanged", "--progress")
            #expect(rescan.stderr.contains("rescan: ") && rescan.stderr.contains(" / 7 matches ("), "\(rescan.stderr)")
            let snapshot = directory + "/s.snap"
            let taken = try procmem("scan", fixture.pidArgument, "--snapshot", "--as", "u32", "--save", snapshot, "--progress")
            #expect(taken.stderr.contains("snapshot: ") && taken.stderr.contains("%)"), "\(taken.stderr)")
            let compare = try procmem("rescan", snapshot, "--unchanged", "--no-save", "--progress")
            #expect(compare.stderr.contains("rescan: ") && compare.stderr.contains("B/s") && compare.stderr.contains("%)"), "\(compare.stderr)")
            let pointer = try procmem("pointer", "scan", fixture.pidArgument, hex(try fixture.layout.value("u32")), "--depth", "1", "--progress")
            #expect(pointer.stderr.contains("pointer scan: ") && pointer.stderr.contains("%)"), "\(pointer.stderr)")
            let dump = try procmem("dump", fixture.pidArgument, "--core", directory + "/core", "--progress")
            #expect(dump.stderr.contains("dump: ") && dump.stderr.contains("%)"), "\(dump.stderr)")
            // Without --progress and with stderr not a terminal: no progress line.
            let quiet = try procmem("rescan", file, "--unchanged", "--no-save")
            #expect(!quiet.stderr.contains("rescan: "))
        }
    }

    @Test("String and pattern matches print as escaped text; --json gives the hex value and the text")
    func stringsAsText() throws {
        try withFixture { fixture in
            let base = try fixture.mapPage()
            let bytes: [UInt8] = Array("NEEDLE\u{1b}[31mred".utf8) + [0, 0xff]
            _ = try fixture.ok("write \(base + 16) \(bytes.map { String(format: "%02x", $0) }.joined())")
            let range = "\(hex(base))-\(hex(base + 4096))"
            let text = try procmem("scan", fixture.pidArgument, "--string", "needle", "--ignore-case", "--range", range)
            #expect(text.status == 0, "\(text.stderr)")
            #expect(text.lines.first?.hasPrefix("\(hex(base + 16)): \"NEEDLE\" (4e 45 45 44 4c 45)") == true, "\(text.lines)")
            let pattern = try procmem("scan", fixture.pidArgument, "--pattern", "4e 45 45 44 4c 45 1b 5b 33 31 6d 72 65 64 00 ff",
                                      "--range", range)
            #expect(pattern.lines.first?.hasPrefix("\(hex(base + 16)): \"NEEDLE\\e[31mred\\x00\\xff\" (4e 45 45 44 4c 45 1b 5b …)") == true,
                    "\(pattern.lines)")
            #expect(!pattern.text.contains("\u{1b}"), "no raw escape reaches the terminal")
            let json = try procmem("scan", fixture.pidArgument, "--string", "needle", "--ignore-case", "--range", range, "--json")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout)) as? [String: Any])
            let match = try #require((object["matches"] as? [[String: Any]])?.first)
            #expect(match["text"] as? String == "NEEDLE")
            #expect(match["value"] as? String == "4e 45 45 44 4c 45")
        }
    }

    @Test("Completion scripts for bash, zsh and fish; PID arguments complete running pids, FILE arguments files")
    func completion() throws {
        for shell in ["bash", "zsh", "fish"] {
            let script = try procmem("--generate-completion-script", shell)
            #expect(script.status == 0 && script.text.contains("---completion"), "\(shell): \(script.stderr)")
        }
        let bash = try procmem("--generate-completion-script", "bash").text
        let rescan = try #require(bash.range(of: "_procmem_rescan()")).upperBound
        #expect(bash[rescan...].prefix(3000).contains("__procmem_add_completions -f"), "FILE and --save complete file names")
        try withFixture { fixture in
            let prefix = String(fixture.pidArgument.prefix(fixture.pidArgument.count - 1))
            let candidates = try procmem("---completion", "maps", "--", "positional@0", "2", String(prefix.count), "procmem", "maps", prefix)
            #expect(candidates.status == 0, "\(candidates.stderr)")
            #expect(candidates.lines.contains(fixture.pidArgument), "\(candidates.lines.prefix(20))")
            #expect(candidates.lines.allSatisfy { $0.hasPrefix(prefix) })
        }
    }
}

/// Whether a file starts like a snapshot file (`PMSNAP\0\0`).
enum MatchFileKind {
    static func isSnapshot(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 8)) == Data("PMSNAP".utf8 + [0, 0])
    }
}
