import Foundation
import Glibc
import Testing

/// Issue 16: names a target or a file controls (mapping paths, command lines, paths saved in match
/// files) reach a terminal escaped, as `--json` already does.
@Suite("procmem text output escapes control characters")
struct TerminalOutputTests {
    /// An OSC title sequence ended by BEL, a CR that would overwrite the line, and a newline that
    /// would fake a table row.
    static let hostile = "evil\u{1b}]0;pwned\u{07}\rfake\nrow"

    /// A python3 process whose argv and one file mapping carry `hostile`; it prints a line when ready.
    static func withHostileTarget(_ body: (String, String) throws -> Void) throws {
        let python = try #require(StopHardeningTests.python)
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-escape-\(UUID().uuidString)").path
        try #require(mkdir(base, 0o700) == 0)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let file = base + "/" + hostile
        let target = Process()
        target.executableURL = URL(fileURLWithPath: python)
        target.arguments = ["-c", "import mmap, sys, time\nf = open(sys.argv[1], 'wb+'); f.write(b'HOSTILE!' * 512); f.flush()\n"
                            + "m = mmap.mmap(f.fileno(), 4096)\nprint('ready', flush=True)\ntime.sleep(120)", file, hostile]
        let output = Pipe()
        target.standardOutput = output
        try target.run()
        defer {
            // SIGKILL: SIGTERM may be blocked in children of a test thread.
            kill(target.processIdentifier, SIGKILL)
            target.waitUntilExit()
        }
        _ = output.fileHandleForReading.availableData
        try body(String(target.processIdentifier), base)
    }

    /// No ESC, BEL, CR or raw newline of the hostile name on one output line.
    static func expectClean(_ text: String, _ what: String) {
        #expect(!text.contains("\u{1b}"), "\(what) printed ESC")
        #expect(!text.contains("\u{07}"), "\(what) printed BEL")
        #expect(!text.contains("\r"), "\(what) printed CR")
        #expect(!text.split(separator: "\n").contains { $0.hasPrefix("row") }, "\(what) printed a newline from the name")
        #expect(text.contains("evil\\e]0;pwned\\x07\\rfake\\nrow"), "\(what) did not show the name escaped: \(text)")
    }

    @Test("maps, info and rescan escape ESC, OSC, BEL, CR and newline",
          .enabled(if: StopHardeningTests.python != nil, "needs python3 to map a file with a hostile name"))
    func hostileNames() throws {
        try Self.withHostileTarget { pid, base in
            let maps = try procmem("maps", pid)
            #expect(maps.status == 0, "\(maps.stderr)")
            Self.expectClean(maps.text, "maps")
            let info = try procmem("info", pid)
            #expect(info.status == 0, "\(info.stderr)")
            Self.expectClean(info.text, "info")
            let saved = base + "/m.pmm"
            let scan = try procmem("scan", pid, "--string", "HOSTILE!", "--all", "--path", "pwned", "--save", saved)
            #expect(scan.status == 0, "\(scan.stderr)")
            let rescan = try procmem("rescan", saved, "--unchanged", "--no-save", "--max-matches", "2")
            #expect(rescan.status == 0, "\(rescan.stderr)")
            Self.expectClean(rescan.text, "rescan")
        }
    }
}
