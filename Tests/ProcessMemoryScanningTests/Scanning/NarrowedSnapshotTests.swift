import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryScanning

/// Comparisons with more matches than fit in memory save a narrowed snapshot (candidate bitmaps)
/// instead of stopping at a cap; narrowing it gives the same matches as the in-memory list would.
@Suite("Narrowed snapshots")
struct NarrowedSnapshotTests {
    func pairs(_ set: MatchSet, from base: UInt64) -> [[Int]] {
        set.matches.map { [Int($0.address - base), $0.width] }
    }

    @Test("Broad any-int unaligned filters: no cap, the same matches as the in-memory list, through two generations",
          arguments: [4096, 65536])
    func sameAsInMemory(chunkSize: Int) throws {
        let fixture = try Fixture()
        let reply = try fixture.ok("map 65536")
        let base = UInt64(try #require(reply["address"] as? Int))
        // Some variety: a run of distinct bytes across the page boundary at 4096.
        try fixture.ok("write \(base + 4090) " + (0..<16).map { String(format: "%02x", $0 * 17) }.joined())
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        var options = ScanOptions(chunkSize: chunkSize, aligned: false)
        options.regions.addressRange = base..<(base + 65536)
        let inMemory = ProcessMemoryScanning.Scanner(handle: handle, options: options)
        options.inMemoryMatchLimit = 1000
        let spilling = ProcessMemoryScanning.Scanner(handle: handle, options: options)
        let directory = NSTemporaryDirectory() + "narrowed-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let snapshot = directory + "/s.snap"
        _ = try inMemory.snapshot(as: .anyInt, to: snapshot)

        try fixture.ok("write \(base + 8000) 01020304")
        let listed = try inMemory.compare(snapshotAt: snapshot, where: .unchanged)
        let generations = MatchFileGenerations(path: directory + "/n.snap")
        let narrowed = try spilling.compare(snapshotAt: snapshot, where: .unchanged, output: generations)
        #expect(listed.narrowedTo == nil && listed.matchCount == listed.matches.count)
        #expect(narrowed.narrowedTo == generations.path)
        #expect(narrowed.matchCount == listed.matches.count, "every unaligned value of every width but those touching the write")
        #expect(listed.matches.count > 60_000 * 4)
        #expect(narrowed.matches.count == 1000 && !narrowed.truncated && !narrowed.isPartial)
        #expect(pairs(narrowed.matches, from: base) == Array(pairs(listed.matches, from: base).prefix(1000)))
        #expect(MatchSet.isSnapshotFile(generations.path))

        // Narrow again: a change at 4094 and another at 8001. The in-memory list rescans its values;
        // the narrowed snapshot compares its pages and bitmaps. Both give the same matches.
        try fixture.ok("write \(base + 4094) ff")
        try fixture.ok("write \(base + 8001) 07")
        let expected = try inMemory.rescan(listed.matches, where: .changed)
        let again = try inMemory.compare(snapshotAt: generations.path, where: .changed)
        #expect(again.narrowedTo == nil)
        #expect(pairs(again.matches, from: base) == pairs(expected.matches, from: base))
        #expect(again.matches.count == 1 + 2 + 4 + 8, "every value holding byte 4094; those holding 8001 were no candidates")

        // And an unchanged narrowing of the narrowed file stays narrowed (a second generation), then equals.
        let third = try spilling.compare(snapshotAt: generations.path, where: .unchanged, output: generations)
        let expectedThird = try inMemory.rescan(listed.matches, where: .unchanged)
        #expect(third.narrowedTo == generations.path && third.matchCount == expectedThird.matches.count)
        #expect(try generations.earlier() == [generations.path(ofGeneration: 1)])
        let equal = try inMemory.compare(snapshotAt: generations.path, where: .equal(try ScanValue("0x33333333", as: .anyInt)))
        let expectedEqual = try inMemory.rescan(expectedThird.matches, where: .equal(try ScanValue("0x33333333", as: .anyInt)))
        #expect(pairs(equal.matches, from: base) == pairs(expectedEqual.matches, from: base))
        #expect(!equal.matches.isEmpty)

        // A narrowed snapshot compares its own type only.
        #expect(throws: ProcessMemoryError.self) { try inMemory.compare(snapshotAt: generations.path, where: .changed, as: .u32) }
    }

    @Test("Equality on a snapshot across the 64 KiB windows of a 1 MiB chunk: every match once, in order")
    func equalityWindows() throws {
        let fixture = try Fixture()
        let size = 256 << 10
        let reply = try fixture.ok("map \(size)")
        let base = UInt64(try #require(reply["address"] as? Int))
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        var options = ScanOptions(chunkSize: 1 << 20, aligned: false)
        options.regions.addressRange = base..<(base + UInt64(size))
        let scanner = ProcessMemoryScanning.Scanner(handle: handle, options: options)
        let path = NSTemporaryDirectory() + "windows-\(UUID().uuidString).snap"
        defer { unlink(path) }
        _ = try scanner.snapshot(as: .anyInt, to: path)
        try fixture.ok("write \(base + 65534) 11223344")  // a u32 across the first window's end
        let crossing = try scanner.compare(snapshotAt: path, where: .equal(try ScanValue("0x44332211", as: .anyInt)))
        #expect(pairs(crossing.matches, from: base) == [[65534, 4]])
        let everywhere = try scanner.compare(snapshotAt: path, where: .equal(try ScanValue("0x33", as: .anyInt)))
        #expect(everywhere.matches.count == size - 3, "every 0x33 byte; the write left one (its third byte)")
        let addresses = everywhere.matches.matches.map(\.address)
        #expect(addresses == addresses.sorted() && Set(addresses).count == addresses.count)
    }
}
