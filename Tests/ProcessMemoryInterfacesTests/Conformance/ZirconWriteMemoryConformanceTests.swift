import Glibc
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryDumps
@testable import ProcessMemoryObjects
@testable import ProcessMemoryScanning
import ProcessMemory

// Conformance with seed 001, zx_process_write_memory(), through the core API.
//
// Zircon writes go through the VMO, making the mapping privately writable (ForceWritable); the Linux
// counterpart is `WriteMode.debugger` (pwrite on /proc/PID/mem), the default (linux-semantics.md §13).
@Suite("Conformance: zx_process_write_memory (seed 001)")
struct ZirconWriteMemoryConformanceTests {
    // MARK: behaviour

    @Test("\"zx_process_write_memory() attempts to write memory of the specified process.\"")
    func writesTheProcessMemory() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let pattern = try fixture.layout.region("pattern")
        let bytes: [UInt8] = [0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03]
        #expect(try handle.write(bytes, to: pattern.address + 100) == bytes.count)
        #expect(try fixture.selfRead(pattern.address + 100, bytes.count) == bytes)
        // Neighbours are unchanged.
        #expect(try fixture.selfRead(pattern.address + 90, 10) == Conformance.pattern(90, 10))
        #expect(try fixture.selfRead(pattern.address + 107, 10) == Conformance.pattern(107, 10))

