import Foundation
import ProcessMemoryTestSupport
import ProcessMemoryTestTraits
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryScanning

@Suite("Pointer scan bases and ranking") struct PointerRankTests {
    @Test("The loader's data is left out of the bases unless asked for or named")
    func loaderLeftOut() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let map = try handle.memoryMap()
        let all = StaticRegion.all(in: map)
        try #require(all.contains { $0.isLoader }, "the fixture maps a dynamic loader with writable data")
        var options = PointerScanOptions()
        #expect(!StaticRegion.allowed(in: map, options: options).contains { $0.isLoader })
        options.includeLoader = true
        #expect(StaticRegion.allowed(in: map, options: options).count == all.count)
        options.includeLoader = false
        let loader = try #require(all.first { $0.isLoader }).moduleName
        options.baseModules = [loader + "!"]
        let named = StaticRegion.allowed(in: map, options: options)
        #expect(!named.isEmpty && named.allSatisfy { $0.isLoader })
        #expect(StaticRegion.isLoaderPath("/lib64/ld-linux-x86-64.so.2") && StaticRegion.isLoaderPath("/lib/ld-musl-x86_64.so.1"))
        #expect(!StaticRegion.isLoaderPath("/usr/lib/libld-extra.so") && !StaticRegion.isLoaderPath("/usr/bin/ldd"))
    }

    @Test("--module keeps only chains based in the named modules; an unmapped name is refused")
    func moduleFilter() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let layout = try PointerScanTests.buildLayout(fixture, handle)
        var options = PointerScanOptions()
        options.maxOffset = 0x100
        options.baseModules = ["procmem-fixture"]
        let result = try handle.scanPointers(to: layout.target, options: options)
        #expect(result.chains.contains(layout.two))
        #expect(result.chains.allSatisfy { if case .region("procmem-fixture", _) = $0.base { true } else { false } },
                "\(result.chains.map(\.description))")
        options.baseModules = ["no-such-module.so"]
        #expect(throws: ProcessMemoryError.self) { try handle.scanPointers(to: layout.target, options: options) }
    }

    @Test("A chain through heap blocks ranks before a shorter one that only reaches the target by heap adjacency")
    func heapBlocks() throws {
        // Like a game: a global points at World (32 bytes), World+0x18 points at Player, the target
        // is Player+0. Player's block follows World's, so global -> +0x30 reaches it in one hop too.
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let world = try fixture.mallocBlock(32)
        let player = try fixture.mallocBlock(24)
        let slot = try fixture.dataSegment(handle).end - 64
        try fixture.storePointer(world, at: slot)
        try fixture.storePointer(player, at: world + 0x18)
        var options = PointerScanOptions()
        options.maxOffset = player - world + 0x10
        options.baseModules = ["procmem-fixture"]
        let chains = try handle.scanPointers(to: player, options: options).chains
        let statics = StaticRegion.all(in: try handle.memoryMap())
        let moduleStart = try #require(statics.first { $0.region.contains(slot) }).moduleStart
        let base = PointerChain.Base.region("procmem-fixture", offset: Int64(slot - moduleStart))
        let stable = PointerChain(base: base, offsets: [0x18, 0])
        let adjacent = PointerChain(base: base, offsets: [Int64(player - world)])
        let stableAt = try #require(chains.firstIndex(of: stable), "\(chains.map(\.description))")
        let adjacentAt = try #require(chains.firstIndex(of: adjacent), "\(chains.map(\.description))")
        #expect(stableAt < adjacentAt)
        #expect(handle.hopsLeavingBlock([stable, adjacent], map: try handle.memoryMap()) == [0, 1])
    }

    @Test("Rank order: main executable, blocks kept, fewer hops, smaller offsets; ties keep their order")
    func rankOrder() {
        let exe = StaticRegion(region: MemoryRegion(start: 0x1000, end: 0x2000, permissions: [.read, .write], isShared: false, path: "/bin/game"),
                               modulePath: "/bin/game", moduleName: "game", moduleStart: 0)
        let rank = PointerChainRank(statics: [exe], executablePath: "/bin/game")
        let lib1 = PointerChain(base: .region("libc.so.6", offset: 8), offsets: [0])
        let exe3 = PointerChain(base: .region("game", offset: 8), offsets: [0, 0, 0])
        let exe2big = PointerChain(base: .region("game", offset: 8), offsets: [0x800, 0])
        let exe2small = PointerChain(base: .region("game", offset: 16), offsets: [0x18, 0])
        let exe2tie = PointerChain(base: .region("game", offset: 24), offsets: [0, 0x18])
        let sorted = rank.sorted([lib1, exe3, exe2big, exe2small, exe2tie], hopsLeavingBlock: [0, 0, 0, 0, 0])
        #expect(sorted == [exe2small, exe2tie, exe2big, exe3, lib1])
        #expect(rank.sorted([exe2small, exe3], hopsLeavingBlock: [1, 0]) == [exe3, exe2small])
    }

    @Test("A base inside a named data symbol ranks before an anonymous offset of the same module, not before the executable class")
    func namedBases() {
        let exe = StaticRegion(region: MemoryRegion(start: 0x1000, end: 0x2000, permissions: [.read, .write], isShared: false, path: "/bin/game"),
                               modulePath: "/bin/game", moduleName: "game", moduleStart: 0)
        let rank = PointerChainRank(statics: [exe], executablePath: "/bin/game")
        let anonymous = PointerChain(base: .region("game", offset: 0x40), offsets: [0x18, 0])
        let named = PointerChain(base: .region("game", offset: 0x48), offsets: [0x18, 0])
        let longerNamed = PointerChain(base: .region("game", offset: 0x48), offsets: [0x18, 0x8, 0])
        let library = PointerChain(base: .region("libc.so.6", offset: 8), offsets: [0])
        let chains = [anonymous, named, longerNamed, library]
        // Without names the tie keeps the search's order.
        #expect(rank.sorted(chains) == [anonymous, named, longerNamed, library])
        let names: [String?] = [nil, "game!g_world", "game!g_world", "libc.so.6!environ"]
        #expect(rank.sorted(chains, baseNames: names) == [named, longerNamed, anonymous, library])
        #expect(rank.order(chains, baseNames: names) == [1, 2, 0, 3])
        // A name reserved for the toolchain counts as anonymous.
        #expect(rank.sorted([anonymous, named], baseNames: [nil, "game!__dso_handle"]) == [anonymous, named])
        #expect(PointerChainRank.isProgramName("game!g_world+0x8") && !PointerChainRank.isProgramName("game!__dso_handle"))
    }
}

