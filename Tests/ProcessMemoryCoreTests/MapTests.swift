import Foundation
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore

@Suite("Maps parser") struct MapsParserTests {
    @Test func parsesAFileBackedLine() throws {
        let line = "7f3a1c000000-7f3a1c021000 r-xp 00001000 fd:01 1234567                    /usr/lib/x86_64-linux-gnu/libc.so.6"
        let region = try #require(MapsParser.parseLine(Array(line.utf8)))
        #expect(region.start == 0x7f3a1c000000 && region.end == 0x7f3a1c021000)
        #expect(region.permissions == [.read, .execute])
        #expect(!region.isShared)
        #expect(region.offset == 0x1000)
        #expect(region.deviceMajor == 0xfd && region.deviceMinor == 1)
        #expect(region.inode == 1234567)
        #expect(region.path == "/usr/lib/x86_64-linux-gnu/libc.so.6")
        #expect(region.kind == .file)
        #expect(region.size == 0x21000)
    }

    @Test(arguments: [
        ("55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]", MemoryRegion.Kind.heap),
        ("7ffd2a3f0000-7ffd2a411000 rw-p 00000000 00:00 0                          [stack]", .stack),
        ("7ffd2a5e2000-7ffd2a5e4000 r-xp 00000000 00:00 0                          [vdso]", .vdso),
        ("7ffd2a5de000-7ffd2a5e2000 r--p 00000000 00:00 0                          [vvar]", .vvar),
        ("7ffd2a5da000-7ffd2a5de000 r--p 00000000 00:00 0                          [vvar_vclock]", .vvar),
        ("ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]", .vsyscall),
        ("7f0000000000-7f0000001000 rw-s 00000000 00:01 2055                       /memfd:cache (deleted)", .memfd),
        ("7f0000000000-7f0000001000 rw-s 00000000 00:01 9                          /secretmem (deleted)", .secretMemory),
        ("7f0000000000-7f0000001000 rw-s 00000000 00:01 9                          /SYSV00000000 (deleted)", .sharedMemory),
        ("7f0000000000-7f0000001000 rw-s 00000000 00:01 9                          /dev/zero (deleted)", .sharedMemory),
        ("7f0000000000-7f0000001000 rw-p 00000000 00:00 0                          [anon:jit]", .namedAnonymous),
        ("7f0000000000-7f0000001000 rw-p 00000000 00:00 0 ", .anonymous),
        ("7f0000000000-7f0000001000 rw-p 00000000 00:00 0", .anonymous),
        ("7f0000000000-7f0000001000 rw-s 00000000 00:00 0", .sharedMemory),
        ("7f0000000000-7f0000001000 rw-p 00000000 00:00 0                          [uprobes]", .other),
    ])
    func kinds(line: String, kind: MemoryRegion.Kind) throws {
        let region = try #require(MapsParser.parseLine(Array(line.utf8)))
        #expect(region.kind == kind)
    }

    @Test func pathsWithSpacesNewlinesAndDeletion() throws {
        let spaced = try #require(MapsParser.parseLine(Array("1000-2000 r--p 00000000 08:01 42   /tmp/my  file (1).bin".utf8)))
        #expect(spaced.path == "/tmp/my  file (1).bin")
        #expect(!spaced.isDeleted)
        let newline = try #require(MapsParser.parseLine(Array("1000-2000 r--p 00000000 08:01 42   /tmp/a\\012b (deleted)".utf8)))
        #expect(newline.path == "/tmp/a\nb")
        #expect(newline.isDeleted)
        let deleted = try #require(MapsParser.parseLine(Array("1000-2000 rw-s 00000000 00:05 7 /dev/shm/x (deleted)".utf8)))
        #expect(deleted.path == "/dev/shm/x" && deleted.isDeleted && deleted.kind == .sharedMemory)
    }

    @Test(arguments: [
        "", "garbage", "1000-2000", "1000-2000 rw-p", "2000-1000 rw-p 00000000 00:00 0",
        "1000-2000 rwzp 00000000 00:00 0", "1000-2000 rw-q 00000000 00:00 0", "1000-2000 rw- 00000000 00:00 0",
        "10000000000000000-20000000000000000 rw-p 00000000 00:00 0", "1000-2000 rw-p 0 00:00 99999999999999999999999",
        "1000-2000 rw-p 00000000 100000000:00 0", "1000-2000 rw-p 00000000 00:00 0x10", "g000-2000 rw-p 00000000 00:00 0",
    ])
    func malformedLinesAreRejected(line: String) {
        #expect(MapsParser.parseLine(Array(line.utf8)) == nil)
    }

