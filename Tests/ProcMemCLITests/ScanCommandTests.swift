import Foundation
import ProcessMemoryTestSupport
import Testing

@Suite("procmem scan and rescan")
struct ScanCommandTests {
    func temporaryPath(_ suffix: String) -> String {
        NSTemporaryDirectory() + "procmem-scan-\(UUID().uuidString).\(suffix)"
    }

    func addresses(_ result: RunResult) throws -> [UInt64] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any])
        let matches = try #require(object["matches"] as? [[String: Any]])
        return matches.compactMap { ($0["address"] as? String).flatMap { UInt64($0.dropFirst(2), radix: 16) } }
    }

    @Test("scan finds the 7 planted values; rescan --changed and --eq converge on the one that changed")
    func plantedAndNarrowing() throws {
        try withFixture { fixture in
            let planted = fixture.layout.planted.addresses
            let file = temporaryPath("pmm")
            defer { unlink(file) }
            let scan = try procmem("scan", fixture.pidArgument, "0x5EED1234", "--as", "u32", "--save", file, "--json")
            #expect(scan.status == 0, "\(scan.stderr)")
            #expect(Set(try addresses(scan)) == Set(planted))
            let text = try procmem("scan", fixture.pidArgument, "1592594996", "--as", "u32", "--all")
            #expect(text.status == 0)
            #expect(text.lines.filter { $0.hasPrefix("0x") }.count == 7)
            #expect(text.lines.last?.hasPrefix("7 matches for u32 1592594996") == true)

            let unchanged = try procmem("rescan", file, "--unchanged", "--json")
            #expect(unchanged.status == 0, "\(unchanged.stderr)")
            #expect(try addresses(unchanged).count == 7)
            _ = try fixture.ok("write \(planted[2]) 01000000")
            let changed = try procmem("rescan", file, "--changed", "--no-save", "--json")
            #expect(try addresses(changed) == [planted[2]])
            let equal = try procmem("rescan", file, "--eq", "1")
            #expect(equal.status == 0)
            #expect(equal.lines.first?.hasPrefix(hex(planted[2]) + ": 1 ") == true)
            // The file now holds the one match.
            let again = try procmem("rescan", file, "--unchanged", "--json")
            #expect(try addresses(again) == [planted[2]])
        }
    }

    @Test("strings, patterns and floats from the command line")
    func queries() throws {
        try withFixture { fixture in
            let cstring = try fixture.layout.value("cstring")
            let string = try procmem("scan", fixture.pidArgument, "--string", "FIXTURE says HELLO", "--ignore-case", "--json")
            #expect(string.status == 0)
            #expect(try addresses(string).contains(cstring + 8))
            // Beyond ASCII: Cyrillic and Greek in another case.
            let reply = try fixture.ok("map 4096")
            let base = try #require(reply["address"] as? Int)
            let text = Array("Привет, Σίσυφε".utf8).map { String(format: "%02x", $0) }.joined()
            _ = try fixture.ok("write \(base + 8) \(text)")
            let unicode = try procmem("scan", fixture.pidArgument, "--string", "ПРИВЕТ, σΊΣΥΦΕ", "--ignore-case", "--json")
            #expect(unicode.status == 0, "\(unicode.stderr)")
            #expect(try addresses(unicode) == [UInt64(base + 8)])
            let pattern = try procmem("scan", fixture.pidArgument, "--pattern", "34 1? ?d 5e", "--max-matches", "2")
            #expect(pattern.status == 0)
            #expect(pattern.lines.filter { $0.hasPrefix("0x") }.count == 2)
            #expect(pattern.text.contains("5 more matches not shown"))
            let float = try procmem("scan", fixture.pidArgument, "--as", "f64", "--", "-2.5e10")
            #expect(float.lines.first?.hasPrefix(hex(try fixture.layout.value("f64")) + ": -25000000000.0") == true)
            // A negative value needs no `--` where it cannot be an option's value.
            let bare = try procmem("scan", fixture.pidArgument, "-2.5e10", "--as", "f64")
            #expect(bare.status == 0, "\(bare.stderr)")
            #expect(bare.lines.first == float.lines.first)
        }
    }

    @Test("snapshot then rescan finds the changed value")
    func snapshot() throws {
        try withFixture { fixture in
            let reply = try fixture.ok("map 65536")
            let base = UInt64(try #require(reply["address"] as? Int))
            let file = temporaryPath("pms")
            defer { unlink(file) }
            let range = "\(hex(base))-\(hex(base + 65536))"
            let snap = try procmem("scan", fixture.pidArgument, "--snapshot", "--as", "u32", "--range", range, "--save", file)
            #expect(snap.status == 0, "\(snap.stderr)")
            _ = try fixture.ok("write \(base + 4100) 44332211")
            let changed = try procmem("rescan", file, "--changed")
            #expect(changed.status == 0, "\(changed.stderr)")
            #expect(changed.lines.first?.hasPrefix(hex(base + 4100) + ": 287454020") == true)
            let narrowed = try procmem("rescan", file, "--eq", "0x11223344")
            #expect(narrowed.lines.first?.hasPrefix(hex(base + 4100)) == true)
        }
    }

    func widths(_ result: RunResult) throws -> [[Int]] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any])
        let matches = try #require(object["matches"] as? [[String: Any]])
        return matches.compactMap { match in
            guard let address = (match["address"] as? String).flatMap({ Int($0.dropFirst(2), radix: 16) }),
                  let width = match["width"] as? Int else { return nil }
            return [address, width]
        }
    }

    @Test("snapshot as any-int, then compared at every offset and as another type")
    func snapshotAnyIntUnaligned() throws {
        try withFixture { fixture in
            let reply = try fixture.ok("map 65536")
            let base = try #require(reply["address"] as? Int)
            let file = temporaryPath("pms")
            let narrowed = temporaryPath("pmm")
            defer { unlink(file); unlink(narrowed) }
            let range = "\(hex(UInt64(base)))-\(hex(UInt64(base + 65536)))"
            let snap = try procmem("scan", fixture.pidArgument, "--snapshot", "--as", "any-int", "--range", range, "--save", file, "--json")
            #expect(snap.status == 0, "\(snap.stderr)")
            _ = try fixture.ok("write \(base + 4100) 0100")
            let equal = try procmem("rescan", file, "--eq", "1", "--save", narrowed, "--json")
            #expect(equal.status == 0, "\(equal.stderr)")
            #expect(try widths(equal) == [[base + 4100, 1], [base + 4100, 2]])
            // The narrowed match file keeps both widths at the one address.
            let again = try procmem("rescan", narrowed, "--unchanged", "--no-save", "--json")
            #expect(try widths(again) == [[base + 4100, 1], [base + 4100, 2]])
            // The same snapshot compared as u32 at every offset: the value across a page boundary.
            _ = try fixture.ok("write \(base + 8190) 78563412")
            let unaligned = try procmem("rescan", file, "--as", "u32", "--unaligned", "--eq", "0x12345678", "--no-save", "--json")
            #expect(unaligned.status == 0, "\(unaligned.stderr)")
            #expect(try widths(unaligned) == [[base + 8190, 4]])
            let onMatchFile = try procmem("rescan", narrowed, "--as", "u32", "--changed")
            #expect(onMatchFile.status == 10)
            #expect(onMatchFile.stderr.contains("apply to snapshot files"))
        }
    }

    @Test("rescans of a string match set: changed, still matching, a new string")
    func stringRescan() throws {
        try withFixture { fixture in
            let reply = try fixture.ok("map 8192")
            let base = try #require(reply["address"] as? Int)
            let text = Array("Scan Me Again Please".utf8).map { String(format: "%02x", $0) }.joined()
            _ = try fixture.ok("write \(base + 40) \(text)")
            _ = try fixture.ok("write \(base + 4000) \(text)")
            let file = temporaryPath("pmm")
            defer { unlink(file) }
            let range = "\(hex(UInt64(base)))-\(hex(UInt64(base + 8192)))"
            let scan = try procmem("scan", fixture.pidArgument, "--string", "scan me AGAIN please", "--ignore-case", "--range", range,
                                   "--save", file, "--json")
            #expect(scan.status == 0, "\(scan.stderr)")
            #expect(try addresses(scan) == [UInt64(base + 40), UInt64(base + 4000)])
            _ = try fixture.ok("write \(base + 4000 + 19) 45")  // 'e' → 'E': same letters, other bytes
            let changed = try procmem("rescan", file, "--changed", "--no-save", "--json")
            #expect(changed.status == 0, "\(changed.stderr)")
            #expect(try addresses(changed) == [UInt64(base + 4000)])
            let still = try procmem("rescan", file, "--still-matches", "--no-save", "--json")
            #expect(try addresses(still) == [UInt64(base + 40), UInt64(base + 4000)])
            _ = try fixture.ok("write \(base + 40) 5a")  // 'S' → 'Z'
            let renamed = try procmem("rescan", file, "--string", "Zcan Me", "--json")
            #expect(renamed.status == 0, "\(renamed.stderr)")
            #expect(try addresses(renamed) == [UInt64(base + 40)])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(renamed.stdout)) as? [String: Any])
            #expect(object["content"] as? String == "bytes[7]")
            let pattern = try procmem("rescan", file, "--pattern", "5a 63 ?? 6e", "--no-save", "--json")
            #expect(try addresses(pattern) == [UInt64(base + 40)])
            let valueTest = try procmem("rescan", file, "--increased")
            #expect(valueTest.status == 64)
            #expect(valueTest.stderr.contains("no value to compare"))
        }
    }

    @Test("bad input gives clear errors and distinct exit codes")
    func badInput() throws {
        try withFixture { fixture in
            let missingType = try procmem("scan", fixture.pidArgument, "42")
            #expect(missingType.status == 64)
            #expect(missingType.stderr.contains("--as"))
            let tooBig = try procmem("scan", fixture.pidArgument, "256", "--as", "u8")
            #expect(tooBig.status == 64)
            #expect(tooBig.stderr.contains("does not fit in u8"))
            let badPattern = try procmem("scan", fixture.pidArgument, "--pattern", "48 zz")
            #expect(badPattern.status == 64)
            #expect(badPattern.stderr.contains("not a hex digit"))
            let badKind = try procmem("scan", fixture.pidArgument, "1", "--as", "u32", "--kind", "heap,nope")
            #expect(badKind.status == 64)
            let garbage = temporaryPath("pmm")
            defer { unlink(garbage) }
            try Data("not a match file at all".utf8).write(to: URL(fileURLWithPath: garbage))
            let corrupt = try procmem("rescan", garbage, "--changed")
            #expect(corrupt.status == 10)
            #expect(corrupt.stderr.contains("not a procmem match file"))
            let noTest = try procmem("rescan", garbage)
            #expect(noTest.status == 64)
        }
    }
}
