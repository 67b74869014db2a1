import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing
import ProcessMemoryCore
import ProcessMemoryDumps

/// Diffs between dumps, and between a dump and the live process.
@Suite("Snapshot diffs")
struct SnapshotDiffTests {
    @Test("a value the fixture writes between two dumps is exactly the change in its regions")
    func diffBetweenDumps() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let first = DumpSupport.scratch("diff-a")
        let second = DumpSupport.scratch("diff-b")
        defer {
            DumpSupport.remove(first)
            DumpSupport.remove(second)
        }
        try handle.dump(toDirectory: first)
        let u32 = try fixture.layout.value("u32")
        try fixture.ok("write \(u32) 44332211")
        try handle.dump(toDirectory: second)
        let diff = try SnapshotDiff.compare(directory: first, directory: second)
        let fixtureRanges = fixture.layout.regions.values.map { $0.address..<($0.address + $0.size) }
        let inFixtureRegions = diff.changed.filter { change in fixtureRanges.contains { $0.overlaps(change.start..<change.end) } }
        #expect(inFixtureRegions == [SnapshotDiff.Range(start: u32, end: u32 + 4)])
        // Only the fixture's regions are fixed: the process may allocate (its heap may appear or
        // grow) while it answers the write command, which is a real change between the dumps.
        let appeared = (diff.onlyInFirst + diff.onlyInSecond).filter { range in fixtureRanges.contains { $0.overlaps(range.start..<range.end) } }
        #expect(appeared.isEmpty, "fixture ranges only in one dump: \(appeared)")

        let live = try SnapshotDiff.compare(directory: second, live: handle)
        #expect(!live.changed.contains { change in fixtureRanges.contains { $0.overlaps(change.start..<change.end) } })
        #expect(live.onlyInFirst.isEmpty)
        #expect(DumpSupport.isRunning(fixture.pid))
    }

    @Test("a range unmapped after the dump is listed as only in the first")
    func unmappedRange() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let first = DumpSupport.scratch("diff-unmap")
        defer { DumpSupport.remove(first) }
        try handle.dump(toDirectory: first)
        let planted = try fixture.layout.region("planted")
        try fixture.ok("unmap \(planted.address) \(planted.size)")
        let live = try SnapshotDiff.compare(directory: first, live: handle, stopMethod: .signal)
        #expect(live.onlyInFirst.contains(SnapshotDiff.Range(start: planted.address, end: planted.address + planted.size)))
    }
}
