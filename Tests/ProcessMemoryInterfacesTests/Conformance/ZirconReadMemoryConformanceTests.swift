import Glibc
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryDumps
@testable import ProcessMemoryObjects
@testable import ProcessMemoryScanning
import ProcessMemory

// Conformance with seed 000, zx_process_read_memory(), through the core API.
//
// Zircon reads go through the VMO and ignore page protections, so the Linux counterpart is
// `ReadMode.debugger` (/proc/PID/mem), which is also the default (linux-semantics.md §13).
@Suite("Conformance: zx_process_read_memory (seed 000)")
struct ZirconReadMemoryConformanceTests {
    // MARK: behaviour

    @Test("\"zx_process_read_memory() attempts to read memory of the specified process.\"")
    func readsTheProcessMemory() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        let bytes = try handle.readExactly(from: pattern.address, count: Int(pattern.size))
        #expect(bytes == Conformance.pattern(0, Int(pattern.size)))
        #expect(try handle.read(UInt32.self, from: fixture.layout.value("u32")) == 0xDEAD_BEEF)
        #expect(try handle.read(Double.self, from: fixture.layout.value("f64")) == -2.5e10)
        #expect(try handle.readCString(from: fixture.layout.value("cstring")) == "procmem fixture says hello")
    }

    @Test("\"vaddr the address of the block of memory to read.\"")
    func readsAtTheGivenAddress() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        let bytes = try handle.readExactly(from: pattern.address + 5000, count: 300)
        #expect(bytes == Conformance.pattern(5000, 300))
    }

    @Test("\"buffer pointer to a user buffer to read bytes into.\"")
    func readsIntoTheCallersBuffer() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        // Only the first 100 bytes of a 200-byte buffer are given; the rest stays untouched.
        let (count, bytes) = try withBuffer(200, fill: 0xEE) { buffer in
            try handle.read(from: pattern.address + 10, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<100]))
        }
        #expect(count == 100)
        #expect(Array(bytes[0..<100]) == Conformance.pattern(10, 100))
        #expect(bytes[100...].allSatisfy { $0 == 0xEE })
    }

    // Zircon reads ignore mapping permissions (§13: "Reads and writes go through the VMO, ignoring
    // mapping permissions"); memory mapped PROT_NONE is still memory of the process.
    @Test("\"zx_process_read_memory() attempts to read memory of the specified process.\" (PROT_NONE pages included)")
    func readsProtNonePages() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let region = try fixture.layout.region("protNone")
        let offset = Int(try #require(region.protNoneOffset))
        let bytes = try handle.readExactly(from: region.address, count: Int(region.size), mode: .debugger)
        #expect(Array(bytes[0..<offset]) == [UInt8](repeating: 0x15, count: offset))
        #expect(Array(bytes[offset...]) == [UInt8](repeating: 0x16, count: Int(region.size) - offset))
    }

    @Test("\"actual the actual number of bytes read is stored here. Less bytes than requested may be returned if vaddr+buffer_size extends beyond the memory mapped in the process.\"")
    func partialReadStopsAtTheHole() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let hole = try fixture.layout.region("hole")
        let holeOffset = Int(try #require(hole.holeOffset))
        let (count, bytes) = try withBuffer(Int(hole.size)) { try handle.read(from: hole.address, into: $0) }
        #expect(count == holeOffset)
        #expect(Array(bytes[0..<holeOffset]) == [UInt8](repeating: 0x10, count: holeOffset))

        let inside = try handle.read(from: hole.address + 100, count: Int(hole.size))
        #expect(inside.count == holeOffset - 100)
        #expect(inside == [UInt8](repeating: 0x10, count: holeOffset - 100))

        let transfer = try withBuffer(Int(hole.size)) { try handle.readTransfer(from: hole.address, into: $0) }.0
        #expect(transfer.bytesTransferred == holeOffset)
        #expect(transfer.stop?.code == .notFound)
        #expect(transfer.stop?.address == hole.address + UInt64(holeOffset))
        #expect(transfer.stop?.bytesTransferred == holeOffset)
    }

    // MARK: buffer_size bounds

    @Test("\"buffer_size must be greater than zero and less than or equal to 64MB.\" (zero)")
    func zeroSizeIsInvalid() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        let byCount = try #require(throws: ProcessMemoryError.self) { try handle.read(from: pattern.address, count: 0) }
        #expect(byCount.code == .invalidArguments)
        #expect(byCount.bytesTransferred == 0)
        let empty = UnsafeMutableRawBufferPointer.allocate(byteCount: 0, alignment: 1)
        defer { empty.deallocate() }
        let byBuffer = try #require(throws: ProcessMemoryError.self) { try handle.read(from: pattern.address, into: empty) }
        #expect(byBuffer.code == .invalidArguments)
        #expect(byBuffer.bytesTransferred == 0)
    }

    // Linux has no 64 MB bound: the kernel silently caps one call at 2 GiB − 4 KiB and the core API
    // splits any size, so "greater than 64MB" is not an error here (a Zircon-shaped surface may
    // enforce it). The nearest real case: a read of 64 MiB + 1 page is exact.
    @Test("\"buffer_size must be greater than zero and less than or equal to 64MB.\" (64 MiB + 1 page)")
    func largeReadIsExact() throws {
        let fixture = try Fixture()
        let size = 64 << 20 + Conformance.page
        let address = try Conformance.map(size, in: fixture)
        let handle = try ProcessHandle(pid: fixture.pid)
        let (count, bytes) = try withBuffer(size) { try handle.read(from: address, into: $0) }
        #expect(count == size)
        #expect(bytes.allSatisfy { $0 == 0x33 })
    }

    // MARK: errors

    @Test("\"ZX_ERR_ACCESS_DENIED handle does not have the ZX_RIGHT_READ right\"")
    func writeOnlyHandleIsDenied() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .write)
        let pattern = try fixture.layout.region("pattern")
        var untouched = true
        let error = try #require(throws: ProcessMemoryError.self) {
            _ = try withBuffer(64, fill: 0xEE) { buffer in
                defer { untouched = buffer.allSatisfy { $0 == 0xEE } }
                return try handle.read(from: pattern.address, into: buffer)
            }
        }
        #expect(error.code == .accessDenied)
        #expect(error.accessDenial == .handleLacksRight)
        #expect(error.bytesTransferred == 0)
        #expect(untouched)
    }

    // "or ZX_WRITE_RIGHT is needed for historical reasons": the core API does not require the write
    // right to read (a read-only handle reads); only a Zircon-shaped surface could demand it.
    @Test("\"handle must be of type ZX_OBJ_TYPE_PROCESS and have ZX_RIGHT_READ and have ZX_RIGHT_WRITE.\"")
    func readWriteHandleReads() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let pattern = try fixture.layout.region("pattern")
        #expect(try handle.readExactly(from: pattern.address, count: 256) == Conformance.pattern(0, 256))
    }

    @Test("\"ZX_ERR_BAD_HANDLE handle is not a valid handle.\"")
    func closedHandleIsBadHandle() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        handle.close()
        let error = try #require(throws: ProcessMemoryError.self) { try handle.read(from: pattern.address, count: 16) }
        #expect(error.code == .badHandle)
        #expect(error.bytesTransferred == 0)
    }

    @Test("\"ZX_ERR_BAD_STATE the process's memory is not accessible (e.g., the process is being terminated)\" (zombie)")
    func zombieIsBadState() throws {
        let fixture = try Fixture()
        defer { fixture.reap() }
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        fixture.kill()
        fixture.waitForZombie()
        let error = try #require(throws: ProcessMemoryError.self) { try handle.read(from: pattern.address, count: 16) }
        #expect(error.code == .badState)
        #expect(error.bytesTransferred == 0)
        let respecting = try #require(throws: ProcessMemoryError.self) {
            try handle.read(from: pattern.address, count: 16, mode: .respectingProtections)
        }
        #expect(respecting.code == .badState)
        let opening = try #require(throws: ProcessMemoryError.self) { try ProcessHandle(pid: fixture.pid) }
        #expect(opening.code == .badState)
    }

    @Test("\"ZX_ERR_BAD_STATE the process's memory is not accessible (e.g., the process is being terminated)\" (reaped)")
    func reapedIsBadState() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        fixture.kill()
        fixture.reap()
        let error = try #require(throws: ProcessMemoryError.self) { try handle.read(from: pattern.address, count: 16) }
        #expect(error.code == .badState)
        #expect(error.bytesTransferred == 0)
    }

    // "the requested memory is not cacheable" has no Linux counterpart; the nearest is [vvar], kernel
    // data mapped VM_IO|VM_PFNMAP that no other process can read, even through /proc/PID/mem.
    @Test("\"ZX_ERR_BAD_STATE ... or the requested memory is not cacheable.\"")
    func vvarIsProtectionFailure() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let vvar = try Conformance.region(.vvar, in: handle)
        let error = try #require(throws: ProcessMemoryError.self) { try handle.read(from: vvar.start, count: 64, mode: .debugger) }
        #expect(error.code == .protectionFailure)
        #expect(error.address == vvar.start)
        #expect(error.bytesTransferred == 0)
    }

    @Test("\"ZX_ERR_INVALID_ARGS buffer is an invalid pointer or NULL\" (NULL)")
    func nullBufferIsInvalid() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        let error = try #require(throws: ProcessMemoryError.self) {
            try handle.read(from: pattern.address, into: UnsafeMutableRawBufferPointer(start: nil, count: 0))
        }
        #expect(error.code == .invalidArguments)
        #expect(error.bytesTransferred == 0)
    }

    @Test("\"ZX_ERR_INVALID_ARGS buffer is an invalid pointer or NULL\" (invalid pointer)")
    func unwritableBufferIsInvalid() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        let local = try LocalPages(prot: PROT_READ)
        let error = try #require(throws: ProcessMemoryError.self) {
            try handle.read(from: pattern.address, into: local.mutableBuffer, mode: .debugger)
        }
        #expect(error.code == .invalidBuffer)
        #expect(error.localAddress == UInt64(UInt(bitPattern: local.base)))
        #expect(error.bytesTransferred == 0)
        #expect(local.bytes.allSatisfy { $0 == 0xA5 })
    }

    // A range whose end wraps past 2^64 is rejected before any system call, like a bad size.
    @Test("\"ZX_ERR_INVALID_ARGS buffer is an invalid pointer or NULL, or buffer_size is zero or greater than 64MB.\" (vaddr+buffer_size wraps around)")
    func wrappingRangeIsInvalid() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let error = try #require(throws: ProcessMemoryError.self) { try handle.read(from: UInt64.max - 10, count: 100) }
        #expect(error.code == .invalidArguments)
        #expect(error.bytesTransferred == 0)
    }

    // An address outside the user address space (≥ 2^47) is rejected before any system call:
    // pread on /proc/PID/mem cannot even express addresses ≥ 2^63 (linux-semantics.md §5, §13).
    @Test("\"ZX_ERR_INVALID_ARGS buffer is an invalid pointer or NULL, or buffer_size is zero or greater than 64MB.\" (vaddr at or above 2^47)")
    func addressAboveUserSpaceIsInvalid() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        for address in [UInt64(1) << 47, Conformance.userLimit, UInt64(1) << 63] {
            let error = try #require(throws: ProcessMemoryError.self) { try handle.read(from: address, count: 8) }
            #expect(error.code == .invalidArguments, "address 0x\(String(address, radix: 16))")
            #expect(error.bytesTransferred == 0)
        }
    }

    @Test("\"ZX_ERR_NOT_FOUND if the process does not have any memory at the requested address\"")
    func holeIsNotFound() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let hole = try fixture.layout.region("hole")
        let start = hole.address + (try #require(hole.holeOffset))
        for address in [start, start + 100] {
            let error = try #require(throws: ProcessMemoryError.self) { try handle.read(from: address, count: 16) }
            #expect(error.code == .notFound)
            #expect(error.address == address)
            #expect(error.bytesTransferred == 0)
        }
    }

    @Test("\"ZX_ERR_OUT_OF_RANGE if the offset corresponding to vaddr within the mapped VMO is greater than or equal to the VMO size\"")
    func pastTheEndOfTheObjectIsOutOfRange() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let page = UInt64(Conformance.page)
        for name in ["truncatedFile", "memfd"] {
            let region = try fixture.layout.region(name)
            for address in [region.address + 2 * page, region.address + 3 * page + 10] {
                let error = try #require(throws: ProcessMemoryError.self) { try handle.read(from: address, count: 16) }
                #expect(error.code == .outOfRange, "\(name) at +0x\(String(address - region.address, radix: 16))")
                #expect(error.address == address)
                #expect(error.bytesTransferred == 0)
            }
            // A read that starts inside the object stops at the end of its last page (6144 bytes of
            // object: pages 0 and 1), with the bytes past the object's end in that page reading as 0.
            let first: UInt8 = name == "memfd" ? 0xC0 : 0xB0
            let bytes = try handle.read(from: region.address, count: Int(region.size))
            #expect(bytes.count == 2 * Int(page), "\(name)")
            #expect(Array(bytes[0..<Int(page)]) == [UInt8](repeating: first, count: Int(page)))
            #expect(Array(bytes[Int(page)..<6144]) == [UInt8](repeating: first + 1, count: 6144 - Int(page)))
            #expect(bytes[6144...].allSatisfy { $0 == 0 })
        }
    }

    @Test("\"These error codes are consistent with the error code that would be generated by a page fault at the same address\"")
    func bothReadPathsAgreeOnTheCode() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let hole = try fixture.layout.region("hole")
        let file = try fixture.layout.region("truncatedFile")
        let cases: [(UInt64, ProcessMemoryError.Code)] = [
            (hole.address + (try #require(hole.holeOffset)), .notFound),
            (file.address + 2 * UInt64(Conformance.page), .outOfRange),
        ]
        for (address, code) in cases {
            for mode in ReadMode.allCases {
                let error = try #require(throws: ProcessMemoryError.self) { try handle.read(from: address, count: 8, mode: mode) }
                #expect(error.code == code, "\(mode)")
                #expect(error.address == address, "\(mode)")
            }
        }
    }

    @Test("\"ZX_ERR_WRONG_TYPE handle is not a process handle.\"")
    func kernelThreadIsWrongType() throws {
        // pid 2 (kthreadd) is a kernel thread: it has no user address space.
        let error = try #require(throws: ProcessMemoryError.self) { try ProcessHandle(pid: 2) }
        #expect(error.code == .wrongType)
        #expect(error.pid == 2)
    }
}
