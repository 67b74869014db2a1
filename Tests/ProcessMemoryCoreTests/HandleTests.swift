import Foundation
import Glibc
import ProcessMemoryTestSupport
import ProcessMemoryTestTraits
import Testing
@testable import ProcessMemoryCore

@Suite("Process handles") struct HandleTests {
    @Test func openHandleIsAlive() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        #expect(try handle.state() == .alive)
        #expect(handle.rights == .read)
        #expect(handle.pid == fixture.pid)
    }

    @Test func invalidPIDsAreInvalidArguments() {
        for pid: Int32 in [0, -1, Int32.min] {
            #expect { try ProcessHandle(pid: pid) } throws: { ($0 as? ProcessMemoryError)?.code == .invalidArguments }
        }
        #expect { try ProcessHandle(pid: 1, rights: []) } throws: { ($0 as? ProcessMemoryError)?.code == .invalidArguments }
    }

    @Test func aReapedPIDIsNotFound() throws {
        let fixture = try Fixture()
        let pid = fixture.pid
        fixture.stop()
        let error = try #require(throws: ProcessMemoryError.self) { try ProcessHandle(pid: pid) }
        #expect(error.code == .notFound)
        #expect(error.systemCall?.name == .pidfdOpen)
    }

    @Test("A kernel thread has no address space: wrong type")
    func kernelThreadIsWrongType() throws {
        // kthreadd is pid 2 in the initial PID namespace.
        let stat = try String(contentsOfFile: "/proc/2/stat", encoding: .utf8)
        try #require(stat.contains("(kthreadd)"), "pid 2 is not kthreadd in this PID namespace")
        let error = try #require(throws: ProcessMemoryError.self) { try ProcessHandle(pid: 2) }
        #expect(error.code == .wrongType)
    }

    @Test func closedHandleIsBadHandle() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        handle.close()
        handle.close()
        #expect(handle.isClosed)
        let pattern = try fixture.layout.region("pattern")
        #expect { try handle.read(from: pattern.address, count: 8) } throws: { ($0 as? ProcessMemoryError)?.code == .badHandle }
        #expect { try handle.state() } throws: { ($0 as? ProcessMemoryError)?.code == .badHandle }
        #expect { try handle.memoryMap() } throws: { ($0 as? ProcessMemoryError)?.code == .badHandle }
        #expect { try handle.duplicate() } throws: { ($0 as? ProcessMemoryError)?.code == .badHandle }
    }

    /// Counting descriptors is process-global, so it runs in an exit test's own process.
    @Test func closingReleasesDescriptors() async {
        await #expect(processExitsWith: .success) {
            guard let fixture = try? Fixture() else { exit(2) }
            let before = (try? openDescriptorCount()) ?? -1
            guard let handle = try? ProcessHandle(pid: fixture.pid, rights: .readWrite) else { exit(3) }
            guard let duplicate = try? handle.duplicate(rights: .read) else { exit(4) }
            // Five each: pidfd, /proc/PID, mem, maps and pagemap.
            guard (try? openDescriptorCount()) == before + 10 else { exit(5) }
            handle.close()
            duplicate.close()
            guard (try? openDescriptorCount()) == before else { exit(6) }
            fixture.stop()
            exit(0)
        }
    }

    @Test func readOnlyHandleCannotWrite() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let address = try fixture.layout.value("u32")
        let error = try #require(throws: ProcessMemoryError.self) { try handle.write(UInt32(1), to: address) }
        #expect(error.code == .accessDenied)
        #expect(error.accessDenial == .handleLacksRight)
        #expect(try fixture.selfRead(address, 4) == [0xEF, 0xBE, 0xAD, 0xDE])
    }

    @Test func writeOnlyHandleCannotRead() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .write)
        let error = try #require(throws: ProcessMemoryError.self) {
            try handle.read(from: try fixture.layout.value("u32"), count: 4)
        }
        #expect(error.code == .accessDenied)
    }

    @Test func duplicatesDropRightsAndNeverGainThem() throws {
        let fixture = try Fixture()
        let address = try fixture.layout.value("u32")
        let full = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let sampler = try full.duplicate(rights: .read)
        #expect(sampler.rights == .read)
        #expect(try sampler.read(UInt32.self, from: address) == 0xDEADBEEF)
        #expect { try sampler.write(UInt32(7), to: address) } throws: { ($0 as? ProcessMemoryError)?.code == .accessDenied }
        #expect { try sampler.duplicate(rights: .readWrite) } throws: { ($0 as? ProcessMemoryError)?.code == .accessDenied }
        // The duplicate's mem descriptor was opened read-only: even the raw descriptor cannot write.
        let flags = try sampler.box.use(pid: sampler.pid) { fds in fcntl(fds.mem, F_GETFL) }
        #expect(flags & O_ACCMODE == O_RDONLY)
        full.close()
        #expect(try sampler.read(UInt32.self, from: address) == 0xDEADBEEF)
        #expect(try sampler.state() == .alive)
    }

    @Test("A zombie, then a reaped process, gives bad state", arguments: ReadMode.allCases)
    func zombieAndGone(mode: ReadMode) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        fixture.kill()
        fixture.waitForZombie()
        #expect(try handle.state() == .zombie)
        let zombie = try #require(throws: ProcessMemoryError.self) { try handle.read(from: pattern.address, count: 16, mode: mode) }
        #expect(zombie.code == .badState)
        fixture.reap()
        #expect(try handle.state() == .gone)
        let gone = try #require(throws: ProcessMemoryError.self) { try handle.read(from: pattern.address, count: 16, mode: mode) }
        #expect(gone.code == .badState)
        #expect(gone.bytesTransferred == 0)
        // Opening a zombie is refused up front.
    }

    @Test func openingAZombieIsBadState() throws {
        let fixture = try Fixture()
        fixture.kill()
        fixture.waitForZombie()
        let error = try #require(throws: ProcessMemoryError.self) { try ProcessHandle(pid: fixture.pid) }
        #expect(error.code == .badState)
        fixture.reap()
    }

    @Test("After exec, operations fail with execed until reopen", arguments: ReadMode.allCases)
    func execIsDetected(mode: ReadMode) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let pattern = try fixture.layout.region("pattern")
        try fixture.ok("exec /bin/sleep 30")
        try waitUntil { (try? String(contentsOfFile: "/proc/\(fixture.pid)/comm", encoding: .utf8)) == "sleep\n" }
        defer { fixture.kill(); fixture.reap() }
        let error = try #require(throws: ProcessMemoryError.self) { try handle.read(from: pattern.address, count: 16, mode: mode) }
        #expect(error.code == .execed)
        #expect(try handle.state() == .execed)
        #expect { try handle.memoryMap() } throws: { ($0 as? ProcessMemoryError)?.code == .execed }
        #expect { try handle.write([1], to: pattern.address) } throws: { ($0 as? ProcessMemoryError)?.code == .execed }
        try handle.reopen()
        #expect(try handle.state() == .alive)
        let map = try handle.memoryMap()
        #expect(map.contains { $0.path?.hasSuffix("sleep") == true })
        let stack = try #require(map.first { $0.kind == .stack })
        let bytes = try handle.read(from: stack.end - 64, count: 64, mode: mode)
        #expect(bytes.count == 64)
    }

    /// The guarantee that matters most: after the PID is reused, the handle never returns the new
    /// process's memory. clone3 with set_tid recreates the PID deterministically.
    @Test("A reused PID never leaks the new process's memory",
          .requiresRoot("clone3 set_tid needs CAP_SYS_ADMIN"), arguments: ReadMode.allCases)
    func pidReuseNeverReadsTheNewProcess(mode: ReadMode) throws {
        let original = try Fixture()
        let pid = original.pid
        let pattern = try original.layout.region("pattern")
        let handle = try ProcessHandle(pid: pid, rights: .readWrite)
        #expect(try handle.read(from: pattern.address, count: 16, mode: mode) == (0..<16).map(patternByte))
        original.stop()

        let spawner = try Fixture()
        let reply = try spawner.ok("spawn-at \(pid) --fill 0xcc --pattern-at \(pattern.address)")
        #expect(reply["pid"] as? Int == Int(pid))
        defer { _ = kill(pid, SIGKILL) }
        // The new process holds 0xcc at the very address the handle read.
        try waitUntil {
            guard let fresh = try? ProcessHandle(pid: pid), let bytes = try? fresh.read(from: pattern.address, count: 16) else { return false }
            return bytes == [UInt8](repeating: 0xcc, count: 16)
        }
        var buffer = [UInt8](repeating: 0x11, count: 16)
        let error = try #require(throws: ProcessMemoryError.self) {
            try buffer.withUnsafeMutableBytes { try handle.read(from: pattern.address, into: $0, mode: mode) }
        }
        #expect(error.code == .badState)
        #expect(!buffer.contains(0xcc))
        #expect(try handle.state() == .gone)
        #expect { try handle.write([0xab], to: pattern.address) } throws: { ($0 as? ProcessMemoryError)?.code == .badState }
        #expect { try handle.memoryMap() } throws: { ($0 as? ProcessMemoryError)?.code == .badState }
        let untouched = try ProcessHandle(pid: pid).read(from: pattern.address, count: 1)
        #expect(untouched == [0xcc])
    }
}

func openDescriptorCount() throws -> Int {
    guard let dir = opendir("/proc/self/fd") else { throw FixtureError.closed }
    defer { closedir(dir) }
    var count = 0
    while readdir(dir) != nil { count += 1 }
    return count
}
