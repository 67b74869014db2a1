import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore

@Suite("Batched reads") struct BatchReadTests {
    @Test("Every entry of a clean batch is read exactly", arguments: [0, 4096])
    func cleanBatch(gap: Int) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        var generator = SplitMix64(seed: UInt64(gap) + 1)
        let batch = ReadBatch()
        batch.coalescingGap = gap
        var expected: [[UInt8]] = []
        for _ in 0..<3000 {
            let count = Int(generator.next() % 64) + 1
            let offset = Int(generator.next() % (pattern.size - UInt64(count)))
            batch.add(address: pattern.address + UInt64(offset), count: count)
            expected.append((offset..<(offset + count)).map(patternByte))
        }
        try handle.read(batch)
        for index in 0..<batch.count {
            #expect(batch.outcome(index) == .ok)
            #expect(batch.bytes(index) == expected[index])
        }
    }

    @Test("Failing entries fail alone, each with its own code and exact byte count", arguments: [0, 4096])
    func mixedBatch(gap: Int) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let layout = fixture.layout
        let pattern = try layout.region("pattern")
        let hole = try layout.region("hole")
        let holeOffset = try #require(hole.holeOffset)
        let protNone = try layout.region("protNone")
        let file = try layout.region("truncatedFile")
        let batch = ReadBatch()
        batch.coalescingGap = gap
        let ok1 = batch.add(address: pattern.address + 10, count: 8)
        let inHole = batch.add(address: hole.address + holeOffset + 16, count: 8)
        let straddle = batch.add(address: hole.address + holeOffset - 5, count: 16)
        let afterHole = batch.add(address: hole.address + 2 * holeOffset + 8, count: 8)
        let beforeHole = batch.add(address: hole.address + 100, count: 8)
        let prot = batch.add(address: protNone.address + (try #require(protNone.protNoneOffset)) + 8, count: 8)
        let pastEOF = batch.add(address: file.address + 8192 + 4, count: 8)
        let ok2 = batch.add(address: pattern.address + 4096, count: 32)
        let zero = batch.add(address: pattern.address, count: 0)
        let wraps = batch.add(address: UInt64.max - 3, count: 8)
        try handle.read(batch)
        #expect(batch.outcome(ok1) == .ok)
        #expect(batch.bytes(ok1) == (10..<18).map(patternByte))
        #expect(batch.outcome(ok2) == .ok)
        #expect(batch.bytes(ok2) == (4096..<4128).map(patternByte))
        #expect(batch.outcome(inHole) == .failed(.notFound, bytesRead: 0))
        #expect(batch.outcome(straddle) == .failed(.notFound, bytesRead: 5))
        #expect(batch.bytes(straddle) == [UInt8](repeating: 0x10, count: 5))
        #expect(batch.error(straddle)?.address == hole.address + holeOffset)
        #expect(batch.outcome(afterHole) == .ok)
        #expect(batch.bytes(afterHole) == [UInt8](repeating: 0x12, count: 8))
        #expect(batch.outcome(beforeHole) == .ok)
        #expect(batch.outcome(prot) == .failed(.protectionFailure, bytesRead: 0))
        #expect(batch.outcome(pastEOF) == .failed(.outOfRange, bytesRead: 0))
        #expect(batch.outcome(zero) == .failed(.invalidArguments, bytesRead: 0))
        #expect(batch.outcome(wraps) == .failed(.invalidArguments, bytesRead: 0))
        #expect(batch.load(UInt8.self, afterHole) == 0x12)
        #expect(batch.load(UInt64.self, inHole) == nil)
    }

    @Test("A coalesced range broken by a hole still gives exact outcomes")
    func coalescedRunAcrossHole() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let hole = try fixture.layout.region("hole")
        let holeOffset = try #require(hole.holeOffset)
        let batch = ReadBatch()
        // Within the coalescing gap of each other, with the unmapped page between them.
        let before = batch.add(address: hole.address + holeOffset - 6, count: 6)
        let after = batch.add(address: hole.address + 2 * holeOffset, count: 6)
        let more = batch.add(address: hole.address + 2 * holeOffset + 100, count: 6)
        try handle.read(batch)
        #expect(batch.outcome(before) == .ok)
        #expect(batch.outcome(after) == .ok)
        #expect(batch.outcome(more) == .ok)
        #expect(batch.bytes(after) == [UInt8](repeating: 0x12, count: 6))
    }

    @Test("Many failures in one hole are classified together and stay correct")
    func manyFailuresInOneHole() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let hole = try fixture.layout.region("hole")
        let holeOffset = try #require(hole.holeOffset)
        let batch = ReadBatch()
        batch.coalescingGap = 0
        for index in 0..<2000 {
            let address = index % 10 == 0 ? hole.address + holeOffset + UInt64(index % 4000) : hole.address + UInt64(index % 4000)
            batch.add(address: address, count: 8)
        }
        try handle.read(batch)
        for index in 0..<batch.count {
            if index % 10 == 0 {
                #expect(batch.outcome(index) == .failed(.notFound, bytesRead: 0))
            } else {
                #expect(batch.outcome(index) == .ok)
                #expect(batch.bytes(index) == [UInt8](repeating: 0x10, count: 8))
            }
        }
    }

    @Test func batchesAreReusable() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let value = try fixture.layout.value("u32")
        let batch = ReadBatch()
        for round in 0..<3 {
            batch.removeAll()
            #expect(batch.count == 0)
            let index = batch.add(address: value, count: 4)
            #expect(batch.outcome(index) == .pending)
            try handle.read(batch)
            #expect(batch.load(UInt32.self, index) == 0xDEADBEEF, "round \(round)")
        }
    }

    @Test("A batch on a process that is gone throws and hands out no bytes")
    func goneProcess() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        fixture.stop()
        let batch = ReadBatch()
        let index = batch.add(address: pattern.address, count: 16)
        #expect { try handle.read(batch) } throws: { ($0 as? ProcessMemoryError)?.code == .badState }
        #expect(batch.outcome(index) == .pending)
        #expect(batch.bytes(index).isEmpty)
    }

    @Test func batchNeedsTheReadRight() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .write)
        let batch = ReadBatch()
        batch.add(address: try fixture.layout.value("u32"), count: 4)
        #expect { try handle.read(batch) } throws: { ($0 as? ProcessMemoryError)?.code == .accessDenied }
    }
}

