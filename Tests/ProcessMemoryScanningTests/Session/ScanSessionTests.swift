import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryScanning

@Suite("Scan session") struct ScanSessionTests {
    /// A session on the fixture, scanning u32 in every writable region.
    func withSession<R>(_ limits: SessionGenerations.Limits = .init(), _ body: (Fixture, ScanSession) throws -> R) throws -> R {
        let fixture = try Fixture()
        defer { fixture.stop() }
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        defer { handle.close() }
        let session = try ScanSession(handle: handle, type: .u32, limits: limits)
        defer { session.close() }
        return try body(fixture, session)
    }

    @Test("A value scans first, narrows afterwards; changed, +N and ranges narrow; undo walks back; delete and reset are undoable")
    func knownValueLoop() throws {
        try withSession { fixture, session in
            let address = try fixture.layout.value("u32")
            let first = try session.enter(ScanValue("0xdeadbeef", as: .u32))
            #expect(first.matches.count >= 1)
            let found = try #require(session.matches)
            #expect(found.matches.contains { $0.address == address })
            // The program changes the value: 0xdeadbeef + 5.
            try fixture.ok("write \(address) f4beadde")
            _ = try session.narrow(.changed)
            #expect(session.matches?.matches.map(\.address) == [address])
            _ = try session.narrow(.increasedBy(ScanValue("1", as: .u32)))
            #expect(session.matchCount == 0, "nothing grew since the last step")
            #expect(try session.undo())
            #expect(session.matchCount == 1)
            _ = try session.narrow(.inRange(ScanValue("0xdeadbef0", as: .u32), ScanValue("0xdeadbef9", as: .u32)))
            #expect(session.matchCount == 1)
            _ = try session.narrow(.notEqual(ScanValue("0xdeadbef4", as: .u32)))
            #expect(session.matchCount == 0)
            #expect(try session.undo())
            _ = try session.narrow(.lessThan(ScanValue("0xdeadbef5", as: .u32)))
            #expect(session.matchCount == 1)
            _ = try session.narrow(.greaterThan(ScanValue("0xdeadbef4", as: .u32)))
            #expect(session.matchCount == 0)
            #expect(try session.undo())
            try session.delete([0])
            #expect(session.matchCount == 0)
            #expect(try session.undo())
            #expect(session.matchCount == 1)
            try session.reset()
            #expect(session.state == .empty)
            #expect(try session.undo())
            #expect(session.matches?.matches.map(\.address) == [address])
            // Back to the first scan, then to nothing.
            while try session.undo() {}
            #expect(session.state == .empty)
            #expect(throws: ProcessMemoryError.self) { try session.delete([0]) }
        }
    }

    @Test("set writes every chosen match through the handle; an index out of range is refused")
    func setWrites() throws {
        try withSession { fixture, session in
            let address = try fixture.layout.value("u32")
            _ = try session.enter(ScanValue("0xdeadbeef", as: .u32))
            let index = try #require(session.matches?.matches.firstIndex { $0.address == address })
            let done = try session.set("123456", matches: [index])
            #expect(done.count == 1 && done[0].error == nil)
            #expect(try fixture.selfRead(address, 4) == [0x40, 0xE2, 0x01, 0x00])
            #expect(throws: ProcessMemoryError.self) { _ = try session.set("1", matches: [session.matchCount]) }
            var options = PointerScanOptions()
            options.maxDepth = 1
            #expect(try session.scanPointers(toMatch: index, options: options).target == address)
            #expect(throws: ProcessMemoryError.self) { _ = try session.scanPointers(toMatch: session.matchCount) }
            #expect(throws: ProcessMemoryError.self) { _ = try session.set("-1", matches: [index]) }
        }
    }

    @Test("Generations larger than the in-memory limit go to a private 0700 directory and come back on undo; close removes it")
    func spillsToDisk() throws {
        var directory = ""
        try withSession(.init(depth: 2, inMemoryMatches: 0)) { fixture, session in
            directory = session.directoryPath
            var info = stat()
            #expect(stat(directory, &info) == 0)
            #expect(info.st_mode & 0o777 == 0o700)
            let planted = fixture.layout.planted
            _ = try session.enter(ScanValue(String(planted.value), as: .u32))
            let all = try #require(session.matches)
            #expect(all.count >= planted.addresses.count)
            try session.delete([0])
            let files = try FileManager.default.contentsOfDirectory(atPath: directory)
            #expect(files.contains { $0.hasSuffix(".matches") }, "the earlier set was saved: \(files)")
            #expect(try session.undo())
            #expect(session.matches == all)
            // Depth 2: three steps keep two.
            try session.delete([0])
            try session.delete([0])
            try session.delete([0])
            #expect(session.undoDepth == 2)
        }
        #expect(access(directory, F_OK) != 0, "the directory is removed when the session closes")
    }

    @Test("An unknown value: snapshot, then decreased and unchanged compare with it, and undo returns to the snapshot")
    func snapshotLoop() throws {
        try withSession { fixture, session in
            let address = try fixture.layout.value("u32")
            _ = try session.takeSnapshot()
            try fixture.ok("write \(address) 01000000")
            _ = try session.narrow(.decreased)
            #expect(session.matches?.matches.contains { $0.address == address } == true)
            #expect(try session.undo())
            guard case .snapshot = session.state else {
                Issue.record("undo did not return to the snapshot")
                return
            }
            _ = try session.narrow(.equal(ScanValue("1", as: .u32)))
            #expect(session.matches?.matches.contains { $0.address == address } == true)
        }
    }

    @Test("Background jobs: a freeze restores the value the program changes, a watch reports the change, a gone process ends them")
    func jobs() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        defer { handle.close() }
        let address = try fixture.layout.value("u32")
        let jobs = ValueJobs(handle: handle)
        jobs.add(.freeze([1, 2, 3, 4]), .address(address), label: "u32")
        let watched = jobs.add(.watch(size: 4), .expression(try AddressExpression.parse(String(address)), names: nil), label: "w")
        #expect(jobs.start(interval: .milliseconds(10)))
        var held = false
        for _ in 0..<200 where !held {
            usleep(10_000)
            held = try fixture.selfRead(address, 4) == [1, 2, 3, 4]
        }
        #expect(held)
        try fixture.ok("write \(address) 09090909")
        var restored = false
        var events: [ValueJobs.Event] = []
        for _ in 0..<200 where !restored {
            usleep(10_000)
            events += jobs.takeEvents().events
            restored = events.contains { if case .restored(let found) = $0.what { return found == [9, 9, 9, 9] } else { return false } }
        }
        #expect(restored)
        #expect(events.contains { $0.job == watched })
        #expect(try fixture.selfRead(address, 4) == [1, 2, 3, 4])
        jobs.stop()
        #expect(!jobs.isRunning)
        fixture.stop()
        #expect(jobs.round() == false)
        #expect(jobs.endedBecause != nil)
    }
}
