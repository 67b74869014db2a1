import Foundation
import Testing
@testable import ProcessMemory

@Suite("Pointer scan") struct PointerScanTests {
    @Test("The fixture executable's data segment is a static region named by its file")
    func staticRegions() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let data = try fixture.dataSegment(handle)
        let statics = StaticRegion.all(in: try handle.memoryMap())
        let found = try #require(statics.first { $0.region == data })
        #expect(found.moduleName == "procmem-fixture")
        #expect(found.moduleStart <= data.start)
        #expect(!statics.contains { $0.region.kind == .heap || $0.region.kind == .stack })
    }

    @Test("A scan finds the chain rooted in the fixture's data segment within depth 2")
    func findsChain() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let target = try fixture.layout.value("u32")
        let data = try fixture.dataSegment(handle)
        let slot = data.end - 64
        let a = try fixture.mapForPointers()
        try fixture.storePointer(a, at: slot)
        try fixture.storePointer(target - 0x8, at: a + 0x30)

        var options = PointerScanOptions()
        options.maxDepth = 2
        options.maxOffset = 0x100
        options.maxResults = 1000
        var calls = 0
        let result = try handle.scanPointers(to: target, options: options) { done, total in
            calls += 1
            #expect(done <= total)
            return true
        }
        #expect(calls > 0)
        #expect(result.bytesIndexed > 0)
        let moduleStart = try #require(StaticRegion.all(in: try handle.memoryMap()).first { $0.region == data }).moduleStart
        let expected = PointerChain(base: .region("procmem-fixture", offset: Int64(slot - moduleStart)), offsets: [0x30, 0x8])
        #expect(result.chains.contains(expected), "chains: \(result.chains.map(\.description))")
        #expect(result.chains.allSatisfy { $0.offsets.count <= 2 && $0.offsets.allSatisfy { (0...0x100).contains($0) } })
        #expect(try handle.resolve(expected) == target)

        // Depth 1 cannot reach it: the only static pointer points at the intermediate map.
        options.maxDepth = 1
        #expect(!(try handle.scanPointers(to: target, options: options).chains.contains(expected)))
    }

    @Test("Results are capped and the cap marks the scan incomplete; a cancelled scan says so")
    func capsAndCancel() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let data = try fixture.dataSegment(handle)
        let target = try fixture.layout.value("u8")
        for index in 0..<4 { try fixture.storePointer(target, at: data.end - 64 + UInt64(index * 8)) }
        var options = PointerScanOptions()
        options.maxDepth = 1
        options.maxResults = 2
        let capped = try handle.scanPointers(to: target, options: options)
        #expect(capped.chains.count == 2)
        #expect(!capped.isComplete)
        let cancelled = try handle.scanPointers(to: target) { _, _ in false }
        #expect(!cancelled.isComplete)
        #expect(cancelled.incompleteReason == "cancelled")
        options.maxDepth = 0
        #expect(throws: ProcessMemoryError.self) { try handle.scanPointers(to: target, options: options) }
    }
}
