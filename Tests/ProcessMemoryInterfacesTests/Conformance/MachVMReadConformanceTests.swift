import Glibc
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryDumps
@testable import ProcessMemoryObjects
@testable import ProcessMemoryScanning
import ProcessMemory

// Conformance with seed 002, Mach vm_read / vm_read_overwrite, through the core API.
//
// Mach respects page protections, so the Linux counterpart is `ReadMode.respectingProtections`
// (process_vm_readv). `vm_read` is `read(from:count:)` (a new array), `vm_read_overwrite` is a read
// into a caller buffer, and `data_count` is `readTransfer(...).bytesTransferred`.
// KERN_PROTECTION_FAILURE is `.protectionFailure`; KERN_INVALID_ADDRESS is `.notFound` for unmapped
// memory, `.invalidArguments` for an illegal address and `.invalidBuffer` for an unwritable `data_in`.
@Suite("Conformance: Mach vm_read / vm_read_overwrite (seed 002)")
struct MachVMReadConformanceTests {
    let mode = ReadMode.respectingProtections

    // MARK: behaviour

    @Test("\"The vm_read function returns the data in a dynamically allocated array of bytes\"")
    func vmReadReturnsANewArray() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        let bytes = try handle.readExactly(from: pattern.address + 123, count: 3 * Conformance.page, mode: mode)
        #expect(bytes.count == 3 * Conformance.page)
        #expect(bytes == Conformance.pattern(123, 3 * Conformance.page))
        let partial = try handle.read(from: pattern.address, count: 4096, mode: mode)
        #expect(partial == Conformance.pattern(0, 4096))
    }

    @Test("\"the vm_read_overwrite function places the data into a caller-specified buffer (the data_in parameter).\"")
    func vmReadOverwriteFillsTheCallersBuffer() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        let (count, bytes) = try withBuffer(8192, fill: 0xEE) { buffer in
            try handle.read(from: pattern.address + 7, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<5000]), mode: mode)
        }
        #expect(count == 5000)
        #expect(Array(bytes[0..<5000]) == Conformance.pattern(7, 5000))
        #expect(bytes[5000...].allSatisfy { $0 == 0xEE })
    }

    @Test("\"data_count [in/out scalar] On input, the maximum size of the buffer; on output, the size returned\"")
    func dataCountIsTheSizeReturned() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        let (full, bytes) = try withBuffer(10_000) { try handle.readTransfer(from: pattern.address, into: $0, mode: mode) }
        #expect(full.bytesTransferred == 10_000)
        #expect(full.isComplete)
        #expect(bytes == Conformance.pattern(0, 10_000))

        let hole = try fixture.layout.region("hole")
        let holeOffset = Int(try #require(hole.holeOffset))
        let (short, _) = try withBuffer(Int(hole.size)) { try handle.readTransfer(from: hole.address, into: $0, mode: mode) }
        #expect(short.bytesTransferred == holeOffset)
        #expect(short.stop?.code == .notFound)
    }

    @Test("\"they enable tasks to read other tasks' memory\"")
    func readsAnotherProcessesMemory() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        #expect(fixture.pid != getpid())
        #expect(try handle.read(UInt64.self, from: fixture.layout.value("u64"), mode: mode) == 0x0123_4567_89AB_CDEF)
        #expect(try handle.readCString(from: fixture.layout.value("cstring"), mode: mode) == "procmem fixture says hello")
    }

    @Test("\"This interface is machine word length specific because of the virtual address parameter.\"")
    func addressesAreFullWidth() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        // The fixture's arena lies far above 4 GiB: a 32-bit address could not reach it.
        #expect(pattern.address > UInt64(UInt32.max))
        #expect(try handle.readExactly(from: pattern.address, count: 16, mode: mode) == Conformance.pattern(0, 16))
    }

    // MARK: KERN_PROTECTION_FAILURE

    @Test("\"KERN_PROTECTION_FAILURE Specified memory is valid, but does not permit reading.\" (PROT_NONE)")
    func protNoneIsProtectionFailure() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let region = try fixture.layout.region("protNone")
        let offset = Int(try #require(region.protNoneOffset))
        let start = region.address + UInt64(offset)
        let error = try #require(throws: ProcessMemoryError.self) { try handle.read(from: start, count: 64, mode: mode) }
        #expect(error.code == .protectionFailure)
        #expect(error.address == start)
        #expect(error.bytesTransferred == 0)

        let across = try #require(throws: ProcessMemoryError.self) {
            try handle.readExactly(from: region.address, count: Int(region.size), mode: mode)
        }
        #expect(across.code == .protectionFailure)
        #expect(across.address == start)
        #expect(across.bytesTransferred == offset)
    }

    @Test("\"KERN_PROTECTION_FAILURE Specified memory is valid, but does not permit reading.\" (guard page)")
    func guardPageIsProtectionFailure() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let region = try fixture.layout.region("guard")
        let start = region.address + (try #require(region.guardOffset))
        let error = try #require(throws: ProcessMemoryError.self) { try handle.read(from: start, count: 64, mode: mode) }
        #expect(error.code == .protectionFailure)
        #expect(error.address == start)
        #expect(error.bytesTransferred == 0)
    }

    @Test("\"KERN_PROTECTION_FAILURE Specified memory is valid, but does not permit reading.\" ([vvar])")
    func vvarIsProtectionFailure() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let vvar = try Conformance.region(.vvar, in: handle)
        #expect(vvar.permissions.contains(.read))
        let error = try #require(throws: ProcessMemoryError.self) { try handle.read(from: vvar.start, count: 64, mode: mode) }
        #expect(error.code == .protectionFailure)
        #expect(error.address == vvar.start)
        #expect(error.bytesTransferred == 0)
    }

    @Test("\"KERN_PROTECTION_FAILURE Specified memory is valid, but does not permit reading.\" (secret memory)")
    func secretMemoryIsProtectionFailure() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let secret = try fixture.layout.region("secret")
        let error = try #require(throws: ProcessMemoryError.self) { try handle.read(from: secret.address, count: 64, mode: mode) }
        #expect(error.code == .protectionFailure)
        #expect(error.address == secret.address)
        #expect(error.bytesTransferred == 0)
    }

    // MARK: KERN_INVALID_ADDRESS

    @Test("\"KERN_INVALID_ADDRESS The address is illegal\"")
    func illegalAddressIsInvalid() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let cases: [(UInt64, Int)] = [(UInt64(1) << 47, 8), (Conformance.userLimit, 8), (UInt64(1) << 63, 8), (UInt64.max - 10, 100)]
        for (address, count) in cases {
            let error = try #require(throws: ProcessMemoryError.self) { try handle.read(from: address, count: count, mode: mode) }
            #expect(error.code == .invalidArguments, "address 0x\(String(address, radix: 16))")
            #expect(error.bytesTransferred == 0)
        }
    }

    @Test("\"KERN_INVALID_ADDRESS The address is illegal or specifies a non-allocated region\"")
    func unmappedIsNotFound() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let hole = try fixture.layout.region("hole")
        let start = hole.address + (try #require(hole.holeOffset))
        for address in [start, start + 100] {
            let error = try #require(throws: ProcessMemoryError.self) { try handle.read(from: address, count: 16, mode: mode) }
            #expect(error.code == .notFound)
            #expect(error.address == address)
            #expect(error.bytesTransferred == 0)
        }
    }

    @Test("\"or there are less than size bytes of data following the address\"")
    func shortDataIsAnError() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let hole = try fixture.layout.region("hole")
        let holeOffset = Int(try #require(hole.holeOffset))
        let failing = hole.address + UInt64(holeOffset)

        let intoArray = try #require(throws: ProcessMemoryError.self) {
            try handle.readExactly(from: hole.address, count: Int(hole.size), mode: mode)
        }
        #expect(intoArray.code == .notFound)
        #expect(intoArray.address == failing)
        #expect(intoArray.bytesTransferred == holeOffset)

        let intoBuffer = try #require(throws: ProcessMemoryError.self) {
            _ = try withBuffer(holeOffset) { try handle.readExactly(from: hole.address + 100, into: $0, mode: mode) }
        }
        #expect(intoBuffer.code == .notFound)
        #expect(intoBuffer.address == failing)
        #expect(intoBuffer.bytesTransferred == holeOffset - 100)
    }

    @Test("\"or the region specified by the data_in parameter cannot be written to.\"", arguments: ReadMode.allCases)
    func unwritableDataInIsInvalid(readMode: ReadMode) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        let local = try LocalPages(prot: PROT_READ)
        let error = try #require(throws: ProcessMemoryError.self) {
            try handle.read(from: pattern.address, into: local.mutableBuffer, mode: readMode)
        }
        #expect(error.code == .invalidBuffer)
        #expect(error.localAddress == UInt64(UInt(bitPattern: local.base)))
        #expect(error.bytesTransferred == 0)
        #expect(local.bytes.allSatisfy { $0 == 0xA5 })
    }
}
