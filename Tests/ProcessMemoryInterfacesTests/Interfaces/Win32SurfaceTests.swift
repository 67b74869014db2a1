import Foundation
import Glibc
import ProcessMemory
import ProcessMemoryInterfaces
import ProcessMemoryTestSupport
import Testing

// Seed 003 through the Win32 surface: OpenProcess, ReadProcessMemory, WriteProcessMemory,
// CloseHandle and GetLastError.

extension Interfaces {
    @Suite("Win32 surface: ReadProcessMemory (seed 003)")
    struct Win32SurfaceTests {
        /// The outcome of one ReadProcessMemory call.
        struct Read {
            var ok: Bool
            var error: Win32.Error
            var bytesRead: Int
            var bytes: [UInt8]
        }

        /// ReadProcessMemory into a new buffer of `capacity` (default `nSize`) bytes filled with
        /// 0xEE; the last error is reset to ERROR_SUCCESS first.
        static func read(_ handle: Win32.Handle?, _ address: UInt64, _ nSize: Int, capacity: Int? = nil) -> Read {
            var bytes = [UInt8](repeating: 0xEE, count: capacity ?? nSize)
            var bytesRead = -1
            Win32.setLastError(.success)
            let ok = Win32.readProcessMemory(handle, address, &bytes, nSize, &bytesRead)
            return Read(ok: ok, error: Win32.getLastError(), bytesRead: bytesRead, bytes: bytes)
        }

        static func open(_ fixture: Fixture, _ access: Win32.ProcessAccessRights = [.vmRead, .queryInformation]) throws -> Win32.Handle {
            try #require(Win32.openProcess(desiredAccess: access, inheritHandle: false, processId: UInt32(fixture.pid)),
                         "OpenProcess failed: \(Win32.getLastError())")
        }

        // MARK: behaviour

        @Test("\"ReadProcessMemory copies the data in the specified address range from the address space of the specified process into the specified buffer of the current process.\"")
        func copiesTheRange() throws {
            let fixture = try Fixture()
            let handle = try Self.open(fixture)
            let pattern = try fixture.layout.region("pattern")
            let count = Int(pattern.size) - 1000
            let result = Self.read(handle, pattern.address + 1000, count, capacity: count + 100)
            #expect(result.ok)
            #expect(result.bytesRead == count)
            #expect(Array(result.bytes[0..<count]) == Conformance.pattern(1000, count))
            // "nSize The number of bytes to be read": no more.
            #expect(result.bytes[count...].allSatisfy { $0 == 0xEE })
        }

        @Test("\"lpBaseAddress A pointer to the base address in the specified process from which to read.\"")
        func readsFromTheBaseAddress() throws {
            let fixture = try Fixture()
            let handle = try Self.open(fixture)
            var u16: UInt16 = 0
            #expect(Win32.readProcessMemory(handle, try fixture.layout.value("u16"), &u16, 2, nil))
            #expect(u16 == 0xBEEF)
            var f32: Float = 0
            #expect(Win32.readProcessMemory(handle, try fixture.layout.value("f32"), &f32, 4, nil))
            #expect(f32 == 3.25)
            for address in fixture.layout.planted.addresses {
                var value: UInt32 = 0
                #expect(Win32.readProcessMemory(handle, address, &value, 4, nil))
                #expect(value == fixture.layout.planted.value)
            }
        }

        @Test("\"lpNumberOfBytesRead A pointer to a variable that receives the number of bytes transferred into the specified buffer.\"")
        func numberOfBytesRead() throws {
            let fixture = try Fixture()
            let handle = try Self.open(fixture)
            let pattern = try fixture.layout.region("pattern")
            #expect(Self.read(handle, pattern.address, 5555).bytesRead == 5555)
            // After a failure over the target's memory: 0, because the range is verified before
            // any byte is transferred into the buffer, which stays untouched.
            let region = try fixture.layout.region("protNone")
            let failed = Self.read(handle, region.address + 10, Int(region.size) - 10)
            #expect(!failed.ok)
            #expect(failed.bytesRead == 0)
            #expect(failed.bytes.allSatisfy { $0 == 0xEE })
            // nSize 0 succeeds and reports 0.
            let empty = Self.read(handle, pattern.address, 0, capacity: 8)
            #expect(empty.ok)
            #expect(empty.bytesRead == 0)
        }

        @Test("\"If lpNumberOfBytesRead is NULL, the parameter is ignored.\"")
        func nullCountIsIgnored() throws {
            let fixture = try Fixture()
            let handle = try Self.open(fixture)
            let values = try fixture.layout.region("values")
            var bytes = [UInt8](repeating: 0, count: 8)
            #expect(Win32.readProcessMemory(handle, values.address + 24, &bytes, 8, nil))
            #expect(bytes == [0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01])
            let hole = try fixture.layout.region("hole")
            var big = [UInt8](repeating: 0, count: Int(hole.size))
            #expect(!Win32.readProcessMemory(handle, hole.address, &big, big.count, nil))
            #expect(Win32.getLastError() == .partialCopy)
        }

