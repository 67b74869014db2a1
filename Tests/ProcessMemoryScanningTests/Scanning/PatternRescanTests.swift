import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryScanning

/// Rescans of string and byte-pattern match sets against the fixture: unchanged and changed bytes
/// (all of them, not only the first 8), the saved pattern still matching, and a new pattern at the
/// same addresses; through saved match files too.
@Suite("Pattern rescan")
struct PatternRescanTests {
    func hexString(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// A fresh fixture mapping with `text` written at each offset, and a scanner limited to it.
    func planted(_ fixture: Fixture, _ text: String, at offsets: [Int]) throws -> (base: UInt64, handle: ProcessHandle, scanner: ProcessMemoryScanning.Scanner) {
        let reply = try fixture.ok("map 8192")
        let base = UInt64(try #require(reply["address"] as? Int))
        for offset in offsets { try fixture.ok("write \(base + UInt64(offset)) \(hexString(Array(text.utf8)))") }
        let handle = try ProcessHandle(pid: fixture.pid)
        var options = ScanOptions()
        options.regions.addressRange = base..<(base + 8192)
        return (base, handle, ProcessMemoryScanning.Scanner(handle: handle, options: options))
    }

    func offsets(_ result: ScanResult, _ base: UInt64) -> [Int] { result.matches.matches.map { Int($0.address - base) } }

    @Test("strings: unchanged and changed look at every matched byte; the set survives a save")
    func stringChanges() throws {
        let fixture = try Fixture()
        let (base, handle, scanner) = try planted(fixture, "Hello Rescan World!", at: [100, 300, 5000])
        defer { handle.close() }
        let first = try scanner.scan(.pattern(BytePattern(string: "Hello Rescan World!")))
        #expect(offsets(first, base) == [100, 300, 5000])
        let path = NSTemporaryDirectory() + "bytes-\(UUID().uuidString).pmm"
        defer { unlink(path) }
        try first.matches.save(to: path)
        let loaded = try MatchSet(contentsOf: path)
        #expect(loaded == first.matches)
        #expect(loaded.pattern == BytePattern(string: "Hello Rescan World!"))
        #expect(offsets(try scanner.rescan(loaded, where: .unchanged), base) == [100, 300, 5000])
        try fixture.ok("write \(base + 300 + 18) 3f")  // the last byte: '!' → '?'
        #expect(offsets(try scanner.rescan(loaded, where: .changed), base) == [300])
        #expect(offsets(try scanner.rescan(loaded, where: .unchanged), base) == [100, 5000])
        #expect(offsets(try scanner.rescan(loaded, where: .matches(try #require(loaded.pattern))), base) == [100, 5000])
        // A new, longer string at the same addresses: the result holds it and its length.
        try fixture.ok("write \(base + 5000) \(hexString(Array("Hello Rescan World, again".utf8)))")
        let longer = try scanner.rescan(loaded, where: .matches(BytePattern(string: "Hello Rescan World, again")))
        #expect(offsets(longer, base) == [5000])
        #expect(longer.matches.content == .bytes(length: 25))
        #expect(longer.matches.pattern == BytePattern(string: "Hello Rescan World, again"))
        #expect(offsets(try scanner.rescan(longer.matches, where: .unchanged), base) == [5000])
    }

    @Test("ignoring case and wildcards: the saved pattern still matches bytes that changed")
    func stillMatches() throws {
        let fixture = try Fixture()
        let (base, handle, scanner) = try planted(fixture, "procmem Marker", at: [64, 4000])
        defer { handle.close() }
        let folded = try scanner.scan(.pattern(BytePattern(string: "PROCMEM marker", ignoreCase: true)))
        #expect(offsets(folded, base) == [64, 4000])
        try fixture.ok("write \(base + 64) \(hexString(Array("PROCMEM MARKER".utf8)))")
        try fixture.ok("write \(base + 4000) \(hexString(Array("procmem Market".utf8)))")
        let pattern = try #require(folded.matches.pattern)
        #expect(offsets(try scanner.rescan(folded.matches, where: .matches(pattern)), base) == [64])
        #expect(offsets(try scanner.rescan(folded.matches, where: .changed), base) == [64, 4000])

        // "pro?mem": only the lower-case copy at 4000 now.
        let wildcard = try scanner.scan(.pattern(try BytePattern(hex: "70 72 6f ?? 6d 65 6d")))
        #expect(offsets(wildcard, base) == [4000])
        try fixture.ok("write \(base + 4003) 58")  // the wildcard byte: 'c' → 'X'
        let saved = try #require(wildcard.matches.pattern)
        #expect(offsets(try scanner.rescan(wildcard.matches, where: .matches(saved)), base) == [4000])
        #expect(offsets(try scanner.rescan(wildcard.matches, where: .changed), base) == [4000])
        #expect(try scanner.rescan(wildcard.matches, where: .unchanged).matches.isEmpty)
        // The hex pattern is recorded as bytes and mask: it round-trips through a file.
        let path = NSTemporaryDirectory() + "bytes-\(UUID().uuidString).pmm"
        defer { unlink(path) }
        try wildcard.matches.save(to: path)
        #expect(try MatchSet(contentsOf: path).pattern == saved)
    }

    @Test("value tests on byte sets and pattern tests on value sets are refused")
    func refused() throws {
        let fixture = try Fixture()
        let (_, handle, scanner) = try planted(fixture, "refusal marker", at: [10])
        defer { handle.close() }
        let bytes = try scanner.scan(.pattern(BytePattern(string: "refusal marker")))
        #expect { try scanner.rescan(bytes.matches, where: .increased) } throws: { error in
            (error as? ProcessMemoryError)?.message.contains("no value to compare") ?? false
        }
        let values = try scanner.scan(.value(try ScanValue("0x33333333", as: .u32)))
        #expect { try scanner.rescan(values.matches, where: .matches(BytePattern(string: "x"))) } throws: { error in
            (error as? ProcessMemoryError)?.code == .invalidArguments
        }
    }
}
