import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryScanning

/// Snapshot comparisons at every integer width (any-int) and at every byte offset, across page and
/// chunk boundaries, against the fixture.
@Suite("Snapshot compare")
struct SnapshotCompareTests {
    /// A fresh 64 KiB fixture mapping (every byte 0x33) and a scanner limited to it.
    func mapped(_ fixture: Fixture, chunkSize: Int, aligned: Bool) throws -> (base: UInt64, handle: ProcessHandle, scanner: ProcessMemoryScanning.Scanner) {
        let reply = try fixture.ok("map 65536")
        let base = UInt64(try #require(reply["address"] as? Int))
        let handle = try ProcessHandle(pid: fixture.pid)
        var options = ScanOptions(chunkSize: chunkSize, aligned: aligned)
        options.regions.addressRange = base..<(base + 65536)
        return (base, handle, ProcessMemoryScanning.Scanner(handle: handle, options: options))
    }

    func pairs(_ set: MatchSet, from base: UInt64) -> [[Int]] {
        set.matches.map { [Int($0.address - base), $0.width] }
    }

    @Test("any-int: every width whose test holds, aligned, through a saved match file", arguments: [4096, 65536])
    func anyInt(chunkSize: Int) throws {
        let fixture = try Fixture()
        let (base, handle, scanner) = try mapped(fixture, chunkSize: chunkSize, aligned: true)
        defer { handle.close() }
        let path = NSTemporaryDirectory() + "snap-\(UUID().uuidString).pms"
        defer { unlink(path) }
        _ = try scanner.snapshot(as: .anyInt, to: path)
        #expect(try SnapshotInfo(contentsOf: path).type == .anyInt)
        try fixture.ok("write \(base + 4100) 0100")  // 33 33 → 01 00
        let changed = try scanner.compare(snapshotAt: path, where: .changed)
        #expect(pairs(changed.matches, from: base) == [[4096, 8], [4100, 1], [4100, 2], [4100, 4], [4101, 1]])
        let one = try scanner.compare(snapshotAt: path, where: .equal(try ScanValue("1", as: .anyInt)))
        #expect(pairs(one.matches, from: base) == [[4100, 1], [4100, 2]])
        #expect(one.matches.number(ofMatch: 1) == .integer(1))
        let decreased = try scanner.compare(snapshotAt: path, where: .decreased)
        #expect(decreased.matches.count == 5)
        // Several widths at one address survive a save and load, and narrow further.
        let saved = NSTemporaryDirectory() + "snap-\(UUID().uuidString).pmm"
        defer { unlink(saved) }
        try changed.matches.save(to: saved)
        let loaded = try MatchSet(contentsOf: saved)
        #expect(loaded == changed.matches)
        let narrowed = try scanner.rescan(loaded, where: .equal(try ScanValue("1", as: .anyInt)))
        #expect(pairs(narrowed.matches, from: base) == [[4100, 1], [4100, 2]])
    }

    @Test("unaligned: values at every offset, across a page and a chunk boundary", arguments: [4096, 65536])
    func unaligned(chunkSize: Int) throws {
        let fixture = try Fixture()
        let (base, handle, scanner) = try mapped(fixture, chunkSize: chunkSize, aligned: false)
        defer { handle.close() }
        let path = NSTemporaryDirectory() + "snap-\(UUID().uuidString).pms"
        defer { unlink(path) }
        _ = try scanner.snapshot(as: .u32, to: path)
        try fixture.ok("write \(base + 4094) 78563412")  // 0x12345678 across the page boundary at 4096
        let changed = try scanner.compare(snapshotAt: path, where: .changed)
        #expect(pairs(changed.matches, from: base) == (4091...4097).map { [$0, 4] })
        let equal = try scanner.compare(snapshotAt: path, where: .equal(try ScanValue("0x12345678", as: .u32)))
        #expect(pairs(equal.matches, from: base) == [[4094, 4]])
        // Aligned is a choice of the comparison: the same file compared aligned misses it.
        let alignedOnly = try scanner.compare(snapshotAt: path, where: .equal(try ScanValue("0x12345678", as: .u32)), aligned: true)
        #expect(alignedOnly.matches.isEmpty)
        // So is the type: any-int at every offset finds the low half as a 2-byte value.
        let anyInt = try scanner.compare(snapshotAt: path, where: .equal(try ScanValue("0x5678", as: .anyInt)), as: .anyInt)
        #expect(pairs(anyInt.matches, from: base) == [[4094, 2]])
        // A region's last bytes: no value runs past its end.
        try fixture.ok("write \(base + 65535) 00")
        let end = try scanner.compare(snapshotAt: path, where: .changed, as: .anyInt)
        #expect(pairs(end.matches, from: base).filter { $0[0] >= 65528 } == [[65528, 8], [65532, 4], [65534, 2], [65535, 1]])
    }

    @Test("a page unreadable when the snapshot was taken is never compared, nor values running into it")
    func unreadablePage() throws {
        let fixture = try Fixture()
        let (base, handle, scanner) = try mapped(fixture, chunkSize: 4096, aligned: false)
        defer { handle.close() }
        let path = NSTemporaryDirectory() + "snap-\(UUID().uuidString).pms"
        defer { unlink(path) }
        // Protected after the regions were chosen, well ahead of the reader (at most two chunks
        // ahead): the snapshot records the page and the rest of the region as unreadable.
        var protected = false
        let saved = try scanner.snapshot(as: .u16, to: path) { progress in
            if !protected, progress.bytesDone >= 4096 {
                protected = true
                _ = try? fixture.ok("protect \(base + 32768) 4096 ---")
            }
        }
        #expect(saved.skipped.map(\.start) == [base + 32768])
        try fixture.ok("protect \(base + 32768) 4096 rw-")
        try fixture.ok("write \(base + 32766) 00000000")  // the last u16s before it and the first in it
        let changed = try scanner.compare(snapshotAt: path, where: .changed)
        #expect(pairs(changed.matches, from: base) == [[32765, 2], [32766, 2]])
    }

    @Test("an interrupted snapshot is a valid file marked partial; comparing against it covers its pages")
    func interrupted() throws {
        let fixture = try Fixture()
        let (base, handle, scanner) = try mapped(fixture, chunkSize: 4096, aligned: true)
        defer { handle.close() }
        let path = NSTemporaryDirectory() + "snap-\(UUID().uuidString).pms"
        defer { unlink(path) }
        let stop = CancellationSource()
        let saved = try scanner.snapshot(as: .u32, to: path, progress: { progress in
            if progress.bytesDone >= 8192 { stop.cancel() }
        }, cancellation: stop.cancellation)
        #expect(saved.interrupted)
        #expect(saved.isPartial)
        #expect(saved.bytesScanned == 8192)
        try fixture.ok("write \(base + 4) 01000000")       // in a page taken
        try fixture.ok("write \(base + 40000) 01000000")   // in a page not taken
        let changed = try scanner.compare(snapshotAt: path, where: .changed)
        #expect(pairs(changed.matches, from: base) == [[4, 4]])
        #expect(changed.matches.isPartial)
        #expect(changed.isPartial)
        #expect(!changed.interrupted)
        // The partial mark survives a save and a rescan.
        let file = NSTemporaryDirectory() + "snap-\(UUID().uuidString).pmm"
        defer { unlink(file) }
        try changed.matches.save(to: file)
        let narrowed = try scanner.rescan(try MatchSet(contentsOf: file), where: .unchanged)
        #expect(narrowed.matches.isPartial)
        #expect(pairs(narrowed.matches, from: base) == [[4, 4]])
    }
}
