import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing
import ProcessMemoryCore

/// The shared launcher reads the fixture's layout line into the Codable `FixtureLayout` completely
/// and faithfully: what every other test relies on.
@Suite("Fixture layout")
struct FixtureLayoutTests {
    @Test("the layout line decodes into FixtureLayout, with the fixture's known values, and round-trips")
    func layoutDecodesAndRoundTrips() throws {
        let fixture = try Fixture()
        let layout = fixture.layout
        #expect(layout.pid == fixture.pid)
        #expect(layout.pageSize == UInt64(sysconf(Int32(_SC_PAGESIZE))))
        #expect(layout.planted.value == 0x5EED_1234)
        #expect(layout.planted.type == "u32")
        #expect(layout.planted.addresses.count == 7)
        #expect(layout.stack.value == 0xFEED_FACE_CAFE_BEEF)
        for name in ["pattern", "values", "planted", "hole", "protNone", "readOnly", "truncatedFile", "memfd", "sharedAnon"] {
            #expect(layout.regions[name] != nil, "no \(name) region")
        }
        #expect(try layout.region("hole").holeOffset == layout.pageSize)
        #expect(try layout.region("truncatedFile").path != nil)
        #expect(try layout.region("memfd").fd != nil)
        #expect(throws: FixtureError.self) { try layout.region("no-such-region") }
        // What the layout says is what the fixture holds.
        let u32 = try layout.value("u32")
        #expect(try fixture.selfRead(u32, 4) == [0xEF, 0xBE, 0xAD, 0xDE])
        #expect(try fixture.selfRead(try layout.region("pattern").address, 16) == (0..<16).map(patternByte))
        let encoded = try JSONEncoder().encode(layout)
        #expect(try JSONDecoder().decode(FixtureLayout.self, from: encoded) == layout)
    }
}