    @Test func wholeFilesCountMalformedLines() {
        let text = """
        1000-2000 r--p 00000000 08:01 42 /bin/a
        nonsense here
        3000-4000 rw-p 00000000 00:00 0

        """
        let result = MapsParser.parse(text)
        #expect(result.regions.count == 2)
        #expect(result.malformedLines == 1)
    }

    /// The parser is pure and total: random bytes and random mutations of real lines never trap.
    @Test func randomInputNeverTraps() {
        var generator = SplitMix64(seed: 0x5eed)
        let real = Array("7f3a1c000000-7f3a1c021000 r-xp 00001000 fd:01 1234567  /usr/lib/libc.so.6 (deleted)".utf8)
        var parsed = 0
        for _ in 0..<20_000 {
            var line = real
            for _ in 0..<Int(generator.next() % 6) {
                let index = Int(generator.next() % UInt64(line.count))
                switch generator.next() % 3 {
                case 0: line[index] = UInt8(truncatingIfNeeded: generator.next())
                case 1: line.remove(at: index)
                default: line.insert(UInt8(truncatingIfNeeded: generator.next()), at: index)
                }
            }
            if MapsParser.parseLine(line) != nil { parsed += 1 }
            let noise = (0..<Int(generator.next() % 64)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            _ = MapsParser.parse(noise)
        }
        #expect(parsed > 0 && parsed < 20_000)
    }

    @Test func memoryMapLookups() {
        let map = MemoryMap(regions: [
            MemoryRegion(start: 0x3000, end: 0x4000, permissions: [.read], isShared: false),
            MemoryRegion(start: 0x1000, end: 0x2000, permissions: [.read, .write], isShared: false),
            MemoryRegion(start: 0x5000, end: 0x8000, permissions: [], isShared: false),
        ])
        #expect(map.map(\.start) == [0x1000, 0x3000, 0x5000])
        #expect(map.region(containing: 0x1fff)?.start == 0x1000)
        #expect(map.region(containing: 0x2000) == nil)
        #expect(map.region(containing: 0x0) == nil)
        #expect(map.region(containing: 0x7fff)?.start == 0x5000)
        #expect(map.region(containing: 0x8000) == nil)
        #expect(map.regions(overlapping: 0x1800..<0x5001).map(\.start) == [0x1000, 0x3000, 0x5000])
        #expect(map.regions(overlapping: 0x2000..<0x3000).isEmpty)
        #expect(map.readableBytes == 0x2000)
    }
}

@Suite("Live memory maps") struct LiveMapTests {
    @Test func fixtureRegionsAppearWithTheirPermissions() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let map = try handle.memoryMap()
        let layout = fixture.layout
        func region(_ name: String, offset: UInt64 = 0) throws -> MemoryRegion {
            try #require(map.region(containing: try layout.region(name).address + offset), "\(name) is not in the map")
        }
        #expect(try region("pattern").permissions == [.read, .write])
        #expect(try region("readOnly").permissions == [.read])
        let protNone = try layout.region("protNone")
        #expect(try region("protNone", offset: try #require(protNone.protNoneOffset)).permissions == [])
        let file = try region("truncatedFile")
        #expect(file.isShared && file.kind == .file && file.path == layout.regions["truncatedFile"]?.path)
        #expect(try region("memfd").kind == .memfd)
        #expect(try region("sharedAnon").kind == .sharedMemory)
        if layout.regions["secret"] != nil { #expect(try region("secret").kind == .secretMemory) }
        let hole = try layout.region("hole")
        #expect(map.region(containing: hole.address + (try #require(hole.holeOffset))) == nil)
        // malloc memory lies in [heap] with glibc's allocator, in anonymous mappings under sanitizers.
        let heap = try region("heap")
        #expect(heap.kind == .heap || heap.kind == .anonymous)
        #expect(heap.permissions.contains([.read, .write]))
        #expect(map.contains { $0.kind == .stack && $0.contains(layout.stack.address) })
        #expect(map.readableBytes > 0)
    }

    @Test("PROCMAP_QUERY answers the same as the parsed map")
    func queryMatchesTheMap() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let map = try handle.memoryMap()
        for region in map where region.kind != .vsyscall {
            for address in [region.start, region.end - 1] {
                #expect(try handle.region(containing: address) == region)
            }
        }
        let hole = try fixture.layout.region("hole")
        #expect(try handle.region(containing: hole.address + (try #require(hole.holeOffset))) == nil)
    }

    @Test func smapsDetailsOnRequest() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let details = try handle.regionDetails()
        let pattern = try fixture.layout.region("pattern")
        let entry = try #require(details.first { $0.region.start == pattern.address })
        #expect(entry.rss == pattern.size)
        #expect(entry.vmFlags.contains("rd") && entry.vmFlags.contains("wr"))
        #expect(entry.fields["Size"] == pattern.size)
    }
}

/// A small deterministic generator, so the robustness test is reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}