        @Test("\"If the function succeeds, the return value is nonzero.\"")
        func successIsTrue() throws {
            let fixture = try Fixture()
            let handle = try Self.open(fixture)
            let pattern = try fixture.layout.region("pattern")
            var bytes = [UInt8](repeating: 0, count: 64)
            Win32.setLastError(.genFailure)
            #expect(Win32.readProcessMemory(handle, pattern.address, &bytes, 64, nil))
            // A successful call leaves the last error alone, as Win32 functions do.
            #expect(Win32.getLastError() == .genFailure)
            Win32.setLastError(.success)
        }

        @Test("\"If the function fails, the return value is 0 (zero). To get extended error information, call GetLastError.\"")
        func failureSetsThePerThreadLastError() throws {
            let fixture = try Fixture()
            let handle = try Self.open(fixture)
            let hole = try fixture.layout.region("hole")
            let start = hole.address + (try #require(hole.holeOffset))
            let result = Self.read(handle, start, 64)
            #expect(!result.ok)
            #expect(result.error == .partialCopy)
            #expect(result.error.rawValue == 299)
            #expect(result.bytesRead == 0)
            // The last error belongs to the thread: another thread sees its own.
            final class Box: @unchecked Sendable { var seen: [Win32.Error] = [] }
            let box = Box()
            let done = DispatchSemaphore(value: 0)
            let thread = Thread {
                box.seen.append(Win32.getLastError())
                Win32.setLastError(.invalidHandle)
                box.seen.append(Win32.getLastError())
                done.signal()
            }
            thread.start()
            done.wait()
            #expect(box.seen == [.success, .invalidHandle])
            #expect(Win32.getLastError() == .partialCopy)
        }

        // MARK: PROCESS_VM_READ

        @Test("\"hProcess A handle to the process with memory that is being read. The handle must have PROCESS_VM_READ access to the process.\"")
        func handleWithoutVMReadIsDenied() throws {
            let fixture = try Fixture()
            let pattern = try fixture.layout.region("pattern")
            for access: Win32.ProcessAccessRights in [[.queryInformation], [.vmWrite, .vmOperation]] {
                let handle = try Self.open(fixture, access)
                let result = Self.read(handle, pattern.address, 16)
                #expect(!result.ok, "\(access)")
                #expect(result.error == .accessDenied, "\(access)")
                #expect(result.bytesRead == 0)
                #expect(result.bytes.allSatisfy { $0 == 0xEE })
            }
        }

        @Test("\"Any process that has a handle with PROCESS_VM_READ access can call the function.\"")
        func anyVMReadHandleReads() throws {
            let fixture = try Fixture()
            let pattern = try fixture.layout.region("pattern")
            for access: Win32.ProcessAccessRights in [[.vmRead], [.vmRead, .queryInformation], .allAccess] {
                let handle = try Self.open(fixture, access)
                let result = Self.read(handle, pattern.address, 512)
                #expect(result.ok, "\(access)")
                #expect(result.bytes == Conformance.pattern(0, 512))
            }
        }

        @Test("\"hProcess A handle to the process with memory that is being read.\" (NULL or closed handle: ERROR_INVALID_HANDLE)")
        func invalidHandle() throws {
            let fixture = try Fixture()
            let pattern = try fixture.layout.region("pattern")
            let handle = try Self.open(fixture)
            #expect(Win32.closeHandle(handle))
            let closed = Self.read(handle, pattern.address, 16)
            #expect(!closed.ok)
            #expect(closed.error == .invalidHandle)
            #expect(closed.bytesRead == 0)
            #expect(Self.read(nil, pattern.address, 16).error == .invalidHandle)
            Win32.setLastError(.success)
            #expect(!Win32.closeHandle(handle))
            #expect(Win32.getLastError() == .invalidHandle)
            #expect(!Win32.closeHandle(nil))
        }

        // OpenProcess is in the document's "See also"; its failures are those of Windows.
        @Test("\"hProcess A handle to the process with memory that is being read.\" (OpenProcess: no such process, a kernel thread)")
        func openProcessFailures() throws {
            Win32.setLastError(.success)
            #expect(Win32.openProcess(desiredAccess: .vmRead, inheritHandle: false, processId: 0) == nil)
            #expect(Win32.getLastError() == .invalidParameter)
            #expect(Win32.openProcess(desiredAccess: .vmRead, inheritHandle: false, processId: UInt32(Int32.max)) == nil)
            #expect(Win32.getLastError() == .invalidParameter)
            #expect(Win32.openProcess(desiredAccess: .vmRead, inheritHandle: true, processId: 2) == nil)
            #expect(Win32.getLastError() == .accessDenied)
        }

        @Test("\"The handle must have PROCESS_VM_READ access to the process.\" (a terminating process: ERROR_ACCESS_DENIED)")
        func terminatedProcess() throws {
            let fixture = try Fixture()
            let handle = try Self.open(fixture)
            let pattern = try fixture.layout.region("pattern")
            fixture.kill()
            fixture.waitForZombie()
            let result = Self.read(handle, pattern.address, 16)
            #expect(!result.ok)
            #expect(result.error == .accessDenied)
            #expect(result.bytesRead == 0)
            fixture.reap()
            #expect(Win32.openProcess(desiredAccess: .vmRead, inheritHandle: false, processId: UInt32(fixture.pid)) == nil)
        }

        // MARK: all or nothing

        @Test("\"Before any data transfer occurs, the system verifies that all data in the base address and memory of the specified size is accessible for read access, and if it is not accessible the function fails.\"")
        func unmappedTailFails() throws {
            let fixture = try Fixture()
            let handle = try Self.open(fixture)
            let hole = try fixture.layout.region("hole")
            let holeOffset = Int(try #require(hole.holeOffset))
            let across = Self.read(handle, hole.address, Int(hole.size))
            #expect(!across.ok)
            #expect(across.error == .partialCopy)
            #expect(across.bytesRead == 0)
            #expect(across.bytes.allSatisfy { $0 == 0xEE })
            let oneMore = Self.read(handle, hole.address, holeOffset + 1)
            #expect(!oneMore.ok)
            #expect(oneMore.error == .partialCopy)
            let inHole = Self.read(handle, hole.address + UInt64(holeOffset), 16)
            #expect(!inHole.ok)
            #expect(inHole.error == .partialCopy)
            #expect(inHole.bytesRead == 0)
            let exact = Self.read(handle, hole.address, holeOffset)
            #expect(exact.ok)
            #expect(exact.bytes == [UInt8](repeating: 0x10, count: holeOffset))
        }

        @Test("\"The entire area to be read must be accessible, and if it is not accessible, the function fails.\"")
        func inaccessibleAreasFail() throws {
            let fixture = try Fixture()
            let handle = try Self.open(fixture)
            // PROT_NONE (Win32 respects protections), from the start and as a tail.
            let region = try fixture.layout.region("protNone")
            let offset = Int(try #require(region.protNoneOffset))
            for (address, size) in [(region.address, Int(region.size)), (region.address + UInt64(offset), 16)] {
                let result = Self.read(handle, address, size)
                #expect(!result.ok)
                #expect(result.error == .partialCopy)
                #expect(result.bytesRead == 0)
                #expect(result.bytes.allSatisfy { $0 == 0xEE })
            }
            // A file page past the end of the file.
            let file = try fixture.layout.region("truncatedFile")
            let pastEOF = Self.read(handle, file.address, Int(file.size))
            #expect(!pastEOF.ok)
            #expect(pastEOF.error == .partialCopy)
            #expect(pastEOF.bytesRead == 0)
            #expect(pastEOF.bytes.allSatisfy { $0 == 0xEE })
        }

        @Test("\"The function fails if the requested read operation crosses into an area of the process that is inaccessible.\"")
        func crossingIntoInaccessibleFails() throws {
            let fixture = try Fixture()
            let handle = try Self.open(fixture)
            let guardRegion = try fixture.layout.region("guard")
            let guardOffset = Int(try #require(guardRegion.guardOffset))
            let result = Self.read(handle, guardRegion.address, Int(guardRegion.size))
            #expect(!result.ok)
            #expect(result.error == .partialCopy)
            #expect(result.bytesRead == 0)
            #expect(result.bytes.allSatisfy { $0 == 0xEE })
            let core = try ProcessHandle(pid: fixture.pid)
            for address in [try Conformance.region(.vvar, in: core).start, try fixture.layout.region("secret").address] {
                let blocked = Self.read(handle, address, 64)
                #expect(!blocked.ok)
                #expect(blocked.error == .partialCopy)
            }
        }

        // ERROR_NOACCESS is what Windows reports for a range outside the user address space and for a
        // buffer the call cannot store into.
        @Test("\"If the function fails, the return value is 0 (zero).\" (ERROR_NOACCESS: an address outside user space, a NULL or read-only lpBuffer)")
        func noAccess() throws {
            let fixture = try Fixture()
            let handle = try Self.open(fixture)
            let pattern = try fixture.layout.region("pattern")
            for (address, size) in [(UInt64(1) << 47, 8), (UInt64(1) << 63, 8), (UInt64.max - 10, 100)] {
                let result = Self.read(handle, address, size)
                #expect(!result.ok)
                #expect(result.error == .noAccess, "0x\(String(address, radix: 16))")
            }
            Win32.setLastError(.success)
            #expect(!Win32.readProcessMemory(handle, pattern.address, nil, 16, nil))
            #expect(Win32.getLastError() == .noAccess)
            let local = try LocalPages(prot: PROT_READ)
            var count = -1
            #expect(!Win32.readProcessMemory(handle, pattern.address, local.base, 64, &count))
            #expect(Win32.getLastError() == .noAccess)
            #expect(count == 0)
            #expect(local.bytes.allSatisfy { $0 == 0xA5 })
            #expect(!Win32.readProcessMemory(handle, pattern.address, local.base, -1, &count))
            #expect(Win32.getLastError() == .invalidParameter)
        }

        @Test("ERROR_* values are those of winerror.h")
        func errorValues() {
            let values: [(Win32.Error, UInt32)] = [
                (.success, 0), (.accessDenied, 5), (.invalidHandle, 6), (.notEnoughMemory, 8),
                (.invalidParameter, 87), (.partialCopy, 299), (.noAccess, 998),
            ]
            for (error, value) in values { #expect(error.rawValue == value, "\(error)") }
            #expect(Win32.ProcessAccessRights.vmRead.rawValue == 0x10)
            #expect(Win32.ProcessAccessRights.vmWrite.rawValue == 0x20)
            #expect(Win32.ProcessAccessRights.vmOperation.rawValue == 0x08)
            #expect(Win32.ProcessAccessRights.queryInformation.rawValue == 0x400)
        }

        // MARK: WriteProcessMemory (See also)

        @Test("WriteProcessMemory (\"See also\"): needs PROCESS_VM_WRITE and PROCESS_VM_OPERATION, writes all or nothing")
        func writeProcessMemory() throws {
            let fixture = try Fixture()
            let pattern = try fixture.layout.region("pattern")
            let bytes: [UInt8] = [1, 2, 3, 4, 5]
            var written = -1
            // Without both rights: denied.
            for access: Win32.ProcessAccessRights in [[.vmRead, .vmWrite], [.vmRead, .vmOperation]] {
                let handle = try Self.open(fixture, access)
                Win32.setLastError(.success)
                #expect(!Win32.writeProcessMemory(handle, pattern.address, bytes, bytes.count, &written), "\(access)")
                #expect(Win32.getLastError() == .accessDenied)
                #expect(written == 0)
            }
            #expect(try fixture.selfRead(pattern.address, 5) == Conformance.pattern(0, 5))
            let handle = try Self.open(fixture, [.vmWrite, .vmOperation])
            #expect(Win32.writeProcessMemory(handle, pattern.address, bytes, bytes.count, &written))
            #expect(written == 5)
            #expect(try fixture.selfRead(pattern.address, 5) == bytes)
            // All or nothing: a range that runs into a hole writes nothing.
            let hole = try fixture.layout.region("hole")
            let holeOffset = Int(try #require(hole.holeOffset))
            let fill = [UInt8](repeating: 0x77, count: Int(hole.size))
            #expect(!Win32.writeProcessMemory(handle, hole.address, fill, fill.count, &written))
            #expect(Win32.getLastError() == .noAccess)
            #expect(written == 0)
            #expect(try fixture.selfRead(hole.address, holeOffset) == [UInt8](repeating: 0x10, count: holeOffset))
            // Read-only memory is written (Windows makes the page writable for the copy); PROT_NONE
            // (PAGE_NOACCESS) is not, and neither is the vDSO.
            let readOnly = try fixture.layout.region("readOnly")
            #expect(Win32.writeProcessMemory(handle, readOnly.address, bytes, bytes.count, nil))
            #expect(try fixture.selfRead(readOnly.address, 5) == bytes)
            let protNone = try fixture.layout.region("protNone")
            let offset = Int(try #require(protNone.protNoneOffset))
            #expect(!Win32.writeProcessMemory(handle, protNone.address, fill, 2 * page, &written))
            #expect(Win32.getLastError() == .noAccess)
            #expect(written == 0)
            #expect(try fixture.selfRead(protNone.address, offset) == [UInt8](repeating: 0x15, count: offset))
            let vdso = try Conformance.region(.vdso, in: try ProcessHandle(pid: fixture.pid))
            #expect(!Win32.writeProcessMemory(handle, vdso.start, bytes, bytes.count, nil))
            #expect(Win32.getLastError() == .noAccess)
            // A guard page does not show in the map: the write stops there and reports the prefix.
            let guardRegion = try fixture.layout.region("guard")
            let guardOffset = Int(try #require(guardRegion.guardOffset))
            #expect(!Win32.writeProcessMemory(handle, guardRegion.address, fill, 2 * page, &written))
            #expect(Win32.getLastError() == .partialCopy)
            #expect(written == guardOffset)
        }
    }
}