extension Fixture {
    /// A zeroed glibc heap block of `size` bytes in the fixture (`calloc(3)`), never freed.
    func mallocBlock(_ size: Int) throws -> UInt64 {
        let reply = try ok("malloc \(size)")
        let number = try #require(reply["address"] as? NSNumber, "malloc gave no address: \(reply)")
        return number.uint64Value
    }
}

@Suite("Heap-block rule only under glibc malloc") struct HeapAllocatorRankTests {
    /// A chain `global -> +0x18` whose pointer is interior to a 64-byte block, with the word below
    /// it set to 0x21: under glibc's header reading a 32-byte chunk, so the hop "leaves its block".
    func craftedChain(_ fixture: Fixture, _ handle: ProcessHandle) throws -> PointerChain {
        let block = try fixture.mallocBlock(64)
        let pointer = block + 0x20
        try fixture.ok("write \(block + 0x18) \(Self.hex(0x21))")
        let slot = try fixture.dataSegment(handle).end - 64
        try fixture.ok("write \(slot) \(Self.hex(pointer))")
        let statics = StaticRegion.all(in: try handle.memoryMap())
        let moduleStart = try #require(statics.first { $0.region.contains(slot) }).moduleStart
        return PointerChain(base: .region("procmem-fixture", offset: Int64(slot - moduleStart)), offsets: [0x18])
    }

    static func hex(_ value: UInt64) -> String {
        withUnsafeBytes(of: value.littleEndian) { $0.map { String(format: "%02x", $0) }.joined() }
    }

    @Test("glibc's malloc: detected, and the word below a block is read as its chunk header")
    func glibc() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let map = try handle.memoryMap()
        #expect(HeapAllocator(map: map) == .glibc)
        let chain = try craftedChain(fixture, handle)
        #expect(handle.hopsLeavingBlock([chain], map: try handle.memoryMap()) == [1])
    }

    @Test("jemalloc preloaded: detected, and no hop is judged by a glibc header it does not have", .requiresJemalloc)
    func jemalloc() throws {
        let library = try #require(Jemalloc.path)
        let fixture = try Fixture(wrapper: ["/usr/bin/env", "LD_PRELOAD=\(library)"])
        let handle = try ProcessHandle(pid: fixture.pid)
        let map = try handle.memoryMap()
        try #require(map.regions.contains { $0.path?.hasSuffix("libjemalloc.so.2") == true }, "jemalloc is mapped")
        #expect(HeapAllocator(map: map) == .jemalloc)
        let chain = try craftedChain(fixture, handle)
        #expect(handle.hopsLeavingBlock([chain], map: try handle.memoryMap()) == [0])
        var options = PointerScanOptions()
        options.maxOffset = 0x40
        options.maxDepth = 1
        options.baseModules = ["procmem-fixture"]
        let target = try handle.resolve(chain)
        let result = try handle.scanPointers(to: target, options: options)
        #expect(result.heapAllocator == .jemalloc && result.chains.contains(chain), "\(result.chains.map(\.description))")
    }

    @Test("Module names decide: a replacement allocator wins over glibc, musl alone is musl, no C library is unknown")
    func detection() {
        func map(_ paths: [String]) -> MemoryMap {
            MemoryMap(regions: paths.enumerated().map { index, path in
                MemoryRegion(start: UInt64(index + 1) << 20, end: (UInt64(index + 1) << 20) + 0x1000, permissions: [.read], isShared: false, path: path)
            })
        }
        #expect(HeapAllocator(map: map(["/usr/bin/game", "/usr/lib/x86_64-linux-gnu/libc.so.6"])) == .glibc)
        #expect(HeapAllocator(map: map(["/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"])) == .jemalloc)
        #expect(HeapAllocator(map: map(["/usr/lib/libmimalloc.so.2", "/usr/lib/x86_64-linux-gnu/libc.so.6"])) == .mimalloc)
        #expect(HeapAllocator(map: map(["/usr/lib/libtcmalloc_minimal.so.4", "/lib/libc.so.6"])) == .tcmalloc)
        #expect(HeapAllocator(map: map(["/bin/busybox", "/lib/ld-musl-x86_64.so.1"])) == .musl)
        #expect(HeapAllocator(map: map(["/usr/bin/static-game", "[heap]"])) == .unknown)
        #expect(!HeapAllocator.unknown.hasGlibcChunkHeaders && HeapAllocator.glibc.hasGlibcChunkHeaders)
    }
}