@Suite("Batch sorting") struct BatchSortTests {
    @Test("The radix sort agrees with the standard sort", arguments: [0, 1, 63, 64, 1000, 5000])
    func radixSortMatches(count: Int) {
        var generator = SplitMix64(seed: UInt64(count) &+ 99)
        // Clustered high bits, as addresses in one mapping have, plus fully random keys.
        var keys: [UInt64] = []
        for index in 0..<count {
            if index % 3 == 0 {
                keys.append(generator.next())
            } else {
                let address: UInt64 = 0x7f00_0000_0000 &+ generator.next() % 65536
                keys.append(address << 17 | UInt64(index))
            }
        }
        let expected = keys.sorted()
        var scratch: [UInt64] = []
        ProcessHandle.radixSort(&keys, scratch: &scratch)
        #expect(keys == expected)
    }

    @Test("A dense cluster in any order is read as one range: exact bytes, duplicates and overlaps included")
    func denseClusterUnsorted() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        var generator = SplitMix64(seed: 7)
        let batch = ReadBatch()
        var expected: [[UInt8]] = []
        let window = 48 << 10  // within the 64 KiB pattern region, from its third page
        for index in 0..<1024 {
            let count = Int(generator.next() % 16) + 1
            // A repeat of an earlier entry now and then, and entries that overlap.
            let offset = index % 97 == 5 ? 4096 : Int(generator.next() % UInt64(window - count))
            batch.add(address: pattern.address + 8192 + UInt64(offset), count: count)
            expected.append(((8192 + offset)..<(8192 + offset + count)).map(patternByte))
        }
        // The dense span covers every page of the window.
        #expect(dense(batch) != nil)
        try handle.read(batch)
        for index in 0..<batch.count {
            #expect(batch.outcome(index) == .ok)
            #expect(batch.bytes(index) == expected[index])
        }
    }

    @Test("A dense cluster across an unmapped page: the range stops there and every entry still gets its own outcome")
    func denseClusterAcrossHole() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let hole = try fixture.layout.region("hole")
        let holeOffset = try #require(hole.holeOffset)
        let batch = ReadBatch()
        // Added out of address order; pages 0, 1 (the hole) and 2 each hold an entry.
        let after = batch.add(address: hole.address + 2 * holeOffset + 8, count: 8)
        let inHole = batch.add(address: hole.address + holeOffset + 16, count: 8)
        let before = batch.add(address: hole.address + 100, count: 8)
        let straddle = batch.add(address: hole.address + holeOffset - 5, count: 16)
        #expect(dense(batch) != nil)
        try handle.read(batch)
        #expect(batch.outcome(before) == .ok)
        #expect(batch.outcome(after) == .ok)
        #expect(batch.outcome(inHole) == .failed(.notFound, bytesRead: 0))
        #expect(batch.outcome(straddle) == .failed(.notFound, bytesRead: 5))
        #expect(batch.error(straddle)?.address == hole.address + holeOffset)
    }

    @Test("No dense span when a page of the span holds no entry, the gap is under a page, or the span is too long")
    func denseSpanLimits() {
        let batch = ReadBatch()
        batch.add(address: 0x10000, count: 8)
        batch.add(address: 0x12000, count: 8)  // page 0x11000 holds nothing
        #expect(dense(batch) == nil)
        batch.add(address: 0x11ff8, count: 16)  // now it does (and this entry crosses into 0x12000)
        #expect(dense(batch) == 0x10000..<0x12008)
        batch.coalescingGap = 64
        #expect(dense(batch) == nil)
        let long = ReadBatch()
        for page in 0..<65 { long.add(address: 0x100000 + UInt64(page) * 4096, count: 8) }
        #expect(dense(long) == nil)
    }

    @Test("Sorting by address: more than 2^17 entries, a span too wide to pack, duplicates", arguments: [
        (200_000, UInt64(1) << 30), (200_000, UInt64(1) << 47), (3000, UInt64(1) << 47), (70, UInt64(4096)),
    ])
    func sortByAddress(count: Int, span: UInt64) {
        var generator = SplitMix64(seed: UInt64(count) ^ span)
        let batch = ReadBatch()
        for _ in 0..<count { batch.add(address: 0x1000 + generator.next() % span, count: 8) }
        var state = batch.state
        state.order = Array(state.entries.indices)
        ProcessHandle.sortByAddress(&state)
        #expect(state.order.sorted() == Array(state.entries.indices), "a permutation of the entries")
        let addresses = state.order.map { state.entries[$0].address }
        #expect(zip(addresses, addresses.dropFirst()).allSatisfy { $0 <= $1 })
    }

    /// The dense span of `batch` with every entry counted valid, as `read` would see it.
    private func dense(_ batch: ReadBatch) -> Range<UInt64>? {
        var state = batch.state
        state.order = Array(state.entries.indices)
        return ProcessHandle.denseSpan(state)
    }
}
