import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing
import ProcessMemoryCore

/// A handle closed while other threads read through it: every read either returns the original
/// process's bytes or fails with `.badHandle`, even when the closed descriptor numbers are reused
/// at once by `/proc/PID/mem` of another process that holds different bytes at the same address.
@Suite("Handle closed during reads", .serialized)
struct HandleCloseRaceTests {
    @Test("reads racing close() never go through a reused descriptor number", arguments: ReadMode.allCases)
    func closeDuringReads(mode: ReadMode) throws {
        let original = try Fixture()
        let pattern = try original.layout.region("pattern")
        // The impostor holds 0xEE at the very address the readers read.
        let impostor = try Fixture(arguments: ["--pattern-at", "0x" + String(pattern.address, radix: 16), "--fill", "0xee"])
        #expect(try impostor.layout.region("pattern").address == pattern.address)
        let expected = (0..<8).map(patternByte)
        let readers = 2
        for _ in 0..<100 {
            let handle = try ProcessHandle(pid: original.pid)
            let results = ReaderResults()
            let started = DispatchSemaphore(value: 0)
            let finished = DispatchSemaphore(value: 0)
            for _ in 0..<readers {
                // Dedicated threads: blocking waits below must not starve a shared pool.
                Thread {
                    defer { finished.signal() }
                    var buffer = [UInt8](repeating: 0, count: 8)
                    started.signal()
                    while true {
                        do throws(ProcessMemoryError) {
                            let result = buffer.withUnsafeMutableBytes { raw in
                                Result { () throws(ProcessMemoryError) in try handle.readExactly(from: pattern.address, into: raw, mode: mode) }
                            }
                            try result.get()
                            results.record(buffer == expected ? .original : .foreign)
                        } catch {
                            results.record(error.code == .badHandle ? .closed : .otherError)
                            return
                        }
                    }
                }.start()
            }
            for _ in 0..<readers { started.wait() }
            handle.close()
            // Take the lowest free descriptor numbers, which include the ones close() freed.
            var taken: [Int32] = []
            for _ in 0..<8 {
                let fd = open("/proc/\(impostor.pid)/mem", O_RDONLY | O_CLOEXEC)
                if fd >= 0 { taken.append(fd) }
            }
            for _ in 0..<readers { finished.wait() }
            taken.forEach { _ = Glibc.close($0) }
            let counts = results.counts
            #expect(counts[.foreign, default: 0] == 0, "a read returned another process's bytes")
            #expect(counts[.otherError, default: 0] == 0, "reads end with badHandle, nothing else")
            #expect(counts[.closed, default: 0] == readers)
        }
    }
}

/// What the reader threads saw, counted under a lock.
private final class ReaderResults: @unchecked Sendable {
    enum Outcome: Hashable { case original, foreign, closed, otherError }
    private let lock = NSLock()
    private var storage: [Outcome: Int] = [:]

    func record(_ outcome: Outcome) {
        lock.lock()
        storage[outcome, default: 0] += 1
        lock.unlock()
    }

    var counts: [Outcome: Int] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
}
