import Glibc
import SystemPackage
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryDumps
@testable import ProcessMemoryObjects
@testable import ProcessMemoryScanning
import ProcessMemory

// Conformance with seed 003, Win32 ReadProcessMemory, through the core API.
//
// ReadProcessMemory respects page protections and is all-or-nothing, so the Linux counterpart is
// `readExactly(..., mode: .respectingProtections)` (process_vm_readv). PROCESS_VM_READ is the
// handle's `.read` right, and the error's `bytesTransferred` is the analogue of
// `*lpNumberOfBytesRead` after a failure (ERROR_PARTIAL_COPY).
@Suite("Conformance: Win32 ReadProcessMemory (seed 003)")
struct Win32ReadProcessMemoryConformanceTests {
    let mode = ReadMode.respectingProtections

    // MARK: behaviour

    @Test("\"ReadProcessMemory copies the data in the specified address range from the address space of the specified process into the specified buffer of the current process.\"")
    func copiesTheRangeIntoTheBuffer() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        let count = Int(pattern.size) - 1000
        // nSize bytes are copied, no more: the rest of a larger buffer is untouched.
        let (_, bytes) = try withBuffer(count + 100, fill: 0xEE) { buffer in
            try handle.readExactly(from: pattern.address + 1000, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]), mode: mode)
        }
        #expect(Array(bytes[0..<count]) == Conformance.pattern(1000, count))
        #expect(bytes[count...].allSatisfy { $0 == 0xEE })
    }

    @Test("\"lpBaseAddress A pointer to the base address in the specified process from which to read.\"")
    func readsFromTheBaseAddress() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        #expect(try handle.read(UInt16.self, from: fixture.layout.value("u16"), mode: mode) == 0xBEEF)
        #expect(try handle.read(Int32.self, from: fixture.layout.value("i32"), mode: mode) == -123_456_789)
        #expect(try handle.read(Float.self, from: fixture.layout.value("f32"), mode: mode) == 3.25)
        let planted = fixture.layout.planted
        for address in planted.addresses {
            #expect(try handle.read(UInt32.self, from: address, mode: mode) == planted.value)
        }
    }

    @Test("\"lpNumberOfBytesRead A pointer to a variable that receives the number of bytes transferred into the specified buffer.\"")
    func numberOfBytesRead() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        let (transfer, _) = try withBuffer(5555) { try handle.readTransfer(from: pattern.address, into: $0, mode: mode) }
        #expect(transfer.bytesTransferred == 5555)
        #expect(transfer.isComplete)

        // After a failure (ERROR_PARTIAL_COPY) it is the count of bytes before the inaccessible page.
        let region = try fixture.layout.region("protNone")
        let offset = Int(try #require(region.protNoneOffset))
        let error = try #require(throws: ProcessMemoryError.self) {
            try handle.readExactly(from: region.address + 10, count: Int(region.size) - 10, mode: mode)
        }
        #expect(error.bytesTransferred == offset - 10)
    }

    @Test("\"If the function succeeds, the return value is nonzero.\" / \"If lpNumberOfBytesRead is NULL, the parameter is ignored.\"")
    func successNeedsNoCount() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let values = try fixture.layout.region("values")
        let (_, bytes) = try withBuffer(8) { try handle.readExactly(from: values.address + 24, into: $0, mode: mode) }
        #expect(bytes == [0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01])
    }

    @Test("\"If the function fails, the return value is 0 (zero). To get extended error information, call GetLastError.\"")
    func failureCarriesExtendedInformation() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let hole = try fixture.layout.region("hole")
        let start = hole.address + (try #require(hole.holeOffset))
        let error = try #require(throws: ProcessMemoryError.self) { try handle.readExactly(from: start, count: 64, mode: mode) }
        #expect(error.code == .notFound)
        #expect(error.pid == fixture.pid)
        #expect(error.address == start)
        #expect(error.bytesTransferred == 0)
        #expect(error.systemCall?.name == .processVMReadv)
        #expect(error.errno == .badAddress)
        #expect(!error.message.isEmpty)
    }

    // MARK: PROCESS_VM_READ

    @Test("\"The handle must have PROCESS_VM_READ access to the process.\"")
    func handleWithoutReadRightIsDenied() throws {
        let fixture = try Fixture()
        let pattern = try fixture.layout.region("pattern")
        let writeOnly = try ProcessHandle(pid: fixture.pid, rights: .write)
        let error = try #require(throws: ProcessMemoryError.self) { try writeOnly.readExactly(from: pattern.address, count: 16, mode: mode) }
        #expect(error.code == .accessDenied)
        #expect(error.accessDenial == .handleLacksRight)
        #expect(error.bytesTransferred == 0)

        let duplicate = try ProcessHandle(pid: fixture.pid, rights: .readWrite).duplicate(rights: .write)
        let dropped = try #require(throws: ProcessMemoryError.self) { try duplicate.readExactly(from: pattern.address, count: 16, mode: mode) }
        #expect(dropped.code == .accessDenied)
        #expect(dropped.accessDenial == .handleLacksRight)
    }

    @Test("\"Any process that has a handle with PROCESS_VM_READ access can call the function.\"")
    func anyHandleWithReadRightReads() throws {
        let fixture = try Fixture()
        let pattern = try fixture.layout.region("pattern")
        let readWrite = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let readOnly = try readWrite.duplicate(rights: .read)
        #expect(readOnly.rights == .read)
        let handles = [try ProcessHandle(pid: fixture.pid, rights: .read), readWrite, readOnly]
        for handle in handles {
            #expect(try handle.readExactly(from: pattern.address, count: 512, mode: mode) == Conformance.pattern(0, 512), "\(handle.rights)")
        }
    }

    // MARK: all-or-nothing

    @Test("\"Before any data transfer occurs, the system verifies that all data in the base address and memory of the specified size is accessible for read access, and if it is not accessible the function fails.\"")
    func unmappedTailFails() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let hole = try fixture.layout.region("hole")
        let holeOffset = Int(try #require(hole.holeOffset))
        let error = try #require(throws: ProcessMemoryError.self) {
            try handle.readExactly(from: hole.address, count: Int(hole.size), mode: mode)
        }
        #expect(error.code == .notFound)
        #expect(error.address == hole.address + UInt64(holeOffset))
        #expect(error.bytesTransferred == holeOffset)
        // One byte past the readable part is enough to fail.
        let oneMore = try #require(throws: ProcessMemoryError.self) {
            try handle.readExactly(from: hole.address, count: holeOffset + 1, mode: mode)
        }
        #expect(oneMore.code == .notFound)
        #expect(oneMore.bytesTransferred == holeOffset)
        // Exactly the readable part succeeds.
        #expect(try handle.readExactly(from: hole.address, count: holeOffset, mode: mode) == [UInt8](repeating: 0x10, count: holeOffset))
    }

    @Test("\"The entire area to be read must be accessible, and if it is not accessible, the function fails.\"")
    func protNoneTailFails() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let region = try fixture.layout.region("protNone")
        let offset = Int(try #require(region.protNoneOffset))
        let error = try #require(throws: ProcessMemoryError.self) {
            try handle.readExactly(from: region.address, count: Int(region.size), mode: mode)
        }
        #expect(error.code == .protectionFailure)
        #expect(error.address == region.address + UInt64(offset))
        #expect(error.bytesTransferred == offset)
        #expect(try handle.readExactly(from: region.address, count: offset, mode: mode) == [UInt8](repeating: 0x15, count: offset))
    }

    @Test("\"The function fails if the requested read operation crosses into an area of the process that is inaccessible.\"")
    func guardPageInTheMiddleFails() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let region = try fixture.layout.region("guard")
        let guardOffset = Int(try #require(region.guardOffset))
        for readMode in ReadMode.allCases {
            let error = try #require(throws: ProcessMemoryError.self) {
                try handle.readExactly(from: region.address, count: Int(region.size), mode: readMode)
            }
            #expect(error.code == .protectionFailure, "\(readMode)")
            #expect(error.address == region.address + UInt64(guardOffset), "\(readMode)")
            #expect(error.bytesTransferred == guardOffset, "\(readMode)")
        }
        // The pages on either side of the guard page are readable.
        let page = Conformance.page
        #expect(try handle.readExactly(from: region.address, count: guardOffset, mode: mode) == [UInt8](repeating: 0x1A, count: guardOffset))
        #expect(try handle.readExactly(from: region.address + UInt64(guardOffset + page), count: page, mode: mode) == [UInt8](repeating: 0x1C, count: page))
    }
}