        let u32 = try fixture.layout.value("u32")
        try handle.write(UInt32(0x0BAD_F00D), to: u32)
        #expect(try fixture.selfRead(u32, 4) == [0x0D, 0xF0, 0xAD, 0x0B])
    }

    @Test("\"buffer pointer to a user buffer containing the bytes to write.\"")
    func writesTheCallersBuffer() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let pattern = try fixture.layout.region("pattern")
        let source = (0..<300).map { UInt8(truncatingIfNeeded: 255 - $0) }
        let written = try source.withUnsafeBytes { raw in
            try handle.write(UnsafeRawBufferPointer(rebasing: raw[0..<200]), to: pattern.address + 4000)
        }
        #expect(written == 200)
        #expect(try fixture.selfRead(pattern.address + 4000, 200) == Array(source[0..<200]))
        #expect(try fixture.selfRead(pattern.address + 4200, 100) == Conformance.pattern(4200, 100))
    }

    @Test("\"actual_size the actual number of bytes written is stored here. Less bytes than requested may be returned if vaddr+buffer_size extends beyond the memory mapped in the process.\"")
    func partialWriteStopsAtTheHole() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let hole = try fixture.layout.region("hole")
        let holeOffset = Int(try #require(hole.holeOffset))
        let holeEnd = hole.address + UInt64(holeOffset) + (try #require(hole.holeSize))
        let page = Conformance.page

        let bytes = [UInt8](repeating: 0xEE, count: Int(hole.size))
        #expect(try handle.write(bytes, to: hole.address) == holeOffset)
        #expect(try fixture.selfRead(hole.address, holeOffset) == [UInt8](repeating: 0xEE, count: holeOffset))
        #expect(try fixture.selfRead(holeEnd, page) == [UInt8](repeating: 0x12, count: page))

        let transfer = try bytes.withUnsafeBytes { try handle.writeTransfer($0, to: hole.address + 100) }
        #expect(transfer.bytesTransferred == holeOffset - 100)
        #expect(transfer.stop?.code == .notFound)
        #expect(transfer.stop?.address == hole.address + UInt64(holeOffset))
        #expect(transfer.stop?.bytesTransferred == holeOffset - 100)
        #expect(try fixture.selfRead(holeEnd, page) == [UInt8](repeating: 0x12, count: page))
    }

    // MARK: buffer_size bounds

    @Test("\"buffer_size must be greater than zero and less than or equal to 64MB.\" (zero)")
    func zeroSizeIsInvalid() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let pattern = try fixture.layout.region("pattern")
        let error = try #require(throws: ProcessMemoryError.self) { try handle.write([UInt8](), to: pattern.address) }
        #expect(error.code == .invalidArguments)
        #expect(error.bytesTransferred == 0)
        let empty = UnsafeMutableRawBufferPointer.allocate(byteCount: 0, alignment: 1)
        defer { empty.deallocate() }
        let byBuffer = try #require(throws: ProcessMemoryError.self) { try handle.write(UnsafeRawBufferPointer(empty), to: pattern.address) }
        #expect(byBuffer.code == .invalidArguments)
        #expect(try fixture.selfRead(pattern.address, 16) == Conformance.pattern(0, 16))
    }

    // Linux has no 64 MB bound and the core API splits any size, so "greater than 64MB" is not an
    // error here (a Zircon-shaped surface may enforce it). The nearest real case: a write of
    // 64 MiB + 1 page is exact.
    @Test("\"buffer_size must be greater than zero and less than or equal to 64MB.\" (64 MiB + 1 page)")
    func largeWriteIsExact() throws {
        let fixture = try Fixture()
        let size = 64 << 20 + Conformance.page
        let address = try Conformance.map(size, in: fixture)
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ ($0 >> 12)) }
        #expect(try handle.write(bytes, to: address) == size)
        #expect(try fixture.selfRead(address, 4096) == Array(bytes[0..<4096]))
        #expect(try fixture.selfRead(address + UInt64(32 << 20), 4096) == Array(bytes[(32 << 20)..<(32 << 20 + 4096)]))
        #expect(try fixture.selfRead(address + UInt64(size - 8192), 8192) == Array(bytes[(size - 8192)...]))
        #expect(try handle.readExactly(from: address, count: size) == bytes)
    }

    // MARK: errors

    @Test("\"ZX_ERR_ACCESS_DENIED handle does not have the ZX_RIGHT_WRITE right\"")
    func readOnlyHandleIsDenied() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .read)
        let pattern = try fixture.layout.region("pattern")
        let error = try #require(throws: ProcessMemoryError.self) { try handle.write([1, 2, 3, 4], to: pattern.address) }
        #expect(error.code == .accessDenied)
        #expect(error.accessDenial == .handleLacksRight)
        #expect(error.bytesTransferred == 0)
        #expect(try fixture.selfRead(pattern.address, 4) == Conformance.pattern(0, 4))
    }

    @Test("\"handle must be of type ZX_OBJ_TYPE_PROCESS and have ZX_RIGHT_WRITE.\"")
    func writeOnlyHandleWrites() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .write)
        let pattern = try fixture.layout.region("pattern")
        #expect(try handle.write([9, 8, 7], to: pattern.address) == 3)
        #expect(try fixture.selfRead(pattern.address, 3) == [9, 8, 7])
    }

    @Test("\"ZX_ERR_ACCESS_DENIED ... or the address range to write falls into a protected area like the vDSO.\"")
    func vdsoIsDenied() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let vdso = try Conformance.region(.vdso, in: handle)
        let before = try handle.readExactly(from: vdso.start, count: 64)
        let error = try #require(throws: ProcessMemoryError.self) {
            try handle.write([UInt8](repeating: 0xCC, count: 64), to: vdso.start)
        }
        #expect(error.code == .accessDenied)
        #expect(error.address == vdso.start)
        #expect(error.bytesTransferred == 0)
        #expect(error.accessDenial == .protectedMemory("[vdso]"))
        #expect(try handle.readExactly(from: vdso.start, count: 64) == before)
    }

    // A shared mapping without write permission is protected too: a write would change the file.
    @Test("\"ZX_ERR_ACCESS_DENIED ... or the address range to write falls into a protected area like the vDSO.\" (read-only shared file)")
    func readOnlySharedFileIsDenied() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let region = try fixture.layout.region("readOnlySharedFile")
        let before = try fixture.selfRead(region.address, 64)
        let error = try #require(throws: ProcessMemoryError.self) { try handle.write([UInt8](repeating: 1, count: 64), to: region.address) }
        #expect(error.code == .accessDenied)
        #expect(error.address == region.address)
        #expect(error.bytesTransferred == 0)
        #expect(try fixture.selfRead(region.address, 64) == before)
    }

    @Test("\"ZX_ERR_BAD_HANDLE handle is not a valid handle.\"")
    func closedHandleIsBadHandle() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let pattern = try fixture.layout.region("pattern")
        handle.close()
        let error = try #require(throws: ProcessMemoryError.self) { try handle.write([1], to: pattern.address) }
        #expect(error.code == .badHandle)
        #expect(try fixture.selfRead(pattern.address, 1) == Conformance.pattern(0, 1))
    }

    @Test("\"ZX_ERR_BAD_STATE the process's memory is not accessible (e.g., the process is being terminated)\" (zombie)")
    func zombieIsBadState() throws {
        let fixture = try Fixture()
        defer { fixture.reap() }
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let pattern = try fixture.layout.region("pattern")
        fixture.kill()
        fixture.waitForZombie()
        let error = try #require(throws: ProcessMemoryError.self) { try handle.write([1, 2, 3], to: pattern.address) }
        #expect(error.code == .badState)
        #expect(error.bytesTransferred == 0)
    }

    @Test("\"ZX_ERR_BAD_STATE the process's memory is not accessible (e.g., the process is being terminated)\" (reaped)")
    func reapedIsBadState() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let pattern = try fixture.layout.region("pattern")
        fixture.kill()
        fixture.reap()
        let error = try #require(throws: ProcessMemoryError.self) { try handle.write([1, 2, 3], to: pattern.address) }
        #expect(error.code == .badState)
        #expect(error.bytesTransferred == 0)
    }

    // "not cacheable" has no Linux counterpart; the nearest is [vvar] (VM_IO|VM_PFNMAP kernel data),
    // which the library never writes: it is protected memory, refused whole (§13).
    @Test("\"ZX_ERR_BAD_STATE ... or the requested memory is not cacheable.\"")
    func vvarIsRefused() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let vvar = try Conformance.region(.vvar, in: handle)
        let error = try #require(throws: ProcessMemoryError.self) { try handle.write([UInt8](repeating: 0, count: 8), to: vvar.start) }
        #expect(error.code == .accessDenied)
        #expect(error.address == vvar.start)
        #expect(error.bytesTransferred == 0)
    }

    @Test("\"ZX_ERR_INVALID_ARGS buffer is an invalid pointer or NULL\" (NULL)")
    func nullBufferIsInvalid() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let pattern = try fixture.layout.region("pattern")
        let error = try #require(throws: ProcessMemoryError.self) {
            try handle.write(UnsafeRawBufferPointer(start: nil, count: 0), to: pattern.address)
        }
        #expect(error.code == .invalidArguments)
        #expect(error.bytesTransferred == 0)
    }

    @Test("\"ZX_ERR_INVALID_ARGS buffer is an invalid pointer or NULL\" (invalid pointer)")
    func unreadableBufferIsInvalid() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let pattern = try fixture.layout.region("pattern")
        let local = try LocalPages(prot: PROT_NONE)
        let error = try #require(throws: ProcessMemoryError.self) { try handle.write(local.buffer, to: pattern.address) }
        #expect(error.code == .invalidBuffer)
        #expect(error.localAddress == UInt64(UInt(bitPattern: local.base)))
        #expect(error.bytesTransferred == 0)
        #expect(try fixture.selfRead(pattern.address, 64) == Conformance.pattern(0, 64))
    }

    // A range that wraps past 2^64 and an address outside the user address space (at or above
    // 2^47) are rejected before any system call, like a bad size.
    @Test("\"ZX_ERR_INVALID_ARGS buffer is an invalid pointer or NULL, or buffer_size is zero or greater than 64MB.\" (wrapping range, vaddr at or above 2^47)")
    func outOfUserSpaceIsInvalid() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let cases: [(UInt64, Int)] = [(UInt64.max - 10, 100), (UInt64(1) << 47, 8), (Conformance.userLimit, 8), (UInt64(1) << 63, 8)]
        for (address, count) in cases {
            let error = try #require(throws: ProcessMemoryError.self) {
                try handle.write([UInt8](repeating: 0, count: count), to: address)
            }
            #expect(error.code == .invalidArguments, "address 0x\(String(address, radix: 16))")
            #expect(error.bytesTransferred == 0)
        }
    }

    // Newer Zircon says NOT_FOUND here (§13: "Older Zircon returned NO_MEMORY here for writes"); the
    // core API reports the condition as `.notFound`, like reads.
    @Test("\"ZX_ERR_NO_MEMORY the process does not have any memory at the requested address.\"")
    func holeIsNotFound() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let hole = try fixture.layout.region("hole")
        let start = hole.address + (try #require(hole.holeOffset))
        for address in [start, start + 100] {
            let error = try #require(throws: ProcessMemoryError.self) { try handle.write([1, 2, 3, 4], to: address) }
            #expect(error.code == .notFound)
            #expect(error.address == address)
            #expect(error.bytesTransferred == 0)
        }
    }

    // The debugging-syscalls switch has no counterpart in the core API. The nearest Linux switch is
    // the /proc/PID/mem FOLL_FORCE policy (proc_mem.force_override), which decides whether a debugger
    // write may enter a read-only page. It is allowed on this kernel: the write lands privately
    // (copy-on-write), while a protection-respecting write there fails and writes nothing.
    @Test("\"To use the zx_process_write_memory() function, you must specify kernel.enable-debugging-syscalls=true on the kernel command line. Otherwise, the function returns ZX_ERR_NOT_SUPPORTED.\"")
    func forcedWritesFollowTheKernelPolicy() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let readOnly = try fixture.layout.region("readOnly")
        #expect(AddressSpace.forcedWritesAllowed)

        let error = try #require(throws: ProcessMemoryError.self) {
            try handle.write([1, 2, 3, 4], to: readOnly.address + 8, mode: .respectingProtections)
        }
        #expect(error.code == .protectionFailure)
        #expect(error.address == readOnly.address + 8)
        #expect(error.bytesTransferred == 0)
        #expect(try fixture.selfRead(readOnly.address, 16) == [UInt8](repeating: 0x18, count: 16))

        #expect(try handle.write([1, 2, 3, 4], to: readOnly.address + 8, mode: .debugger) == 4)
        #expect(try fixture.selfRead(readOnly.address, 16) == [0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 1, 2, 3, 4, 0x18, 0x18, 0x18, 0x18])
        #expect(try handle.region(containing: readOnly.address)?.permissions == [.read])
    }

    @Test("\"ZX_ERR_NOT_SUPPORTED kernel.enable-debugging-syscalls is not set to true on the kernel command line.\"")
    func notSupportedOnlyWhenForcedWritesAreOff() throws {
        // See forcedWritesFollowTheKernelPolicy: NOT_SUPPORTED is reserved for kernels that forbid
        // FOLL_FORCE writes; on this kernel a debugger write to the code page works.
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let code = fixture.layout.code.address
        let original = try handle.readExactly(from: code, count: 4)
        if AddressSpace.forcedWritesAllowed {
            #expect(try handle.write(original, to: code) == 4)
        } else {
            let error = try #require(throws: ProcessMemoryError.self) { try handle.write(original, to: code) }
            #expect(error.code == .notSupported)
        }
        #expect(try handle.readExactly(from: code, count: 4) == original)
    }

    @Test("\"ZX_ERR_WRONG_TYPE handle is not a process handle.\"")
    func kernelThreadIsWrongType() throws {
        let error = try #require(throws: ProcessMemoryError.self) { try ProcessHandle(pid: 2, rights: .readWrite) }
        #expect(error.code == .wrongType)
        #expect(error.pid == 2)
    }
}
