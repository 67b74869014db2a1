import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryScanning

/// Match sets of any size: no default cap, and past ``ScanOptions/spillThreshold`` (lowered here to
/// 1,000) the matches move to a temporary file that scans, rescans, saves, loads and sessions read
/// back in order. 100,000 int32 7s in a mapped region of the fixture.
@Suite("Spilled match sets")
struct SpilledMatchSetTests {
    static let count = 100_000

    /// The fixture with `count` int32 7s at `base`, a handle that may write, options that scan only
    /// that region and spill past 1,000 matches into `directory` (empty, removed afterwards).
    func withSevens<R>(_ body: (Fixture, ProcessHandle, UInt64, ScanOptions, String) throws -> R) throws -> R {
        let fixture = try Fixture()
        defer { fixture.stop() }
        let size = Self.count * 4
        let reply = try fixture.ok("map \(size)")
        let base = UInt64(try #require(reply["address"] as? Int))
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        defer { handle.close() }
        try handle.writeExactly([UInt8](repeating: 0, count: size).enumerated().map { $0.offset % 4 == 0 ? 7 : 0 }, to: base)
        let directory = NSTemporaryDirectory() + "spill-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = ScanOptions()
        options.regions.addressRange = base..<(base + UInt64(size))
        options.spillThreshold = 1000
        options.temporaryDirectory = directory
        let result = try body(fixture, handle, base, options, directory)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains("procmem-matches") } == [],
                "spill files leave no name behind")
        return result
    }

    func sevens() throws -> ScanQuery { .value(try ScanValue("7", as: .i32)) }

    /// Whether `set` holds exactly the addresses `expected`, in order, reading it through.
    func holds(_ set: MatchSet, _ expected: [UInt64]) -> Bool {
        guard set.count == expected.count else { return false }
        var same = true
        set.forEachMatch { index, match in
            same = match.address == expected[index] && match.width == 4
            return same
        }
        return same
    }

    @Test("A first scan keeps every match: no cap, spilled past the threshold, the same set as in memory, not partial")
    func firstScan() throws {
        try withSevens { _, handle, base, options, _ in
            let spilled = try ProcessMemoryScanning.Scanner(handle: handle, options: options).scan(try sevens())
            #expect(spilled.matches.count == Self.count && spilled.matchCount == Self.count)
            #expect(spilled.matches.isSpilled)
            #expect(!spilled.truncated && !spilled.isPartial && !spilled.matches.isPartial)
            #expect(holds(spilled.matches, (0..<Self.count).map { base + UInt64($0 * 4) }))
            #expect(spilled.matches.number(ofMatch: Self.count - 1) == .integer(7))
            var inMemoryOptions = options
            inMemoryOptions.spillThreshold = .max
            let inMemory = try ProcessMemoryScanning.Scanner(handle: handle, options: inMemoryOptions).scan(try sevens())
            #expect(!inMemory.matches.isSpilled)
            #expect(inMemory.matches == spilled.matches)
        }
    }

    @Test("Rescans of a spilled set read it back in order; the result spills again or fits in memory")
    func rescan() throws {
        try withSevens { _, handle, base, options, _ in
            let scanner = ProcessMemoryScanning.Scanner(handle: handle, options: options)
            let first = try scanner.scan(try sevens())
            let changed = [3, 1000, 1001, 65_535, 65_536, 99_999]
            for index in changed { try handle.writeExactly([8, 0, 0, 0], to: base + UInt64(index * 4)) }
            let still = try scanner.rescan(first.matches, where: .equal(try ScanValue("7", as: .i32)))
            #expect(still.matches.isSpilled && !still.isPartial)
            #expect(holds(still.matches, (0..<Self.count).filter { !changed.contains($0) }.map { base + UInt64($0 * 4) }))
            let moved = try scanner.rescan(first.matches, where: .changed)
            #expect(!moved.matches.isSpilled)
            #expect(holds(moved.matches, changed.map { base + UInt64($0 * 4) }))
            #expect(moved.matches.number(ofMatch: 0) == .integer(8))
            // The earlier set is still whole: copies share the file, each reads its own part.
            #expect(first.matches.count == Self.count && first.matches[Self.count - 1].address == base + UInt64((Self.count - 1) * 4))
        }
    }

    @Test("A spilled set saves and loads in a stream, equal to itself, and the loaded set rescans")
    func saveAndLoad() throws {
        try withSevens { _, handle, base, options, directory in
            let scanner = ProcessMemoryScanning.Scanner(handle: handle, options: options)
            let first = try scanner.scan(try sevens())
            let path = directory + "/sevens.matches"
            try MatchFileGenerations(path: path).save(first.matches)
            let loaded = try MatchSet(contentsOf: path, spill: options.spillPolicy)
            #expect(loaded.isSpilled)
            #expect(loaded == first.matches)
            let inMemory = try MatchSet(contentsOf: path)
            #expect(!inMemory.isSpilled && inMemory == first.matches)
            try handle.writeExactly([9, 0, 0, 0], to: base + 40)
            let narrowed = try scanner.rescan(loaded, where: .changed)
            #expect(holds(narrowed.matches, [base + 40]))
            // A corrupt byte deep in the matches fails by the checksum, read in a stream.
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            bytes[bytes.count - 100] ^= 0x01
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            #expect {
                try MatchSet(contentsOf: path, spill: options.spillPolicy)
            } throws: { error in
                (error as? ProcessMemoryError)?.message.contains("checksum") ?? false
            }
        }
    }

    @Test("Only an explicit limit stops a scan (partial); a cancelled scan is partial; a spill that cannot be written fails")
    func limitsAndFailures() throws {
        try withSevens { _, handle, _, options, directory in
            var limited = options
            limited.matchLimit = 5000
            let capped = try ProcessMemoryScanning.Scanner(handle: handle, options: limited).scan(try sevens())
            #expect(capped.matches.count == 5000 && capped.truncated && capped.isPartial && capped.matches.isPartial)

            var small = options
            small.chunkSize = 4096
            let source = CancellationSource()
            let cancelled = try ProcessMemoryScanning.Scanner(handle: handle, options: small)
                .scan(try sevens(), progress: { progress in if progress.matches >= 3000 { source.cancel() } },
                      cancellation: source.cancellation)
            #expect(cancelled.interrupted && cancelled.isPartial && cancelled.matches.isPartial)
            #expect(cancelled.matches.count >= 3000 && cancelled.matches.count < Self.count && cancelled.matches.isSpilled)

            var nowhere = options
            nowhere.temporaryDirectory = directory + "/missing"
            #expect(throws: ProcessMemoryError.self) {
                try ProcessMemoryScanning.Scanner(handle: handle, options: nowhere).scan(try sevens())
            }
        }
    }

    @Test("A session narrows, lists, sets, deletes and undoes on spilled sets")
    func session() throws {
        try withSevens { _, handle, base, options, _ in
            let session = try ScanSession(handle: handle, type: .i32, options: options,
                                          limits: SessionGenerations.Limits(depth: 8, inMemoryMatches: 500))
            defer { session.close() }
            _ = try session.enter(try ScanValue("7", as: .i32))
            #expect(session.matchCount == Self.count && session.matches?.isSpilled == true)
            try handle.writeExactly([8, 0, 0, 0], to: base + 4 * 5000)
            _ = try session.narrow(.equal(try ScanValue("7", as: .i32)))
            #expect(session.matchCount == Self.count - 1 && session.matches?.isSpilled == true)
            let listed = try session.current(4998..<5001)
            #expect(listed.map(\.match.address) == [base + 4 * 4998, base + 4 * 4999, base + 4 * 5001])
            #expect(listed.allSatisfy { $0.now == .integer(7) })
            let written = try session.set("11", matches: [0, Self.count - 2])
            #expect(written.allSatisfy { $0.error == nil })
            let last = try session.current((Self.count - 2)..<(Self.count - 1))
            #expect(last.first?.match.address == base + UInt64(4 * (Self.count - 1)) && last.first?.now == .integer(11))
            try session.delete([1, 2])
            #expect(session.matchCount == Self.count - 3)
            #expect(session.matches?[1].address == base + 12)
            #expect(try session.undo())
            #expect(session.matchCount == Self.count - 1 && session.matches?[1].address == base + 4)
            #expect(try session.undo())
            #expect(session.matchCount == Self.count)
            #expect(holds(try #require(session.matches), (0..<Self.count).map { base + UInt64($0 * 4) }))
            _ = try session.narrow(.changed)
            #expect(session.matches.map { holds($0, [base, base + 4 * 5000, base + UInt64(4 * (Self.count - 1))]) } == true)
            // Setting every match, counted as written (each write reads the map: a few matches here).
            var writtenAll: [Int] = []
            try session.set("12", matches: nil) { index, error in if error == nil { writtenAll.append(index) } }
            #expect(writtenAll == [0, 1, 2])
            #expect(try session.current(0..<3).allSatisfy { $0.now == .integer(12) })
        }
    }
}
