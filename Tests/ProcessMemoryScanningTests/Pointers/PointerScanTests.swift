import Foundation
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryScanning

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
        let result = try handle.scanPointers(to: target, options: options) { progress in
            calls += 1
            #expect(progress.bytesDone <= progress.bytesTotal)
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
        let cancelled = try handle.scanPointers(to: target, cancellation: Cancellation { true })
        #expect(!cancelled.isComplete)
        #expect(cancelled.incompleteReason == "cancelled")
        options.maxDepth = 0
        #expect(throws: ProcessMemoryError.self) { try handle.scanPointers(to: target, options: options) }
    }

    /// Three static roots in the fixture's data segment: `S1 -> A -> target` (2 hops), and
    /// `S2 -> B -> C -> target` and `S3 -> B -> C -> target` (3 hops through the same nodes).
    struct Layout {
        var target: UInt64
        var two: PointerChain
        var threeFromS2: PointerChain
        var threeFromS3: PointerChain
    }

    static func buildLayout(_ fixture: Fixture, _ handle: ProcessHandle) throws -> Layout {
        let target = try fixture.layout.value("u32")
        let data = try fixture.dataSegment(handle)
        let moduleStart = try #require(StaticRegion.all(in: try handle.memoryMap()).first { $0.region == data }).moduleStart
        let (s1, s2, s3) = (data.end - 64, data.end - 56, data.end - 48)
        let a = try fixture.mapForPointers()
        let b = try fixture.mapForPointers()
        let c = try fixture.mapForPointers()
        try fixture.storePointer(a, at: s1)
        try fixture.storePointer(target - 0x8, at: a + 0x30)
        try fixture.storePointer(b, at: s2)
        try fixture.storePointer(b, at: s3)
        try fixture.storePointer(c, at: b + 0x10)
        try fixture.storePointer(target - 0x4, at: c + 0x20)
        func base(_ slot: UInt64) -> PointerChain.Base { .region("procmem-fixture", offset: Int64(slot - moduleStart)) }
        return Layout(target: target,
                      two: PointerChain(base: base(s1), offsets: [0x30, 0x8]),
                      threeFromS2: PointerChain(base: base(s2), offsets: [0x10, 0x20, 0x4]),
                      threeFromS3: PointerChain(base: base(s3), offsets: [0x10, 0x20, 0x4]))
    }

    /// Whether `first` may come before `second` in rank order: main executable before libraries;
    /// then (blocks left alike, as in these layouts of mmap'd pages) shorter first, then the smaller
    /// sum of offsets, then offsets from the last back.
    static func ordered(_ first: PointerChain, _ second: PointerChain, _ rank: PointerChainRank) -> Bool {
        let (a, b) = (rank.baseClass(first), rank.baseClass(second))
        if a != b { return a < b }
        if first.offsets.count != second.offsets.count { return first.offsets.count < second.offsets.count }
        let spread = { (chain: PointerChain) in chain.offsets.reduce(UInt64(0)) { $0 + $1.magnitude } }
        if spread(first) != spread(second) { return spread(first) < spread(second) }
        return first.offsets.reversed().lexicographicallyPrecedes(second.offsets.reversed()) || first.offsets == second.offsets
    }

    @Test("A scan lists every chain to the target, also chains that share nodes, in order and deterministically")
    func findsAllChains() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let layout = try Self.buildLayout(fixture, handle)
        var options = PointerScanOptions()
        options.maxOffset = 0x100
        #expect(options.maxDepth == 3 && options.maxResults == 1000)
        let result = try handle.scanPointers(to: layout.target, options: options)
        let chains = result.chains
        let descriptions = chains.map(\.description)
        for expected in [layout.two, layout.threeFromS2, layout.threeFromS3] {
            #expect(chains.contains(expected), "\(expected) missing from \(descriptions)")
            #expect(try handle.resolve(expected) == layout.target)
        }
        let positions = [layout.two, layout.threeFromS2, layout.threeFromS3].compactMap { chains.firstIndex(of: $0) }
        #expect(positions == positions.sorted(), "shorter first; equal offsets by base address: \(descriptions)")
        let rank = PointerChainRank(statics: StaticRegion.all(in: try handle.memoryMap()), executablePath: handle.executablePath())
        let leaving = handle.hopsLeavingBlock(chains, map: try handle.memoryMap())
        for (index, (first, second)) in zip(chains, chains.dropFirst()).enumerated() where leaving[index] == leaving[index + 1] {
            #expect(Self.ordered(first, second, rank), "\(first) before \(second)")
        }
        #expect(result.isComplete && !result.isTruncated)
        #expect(chains.allSatisfy { $0.offsets.count <= 3 && $0.offsets.allSatisfy { (0...0x100).contains($0) } })
        #expect(Set(descriptions).count == chains.count, "no chain twice")
        // Every chain found leads to the target, and the same state gives the same list.
        #expect(try handle.recheck(chains, expecting: .address(layout.target)).kept == chains)
        #expect(try handle.scanPointers(to: layout.target, options: options).chains == chains)
    }

    @Test("maxResults truncates the ordered list to its first chains and says so")
    func truncation() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let layout = try Self.buildLayout(fixture, handle)
        var options = PointerScanOptions()
        options.maxOffset = 0x100
        let full = try handle.scanPointers(to: layout.target, options: options).chains
        try #require(full.count >= 3)
        options.maxResults = 2
        let capped = try handle.scanPointers(to: layout.target, options: options)
        #expect(capped.chains == Array(full.prefix(2)))
        #expect(capped.isTruncated)
        #expect(!capped.isComplete)
        #expect(capped.incompleteReason == "the scan reached 2 results")
        // A node cap ends the search without breaking the order of what was found.
        options.maxResults = 1000
        options.maxNodes = 1
        let starved = try handle.scanPointers(to: layout.target, options: options)
        #expect(!starved.isComplete && !starved.isTruncated)
        #expect(starved.chains == Array(full.prefix(starved.chains.count)))
    }

    @Test("Rechecking a saved list keeps the chains that still lead to the target or its value")
    func recheckSavedList() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let layout = try Self.buildLayout(fixture, handle)
        var options = PointerScanOptions()
        options.maxOffset = 0x100
        let result = try handle.scanPointers(to: layout.target, options: options)
        let saved = PointerChainList(target: layout.target, chains: result.chains).text
        let list = try PointerChainList(parsing: saved)
        #expect(list.chains == result.chains)
        #expect(list.target == layout.target)

        // Break the two-hop chain and move the three-hop chains' C to another copy of the target.
        let data = try fixture.dataSegment(handle)
        try fixture.storePointer(0, at: data.end - 64)
        let elsewhere = try fixture.mapForPointers()
        try fixture.storePointer(0xDEAD_BEEF, at: elsewhere + 0x104)  // low 4 bytes of 0xDEADBEEF at +0x104
        let cAddress = try handle.resolve(PointerChain(base: layout.threeFromS2.base, offsets: [0x10, 0]))
        try fixture.storePointer(elsewhere + 0x100, at: cAddress + 0x20)

        let byAddress = try handle.recheck(list.chains, expecting: .address(layout.target))
        #expect(!byAddress.kept.contains(layout.two))
        #expect(!byAddress.kept.contains(layout.threeFromS2))
        #expect(byAddress.broken >= 1, "the two-hop chain now reads address 0")
        #expect(byAddress.addresses.count == list.chains.count)

        let byValue = try handle.recheck(list.chains, expecting: .bytes([0xEF, 0xBE, 0xAD, 0xDE]))
        #expect(byValue.kept.contains(layout.threeFromS2))
        #expect(byValue.kept.contains(layout.threeFromS3))
        #expect(!byValue.kept.contains(layout.two))
        #expect(try handle.resolve(layout.threeFromS3) == elsewhere + 0x104)
    }
}
