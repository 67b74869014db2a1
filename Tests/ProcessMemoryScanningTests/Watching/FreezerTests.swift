import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryScanning

@Suite("Freeze") struct FreezerTests {
    @Test("A freeze writes the value, leaves it alone while it holds, and restores it after the fixture changes it")
    func keepsValue() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let address = try fixture.layout.value("u32")
        let freezer = Freezer(handle: handle, address: address, bytes: [1, 2, 3, 4])
        guard case .restored(_, let original) = try freezer.freezeOnce() else {
            Issue.record("the first round did not write")
            return
        }
        #expect(original == [0xEF, 0xBE, 0xAD, 0xDE])
        #expect(try fixture.selfRead(address, 4) == [1, 2, 3, 4])
        #expect(try freezer.freezeOnce() == nil)
        try fixture.ok("write \(address) 09090909")
        guard case .restored(_, let found) = try freezer.freezeOnce() else {
            Issue.record("the changed value was not restored")
            return
        }
        #expect(found == [9, 9, 9, 9])
        #expect(try fixture.selfRead(address, 4) == [1, 2, 3, 4])
        #expect(freezer.writes == 2)
        #expect(freezer.rounds == 3)
    }

    @Test("A write that fails is reported and the freeze goes on; a gone process ends it")
    func failuresAndExit() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let hole = try fixture.layout.region("hole")
        let missing = hole.address + (try #require(hole.holeOffset))
        let freezer = Freezer(handle: handle, address: missing, bytes: [1])
        guard case .writeFailed(_, let error) = try freezer.freezeOnce() else {
            Issue.record("a write into the hole did not fail")
            return
        }
        #expect(error.code == .notFound)
        #expect(freezer.failures == 1)
        fixture.kill()
        fixture.waitForZombie()
        let ending = try #require(throws: ProcessMemoryError.self) {
            try freezer.run(interval: .milliseconds(1), cancellation: .never) { _ in }
        }
        #expect(ending.code == .badState)
        fixture.reap()
    }

    @Test("A freeze needs the write right")
    func needsWriteRight() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let freezer = Freezer(handle: handle, address: try fixture.layout.value("u8"), bytes: [1])
        let error = try #require(throws: ProcessMemoryError.self) { try freezer.freezeOnce() }
        #expect(error.code == .accessDenied)
    }
}
