import Foundation
import Glibc
import ProcessMemoryTestSupport
import Synchronization
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryScanning

@Suite("Watch") struct WatcherTests {
    @Test("The first poll reports initial values; a write by the fixture is reported with old and new value")
    func reportsChanges() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let u32 = try fixture.layout.value("u32")
        let u64 = try fixture.layout.value("u64")
        let watcher = Watcher(handle: handle, targets: [.init(address: u32, size: 4), .init(address: u64, size: 8)])
        let initial = try watcher.poll()
        #expect(initial.map(\.target) == [0, 1])
        #expect(initial.allSatisfy { $0.old == nil })
        #expect(initial[0].new == .bytes([0xEF, 0xBE, 0xAD, 0xDE]))
        #expect(try watcher.poll().isEmpty)

        let before = Watcher.now()
        try fixture.ok("write \(u32) 2a000000")
        let changes = try watcher.poll()
        #expect(changes.count == 1)
        let change = try #require(changes.first)
        #expect(change.target == 0)
        #expect(change.old == .bytes([0xEF, 0xBE, 0xAD, 0xDE]))
        #expect(change.new == .bytes([0x2A, 0, 0, 0]))
        #expect(change.time >= before)
        #expect(watcher.rounds == 3)
        #expect(watcher.changes == 1)
    }

    @Test("An address in the hole is unreadable, not an error; the others are still watched")
    func unreadableTarget() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let hole = try fixture.layout.region("hole")
        let missing = hole.address + (try #require(hole.holeOffset))
        let watcher = Watcher(handle: handle, targets: [.init(address: missing, size: 4), .init(address: try fixture.layout.value("u8"), size: 1)])
        let initial = try watcher.poll()
        guard case .unreadable(let error) = initial[0].new else {
            Issue.record("expected an unreadable value, got \(initial[0].new)")
            return
        }
        #expect(error.code == .notFound)
        #expect(initial[1].new == .bytes([0xAB]))
    }

    @Test("A watch on a process that exits ends with badState")
    func processExits() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let watcher = Watcher(handle: handle, targets: [.init(address: try fixture.layout.value("u32"), size: 4)])
        _ = try watcher.poll()
        fixture.kill()
        fixture.waitForZombie()
        let error = try #require(throws: ProcessMemoryError.self) {
            try watcher.run(interval: .milliseconds(1), cancellation: .never) { _ in }
        }
        #expect(error.code == .badState)
        fixture.reap()
    }

    @Test("run stops when asked and sleeps in short slices")
    func runStops() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let watcher = Watcher(handle: handle, targets: [.init(address: try fixture.layout.value("u8"), size: 1)])
        var seen: [Watcher.Change] = []
        let checks = Atomic<Int>(0)
        try watcher.run(interval: .seconds(3600),
                        cancellation: Cancellation { checks.add(1, ordering: .relaxed).newValue > 3 }) { seen.append($0) }
        #expect(seen.count == 1)
        #expect(watcher.rounds == 1)
        let bad = Watcher(handle: handle, targets: [.init(address: try fixture.layout.value("u8"), size: 0)])
        #expect(throws: ProcessMemoryError.self) { try bad.poll() }
    }
}
