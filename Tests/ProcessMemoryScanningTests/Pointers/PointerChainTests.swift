import Foundation
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryScanning

@Suite("Pointer chains") struct PointerChainTests {
    @Test("Chains parse and print back")
    func parsing() throws {
        let chain = try PointerChain(parsing: "libfoo.so+0x1234 -> +0x10 -> -8 ->16")
        #expect(chain.base == .region("libfoo.so", offset: 0x1234))
        #expect(chain.offsets == [0x10, -8, 16])
        #expect(chain.description == "libfoo.so+0x1234 -> +0x10 -> -0x8 -> +0x10")
        #expect(try PointerChain(parsing: "0x1000 -> +0").base == .address(0x1000))
        #expect(try PointerChain(parsing: "[heap]+0x20").base == .region("[heap]", offset: 0x20))
        #expect(try PointerChain(parsing: "0x1000+0x10 -> +0").base == .address(0x1010))
        #expect(try PointerChain(parsing: String(describing: chain)) == chain)
        for bad in ["", "-> +8", "libfoo.so -> +zz", "0x10 -> ", "libfoo.so -> +0x8000000000000000"] {
            #expect(throws: ProcessMemoryError.self, "'\(bad)' should not parse") { try PointerChain(parsing: bad) }
        }
    }

    @Test("2- and 3-hop chains built in the fixture resolve to the target")
    func resolvesBuiltChains() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let target = try fixture.layout.value("u32")
        let a = try fixture.mapForPointers()
        let b = try fixture.mapForPointers()
        try fixture.storePointer(b, at: a + 0x10)
        try fixture.storePointer(target - 4, at: b + 0x8)

        let twoHops = PointerChain(base: .address(a), offsets: [0x10, 0x8])
        #expect(try handle.resolve(PointerChain(base: .address(a + 0x10), offsets: [0x8])) == b + 0x8)
        let threeHops = PointerChain(base: .address(a + 0x10), offsets: [0x8, 4])
        #expect(try handle.resolve(threeHops) == target)
        #expect(try handle.read(UInt32.self, from: handle.resolve(threeHops)) == 0xDEAD_BEEF)
        let trace = try handle.trace(threeHops)
        #expect(trace.hops.map(\.address) == [a + 0x10, b + 0x8])
        #expect(trace.hops.map(\.pointer) == [b, target - 4])
        #expect(trace.failure == nil)
        // A chain whose first hop reads 0x3333333333333333 (the map's fill) fails at hop 2.
        #expect(throws: ProcessMemoryError.self) { try handle.resolve(twoHops) }
    }

    @Test("A hop into the fixture's hole fails with an error naming the hop and its address")
    func brokenHop() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let hole = try fixture.layout.region("hole")
        let missing = hole.address + (try #require(hole.holeOffset)) + 0x40
        let a = try fixture.mapForPointers()
        let b = try fixture.mapForPointers()
        try fixture.storePointer(b, at: a + 0x18)
        try fixture.storePointer(missing - 0x20, at: b)

        let chain = PointerChain(base: .address(a + 0x18), offsets: [0, 0x20, 0])
        let trace = try handle.trace(chain)
        let failure = try #require(trace.failure)
        #expect(failure.hop == 3)
        #expect(failure.address == missing)
        #expect(failure.bytes.isEmpty)
        #expect(failure.error.code == .notFound)
        #expect(trace.hops.count == 2)
        #expect(trace.address == nil)

        let error = try #require(throws: ProcessMemoryError.self) { try handle.resolve(chain) }
        #expect(error.code == .notFound)
        #expect(error.address == missing)
        #expect(error.pid == fixture.pid)
        #expect(error.message.contains("hop 3 of 3"))
        #expect(error.message.contains("0x" + String(missing, radix: 16)))
        #expect(error.message.contains("0 of 8 bytes"))
    }

    @Test("A chain based on the fixture executable's data segment resolves by module name")
    func moduleBase() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let target = try fixture.layout.value("u64")
        let data = try fixture.dataSegment(handle)
        let slot = data.end - 64
        let a = try fixture.mapForPointers()
        try fixture.storePointer(a, at: slot)
        try fixture.storePointer(target, at: a + 0x10)
        let map = try handle.memoryMap()
        let name = URL(fileURLWithPath: try #require(data.path)).lastPathComponent
        let moduleStart = try #require(map.firstRegion(named: name)).start
        let chain = PointerChain(base: .region(name, offset: Int64(slot - moduleStart)), offsets: [0x10, 0])
        #expect(try handle.resolve(chain) == target)
        #expect(try handle.read(UInt64.self, from: handle.resolve(chain)) == 0x0123_4567_89AB_CDEF)
        let unknown = PointerChain(base: .region("no-such-module.so", offset: 0), offsets: [0])
        #expect(throws: ProcessMemoryError.self) { try handle.resolve(unknown) }
    }
}
