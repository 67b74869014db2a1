import Foundation
import ProcessMemoryTestSupport
import Testing

@Suite("procmem maps and info")
struct MapsInfoTests {
    @Test("maps --json lists the fixture's regions")
    func mapsJSON() throws {
        try withFixture { fixture in
            let result = try procmem("maps", fixture.pidArgument, "--json")
            #expect(result.status == 0)
            let regions = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [[String: Any]])
            let pattern = try fixture.layout.region("pattern")
            let found = regions.first { ($0["startValue"] as? NSNumber)?.uint64Value == pattern.address }
            let region = try #require(found, "no region starts at the pattern's address")
            #expect(region["start"] as? String == hex(pattern.address))
            #expect((region["size"] as? NSNumber)?.uint64Value == pattern.size)
            #expect(region["perms"] as? String == "rw-")
            #expect((region["shared"] as? NSNumber)?.boolValue == false)
            let hole = try fixture.layout.region("hole")
            #expect(regions.contains { ($0["startValue"] as? NSNumber)?.uint64Value == hole.address })
            let executable = URL(fileURLWithPath: fixture.executable).resolvingSymlinksInPath().path
            #expect(regions.contains { $0["path"] as? String == executable && $0["kind"] as? String == "file" })
            #expect(regions.contains { $0["kind"] as? String == "stack" })
        }
    }

    @Test("maps prints a table with a total; --details adds smaps columns")
    func mapsTable() throws {
        try withFixture { fixture in
            let plain = try procmem("maps", fixture.pidArgument)
            #expect(plain.status == 0)
            #expect(plain.lines.first?.hasPrefix("Address") == true)
            #expect(plain.lines.last?.hasPrefix("total") == true)
            #expect(plain.text.contains("[stack]"))
            let details = try procmem("maps", fixture.pidArgument, "--details", "--json")
            #expect(details.status == 0)
            let regions = try #require(try JSONSerialization.jsonObject(with: Data(details.stdout)) as? [[String: Any]])
            #expect(regions.allSatisfy { $0["rss"] != nil && $0["dirty"] != nil && $0["vmFlags"] is [Any] })
            // The fixture wrote its pattern region, so its pages are dirty.
            let pattern = try fixture.layout.region("pattern")
            let patternRow = regions.first { ($0["startValue"] as? NSNumber)?.uint64Value == pattern.address }
            #expect(((patternRow?["dirty"] as? NSNumber)?.uint64Value ?? 0) > 0)
            let table = try procmem("maps", fixture.pidArgument, "--details")
            #expect(table.lines.first?.contains(" RSS Dirty Swap ") == true)
        }
    }

    @Test("info mentions the fixture's executable")
    func info() throws {
        try withFixture { fixture in
            let executable = URL(fileURLWithPath: fixture.executable).resolvingSymlinksInPath().path
            let result = try procmem("info", fixture.pidArgument)
            #expect(result.status == 0)
            #expect(result.text.contains(executable))
            #expect(result.text.contains("alive"))
            let json = try procmem("info", fixture.pidArgument, "--json")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout)) as? [String: Any])
            #expect(object["executable"] as? String == executable)
            #expect((object["pid"] as? NSNumber)?.int32Value == fixture.layout.pid)
            #expect(((object["regions"] as? NSNumber)?.intValue ?? 0) > 10)
            #expect(((object["threads"] as? NSNumber)?.intValue ?? 0) >= 1)
            #expect(((object["residentBytes"] as? NSNumber)?.uint64Value ?? 0) > 0)
            #expect(object["name"] as? String == String(fixture.executable.lastPathComponent.prefix(15)))
            let arguments = try #require(object["commandLine"] as? [String])
            #expect(arguments.first.map { URL(fileURLWithPath: $0).lastPathComponent } == fixture.executable.lastPathComponent)
            #expect(result.lines.contains { $0.hasPrefix("threads:") && !$0.hasSuffix("?") })
            #expect(result.lines.contains { $0.hasPrefix("resident:") && $0.hasSuffix("KiB)") })
        }
    }
}
