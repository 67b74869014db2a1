import Foundation
import ProcessMemoryTestSupport
import ProcessMemoryTestTraits
import Testing

@Suite("procmem read")
struct ReadTests {
    @Test("--as u32 prints 0xDEADBEEF in decimal")
    func readU32() throws {
        try withFixture { fixture in
            let result = try procmem("read", fixture.pidArgument, hex(try fixture.layout.value("u32")), "1", "--as", "u32")
            #expect(result.status == 0)
            #expect(result.lines == ["\(hex(try fixture.layout.value("u32"))): 3735928559"])
            let hexResult = try procmem("read", fixture.pidArgument, hex(try fixture.layout.value("u32")), "--as", "u32", "--hex")
            #expect(hexResult.text.hasSuffix(": 0xdeadbeef\n"))
        }
    }

    @Test("--as cstring, f64, i16 print the fixture's values")
    func readTypedValues() throws {
        try withFixture { fixture in
            let string = try procmem("read", fixture.pidArgument, hex(try fixture.layout.value("cstring")), "--as", "cstring")
            #expect(string.status == 0)
            #expect(string.text.contains("procmem fixture says hello"))

            let double = try procmem("read", fixture.pidArgument, hex(try fixture.layout.value("f64")), "--as", "f64")
            #expect(double.status == 0)
            let text = try #require(double.lines.first?.split(separator: " ").last)
            #expect(Double(text) == -25_000_000_000)

            let short = try procmem("read", fixture.pidArgument, String(try fixture.layout.value("i16")), "--as", "i16")
            #expect(short.text.hasSuffix(": -1234\n"))
        }
    }

    @Test("--raw writes exactly the pattern region's bytes")
    func readRaw() throws {
        try withFixture { fixture in
            let pattern = try fixture.layout.region("pattern")
            let result = try procmem("read", fixture.pidArgument, hex(pattern.address), String(pattern.size), "--raw")
            #expect(result.status == 0)
            #expect(result.stdout == patternBytes(count: Int(pattern.size)))
            #expect(result.stderr.isEmpty)
        }
    }

    @Test("the hexdump's first line for the pattern region")
    func hexdump() throws {
        try withFixture { fixture in
            let pattern = try fixture.layout.region("pattern")
            let result = try procmem("read", fixture.pidArgument, hex(pattern.address), "40")
            #expect(result.status == 0)
            let address = String(pattern.address, radix: 16)
            let padded = String(repeating: "0", count: 16 - address.count) + address
            #expect(result.lines.first == "\(padded): 0007 0e15 1c23 2a31 383f 464d 545b 6269  .....#*18?FMT[bi")
            #expect(result.lines.count == 3)
            // The short last line is padded so its text column lines up.
            #expect(result.lines.last?.count == result.lines.first?.count.advanced(by: -8))
        }
    }

    @Test("a read across the hole prints one page, reports the short read, exits 1")
    func shortRead() throws {
        try withFixture { fixture in
            let hole = try fixture.layout.region("hole")
            let page = fixture.pageSize
            let holeAddress = hex(hole.address + UInt64(page))
            let raw = try procmem("read", fixture.pidArgument, hex(hole.address), String(3 * page), "--raw")
            #expect(raw.status == 1)
            #expect(raw.stdout == [UInt8](repeating: 0x10, count: page))
            #expect(raw.stderr.contains("short read: \(page) of \(3 * page) bytes"))
            #expect(raw.stderr.contains("stopped at \(holeAddress)"))
            #expect(raw.stderr.contains("notFound"))

            let dump = try procmem("read", fixture.pidArgument, hex(hole.address), String(3 * page))
            #expect(dump.status == 1)
            #expect(dump.lines.count == page / 16)
            #expect(dump.stderr.contains(holeAddress))
        }
    }

    @Test("--exact fails with notFound (16) and prints nothing")
    func exactRead() throws {
        try withFixture { fixture in
            let hole = try fixture.layout.region("hole")
            let page = fixture.pageSize
            let result = try procmem("read", fixture.pidArgument, hex(hole.address), String(3 * page), "--exact")
            #expect(result.status == 16)
            #expect(result.stdout.isEmpty)
            #expect(result.stderrLines.first?.hasPrefix("procmem: notFound: ") == true)
            #expect(result.stderr.contains(hex(hole.address + UInt64(page))))
        }
    }

    @Test("--json describes a short read")
    func jsonShortRead() throws {
        try withFixture { fixture in
            let hole = try fixture.layout.region("hole")
            let page = fixture.pageSize
            let result = try procmem("read", fixture.pidArgument, hex(hole.address), String(3 * page), "--json")
            #expect(result.status == 1)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any])
            #expect(object["address"] as? String == hex(hole.address))
            #expect((object["requested"] as? NSNumber)?.intValue == 3 * page)
            #expect((object["read"] as? NSNumber)?.intValue == page)
            #expect((object["complete"] as? NSNumber)?.boolValue == false)
            #expect((object["hex"] as? String)?.count == 2 * page)
            let stop = try #require(object["stop"] as? [String: Any])
            #expect(stop["code"] as? String == "notFound")
            #expect(stop["address"] as? String == hex(hole.address + UInt64(page)))
        }
    }

    @Test("[anon:procmem-pattern]+0x10 resolves to the named region", .requiresAnonymousVMANames)
    func namedRegion() throws {
        try withFixture { fixture in
            let maps = try procmem("maps", fixture.pidArgument)
            #expect(maps.text.contains("[anon:procmem-pattern]"), "\(maps.text)")
            let result = try procmem("read", fixture.pidArgument, "[anon:procmem-pattern]+0x10", "16", "--raw")
            #expect(result.status == 0)
            #expect(result.stdout == Array(patternBytes(count: 32)[16..<32]))
        }
    }

    @Test("a file name with an offset resolves to the start of its first mapping")
    func fileRegion() throws {
        try withFixture { fixture in
            let result = try procmem("read", fixture.pidArgument, "procmem-fixture+0x1", "3", "--raw")
            #expect(result.status == 0)
            #expect(result.stdout == Array("ELF".utf8))
        }
    }
}
