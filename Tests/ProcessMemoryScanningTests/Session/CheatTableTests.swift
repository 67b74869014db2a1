import Foundation
import Glibc
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryScanning

@Suite("Cheat tables") struct CheatTableTests {
    let good = """
        # procmem cheat table
        version = 1

        [[entry]]
        name = "health"
        address = "game+0x4078 -> +0x18 -> +0x0"   # the player's
        type = "i32"
        description = "the player's \\"health\\"\\tindeed"
        freeze = 999

        [[entry]]
        name = "world"
        address = "game!g_world -> +0x18"
        type = "u64"

        [[entry]]
        name = "title"
        address = "[heap]+0x2a0"
        type = "cstring"
        freeze = "J\\u00e9r\\u00f4me"
        """

    func parse(_ text: String) throws(CheatTable.Failure) -> CheatTable {
        try CheatTable(parsing: Array(text.utf8))
    }

    @Test("A good table parses: chains, symbols, region offsets, comments, escapes, a bare freeze number")
    func goodTable() throws {
        let table = try parse(good)
        #expect(table.entries.map(\.name) == ["health", "world", "title"])
        let health = try #require(table.entry(named: "health"))
        #expect(health.expression.hops == [0x18, 0])
        #expect(health.type == .i32)
        #expect(health.description == "the player's \"health\"\tindeed")
        #expect(health.freezeBytes == [0xE7, 0x03, 0, 0])
        #expect(table.entry(named: "world")?.freeze == nil)
        #expect(table.entry(named: "title")?.freezeBytes == Array("Jérôme".utf8), "a cstring is written without its NUL")
    }

    @Test("The text a table writes reads back to the same table, control characters escaped")
    func roundTrip() throws {
        var table = try parse(good)
        table.entries.append(try CheatTable.Entry(name: "odd\n\u{1b}[31m\"name\\", address: "0x1000", type: .f32,
                                                  description: "line\r\nbreak", freeze: "2.5"))
        let text = table.text
        #expect(!text.contains("\u{1b}"))
        #expect(try parse(text) == table)
    }

    @Test("A value that starts with a combining mark reads back (the fuzzer's find: it joined the opening quote)")
    func combiningMarkAfterQuote() throws {
        var table = try parse(good)
        table.entries.append(try CheatTable.Entry(name: "\u{20E9}mark", address: "0x1000", type: .i32, description: "\u{301}e"))
        #expect(try parse(table.text) == table)
    }

    @Test("Bad tables are refused with the line and what is wrong", arguments: [
        ("[[entry]]\nname = \"a\"\ntype = \"i32\"\n", 1, "has no address"),
        ("[[entry]]\nname = \"a\"\naddress = \"0x10\"\ntype = \"int\"\n", 4, "unknown type 'int'"),
        ("[[entry]]\nname = \"a\"\naddress = \"game+0x10 -> +0x8 ->\"\ntype = \"i32\"\n", 3, "invalid address"),
        ("[[entry]]\nname = \"a\"\naddress = \"0x10\"\ntype = \"u8\"\nfreeze = 300\n", 5, "freeze value"),
        ("[[entry]]\nname = \"a\"\naddress = \"0x10\"\ntype = \"u8\"\ncolour = \"red\"\n", 5, "unknown key 'colour'"),
        ("[[entry]]\nname = \"a\"\nname = \"b\"\n", 3, "given twice"),
        ("[[entry]]\nname = \"a\nb\"\n", 2, "no closing quote"),
        ("[[entry]]\nname = \"a\\q\"\n", 2, "unknown escape"),
        ("[[entry]]\nname = a\n", 2, "quoted string"),
        ("name = \"a\"\n", 1, "before the first [[entry]]"),
        ("version = 2\n", 1, "version 1"),
        ("[entries]\n", 1, "unknown section"),
        ("\n\nnonsense\n", 3, "expected `key = \"value\"`"),
        ("[[entry]]\nname = \"a\"\naddress = \"0x10\"\ntype = \"u8\"\n[[entry]]\nname = \"a\"\naddress = \"0x20\"\ntype = \"u8\"\n", 6, "a second entry is named 'a'"),
        ("[[entry]]\nname = \"a\" trailing\n", 2, "after the closing quote"),
    ])
    func badTables(text: String, line: Int, message: String) {
        do {
            _ = try parse(text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.line == line, "\(error)")
            #expect(error.message.contains(message), "\(error)")
            #expect(error.description.hasPrefix("line \(line): "))
        }
    }

    @Test("Not UTF-8, an overlong line, a file too large: refused, never a crash")
    func limits() throws {
        #expect(throws: CheatTable.Failure(line: 2, message: "the table is not UTF-8 text")) {
            _ = try CheatTable(parsing: Array("# ok\nname = \"".utf8) + [0xFF, 0xFE])
        }
        let long = "# " + String(repeating: "x", count: 5000)
        #expect(throws: CheatTable.Failure.self) { _ = try parse(long) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tables-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let big = directory.appendingPathComponent("big.table").path
        #expect(FileManager.default.createFile(atPath: big, contents: Data(repeating: 0x23, count: CheatTable.maximumFileSize + 1)))
        #expect(throws: ProcessMemoryError.self) { _ = try CheatTable(contentsOf: big) }
        #expect(throws: ProcessMemoryError.self) { _ = try CheatTable(contentsOf: "/dev/zero") }
        // Written through OutputFiles (0600) and read back.
        let path = directory.appendingPathComponent("game.table").path
        let table = try parse(good)
        try table.save(to: path)
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(try CheatTable(contentsOf: path) == table)
        // A malformed file's error names the file and the line.
        let bad = directory.appendingPathComponent("bad.table").path
        #expect(FileManager.default.createFile(atPath: bad, contents: Data("[[entry]]\nname = 5\n".utf8)))
        do {
            _ = try CheatTable(contentsOf: bad)
            Issue.record("accepted a bad file")
        } catch {
            #expect(error.message.contains("bad.table: line 2:"), "\(error)")
        }
    }

    @Test("Mutated tables (bytes flipped, cut, repeated) parse or fail with a line inside the text, never crash")
    func mutations() {
        var generator = SystemRandomNumberGenerator()
        let base = Array(good.utf8)
        for round in 0..<3000 {
            var bytes = base
            switch round % 3 {
            case 0:
                for _ in 0..<Int.random(in: 1...8, using: &generator) {
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                }
            case 1: bytes = Array(bytes[..<Int.random(in: 0..<bytes.count, using: &generator)])
            default:
                let cut = Int.random(in: 0..<bytes.count, using: &generator)
                bytes.insert(contentsOf: bytes[cut...].prefix(40), at: cut)
            }
            do {
                _ = try CheatTable(parsing: bytes)
            } catch {
                let lines = bytes.filter { $0 == UInt8(ascii: "\n") }.count + 1
                #expect(error.line >= 0 && error.line <= lines, "\(error)")
            }
        }
    }
}
