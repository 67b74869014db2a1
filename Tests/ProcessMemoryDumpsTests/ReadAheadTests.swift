import Glibc
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryDumps

/// The dump's read-ahead thread on its own: results come back in order, into the buffer given,
/// errors pass through, and stopping waits for a read still in flight.
@Suite("Read-ahead")
struct ReadAheadTests {
    @Test("each read fills its own buffer and reports what the reader returned")
    func readsInOrder() throws {
        let ahead = try #require(ReadAhead { address, base, count in
            // Stand-in for a process read: the low byte of the address, count times; short past 0x300.
            let done = address >= 0x300 ? count / 2 : count
            memset(base, Int32(address & 0xff), done)
            return .success((done, done < count ? RawStop(systemCall: SystemCall(.read), errno: nil) : nil))
        })
        defer { ahead.stop() }
        #expect(ahead.finish() == nil, "nothing was started")
        let buffers = DumpEngine.Buffers(chunkSize: 4096)
        defer { buffers.deallocate() }
        for (round, address) in [UInt64(0x100), 0x200, 0x300].enumerated() {
            let slot = round % 2
            ahead.start(address: address, into: buffers[slot], count: 4096)
            let result = try #require(ahead.finish())
            let (done, stop) = try result.get()
            let bytes = UnsafeRawBufferPointer(start: buffers[slot], count: done)
            #expect(bytes.allSatisfy { $0 == UInt8(address & 0xff) })
            #expect(done == (address >= 0x300 ? 2048 : 4096))
            #expect((stop == nil) == (address < 0x300))
        }
    }

    @Test("an error thrown by the read comes back from finish()")
    func errorsPassThrough() throws {
        let ahead = try #require(ReadAhead { _, _, _ in .failure(.closed(pid: 42)) })
        defer { ahead.stop() }
        var byte: UInt8 = 0
        ahead.start(address: 0, into: &byte, count: 1)
        let result = try #require(ahead.finish())
        #expect(throws: ProcessMemoryError.self) { try result.get() }
    }

    @Test("stop() waits for a read in flight before the thread ends")
    func stopWaitsForInFlightRead() throws {
        let finished = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        finished.initialize(to: 0)
        defer { finished.deallocate() }
        let flag = UInt(bitPattern: finished)
        let ahead = try #require(ReadAhead { _, _, count in
            usleep(100_000)
            UnsafeMutablePointer<Int>(bitPattern: flag)?.pointee = 1
            return .success((count, nil))
        })
        var byte: UInt8 = 0
        ahead.start(address: 0, into: &byte, count: 1)
        ahead.stop()
        #expect(finished.pointee == 1)
        // A stopped read-ahead stops again harmlessly.
        ahead.stop()
    }
}
