import Foundation
import ProcessMemoryTestSupport
import Testing

/// More matches than a set keeps in memory (262,144): `scan --save`, `rescan FILE` and a session
/// keep them all, through the spill file and the streamed match file, and say they are complete.
@Suite("procmem with many matches")
struct ManyMatchesCommandTests {
    static let count = 300_000

    /// A fixture mapping holding `count` int32 7s, and its range for --range.
    func sevens(_ fixture: Fixture) throws -> (base: Int, range: String) {
        let size = Self.count * 4
        let reply = try fixture.ok("map \(size)")
        let base = try #require(reply["address"] as? Int)
        let piece = 64 << 10
        let hex = String(repeating: "07000000", count: piece / 4)
        var offset = 0
        while offset < size {
            let length = min(piece, size - offset)
            _ = try fixture.ok("write \(base + offset) \(hex.prefix(length * 2))")
            offset += length
        }
        return (base, "\(base)-\(base + size)")
    }

    func json(_ result: RunResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any])
    }

    @Test("scan --save, rescan FILE and rescan --no-save keep every one of 300,000 matches, not partial")
    func scanAndRescan() throws {
        try withFixture { fixture in
            let (base, range) = try sevens(fixture)
            let file = NSTemporaryDirectory() + "procmem-many-\(UUID().uuidString).pmm"
            defer { for suffix in ["", ".1", ".2"] { unlink(file + suffix) } }
            let scan = try procmem("scan", fixture.pidArgument, "7", "--as", "i32", "--range", range, "--save", file,
                                   "--max-matches", "2", "--json")
            #expect(scan.status == 0, "\(scan.stderr)")
            let scanned = try json(scan)
            #expect(scanned["matchCount"] as? Int == Self.count && scanned["partial"] as? Bool == false)
            #expect((scanned["matches"] as? [Any])?.count == 2)

            _ = try fixture.ok("write \(base + 4 * 123_456) 08000000")
            let kept = try procmem("rescan", file, "--eq", "7", "--json", "--max-matches", "0")
            #expect(kept.status == 0, "\(kept.stderr)")
            #expect(try json(kept)["matchCount"] as? Int == Self.count - 1)
            #expect(try json(kept)["partial"] as? Bool == false)
            let changed = try procmem("rescan", file + ".1", "--changed", "--no-save", "--json")
            #expect(changed.status == 0, "\(changed.stderr)")
            let matches = try #require(try json(changed)["matches"] as? [[String: Any]])
            #expect(matches.compactMap { $0["address"] as? String } == ["0x" + String(base + 4 * 123_456, radix: 16)])
        }
    }

    @Test("A session scans, deletes, undoes and narrows 300,000 matches")
    func session() throws {
        try withFixture { fixture in
            _ = try sevens(fixture)
            let run = try procmem("session", fixture.pidArgument, "-c", "7; delete 0 1; undo; 7")
            #expect(run.status == 0, "\(run.stderr)")
            let scanned = try #require(run.lines.first { $0.hasPrefix("scan for 7: ") })
            let found = try #require(Int(scanned.dropFirst("scan for 7: ".count).prefix { $0.isNumber }))
            #expect(found >= Self.count)
            #expect(run.lines.contains { $0.hasPrefix("deleted 2") }, "\(run.lines)")
            #expect(run.lines.contains("undone: \(found) matches"), "\(run.lines)")
            #expect(run.lines.last?.hasPrefix("\(found) → narrowed by 7: \(found) matches") == true, "\(run.lines)")
        }
    }
}
