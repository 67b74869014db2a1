import Foundation
import Glibc
import ProcessMemory
import ProcessMemoryInterfaces
import ProcessMemoryTestSupport
import Testing

// Seeds 000 and 001 through the Zircon surface: Zircon.processReadMemory / processWriteMemory.
// Every status, `actual` value and buffer byte is checked as a Zircon caller sees it.

extension Interfaces {
    @Suite("Zircon surface: zx_process_read_memory (seed 000)")
    struct ZirconReadSurfaceTests {
        // MARK: behaviour

        @Test("\"zx_process_read_memory() attempts to read memory of the specified process.\" / \"zx_process_read_memory() returns ZX_OK on success.\"")
        func readsTheProcessMemory() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let pattern = try fixture.layout.region("pattern")
            let all = zxRead(handle, pattern.address, Int(pattern.size))
            #expect(all.status == .ok)
            #expect(all.status.rawValue == 0)
            #expect(all.actual == Int(pattern.size))
            #expect(all.bytes == Conformance.pattern(0, Int(pattern.size)))
            let u32 = zxRead(handle, try fixture.layout.value("u32"), 4)
            #expect(u32.status == .ok)
            #expect(u32.bytes == [0xEF, 0xBE, 0xAD, 0xDE])
        }

        @Test("\"vaddr the address of the block of memory to read.\"")
        func readsAtVaddr() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let pattern = try fixture.layout.region("pattern")
            let result = zxRead(handle, pattern.address + 5000, 300)
            #expect(result.status == .ok)
            #expect(result.actual == 300)
            #expect(result.bytes == Conformance.pattern(5000, 300))
        }

        @Test("\"buffer pointer to a user buffer to read bytes into.\" / \"buffer buffer must be large enough for at least this many bytes.\"")
        func readsIntoTheBuffer() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let pattern = try fixture.layout.region("pattern")
            // A 100-byte buffer inside a 200-byte array: only those 100 bytes change.
            var bytes = [UInt8](repeating: 0xEE, count: 200)
            var actual = -1
            let status = bytes.withUnsafeMutableBytes { raw in
                Zircon.processReadMemory(handle, vaddr: pattern.address + 10,
                                         buffer: UnsafeMutableRawBufferPointer(rebasing: raw[0..<100]), actual: &actual)
            }
            #expect(status == .ok)
            #expect(actual == 100)
            #expect(Array(bytes[0..<100]) == Conformance.pattern(10, 100))
            #expect(bytes[100...].allSatisfy { $0 == 0xEE })
        }

        // Zircon reads go through the VMO and ignore the mapping's protection (§13): PROT_NONE and
        // read-only memory is read, with its real contents.
        @Test("\"zx_process_read_memory() attempts to read memory of the specified process.\" (PROT_NONE and read-only pages included)")
        func readsIgnoreProtections() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let protNone = try fixture.layout.region("protNone")
            let offset = try #require(protNone.protNoneOffset)
            let none = zxRead(handle, protNone.address + offset, page)
            #expect(none.status == .ok)
            #expect(none.actual == page)
            #expect(none.bytes == [UInt8](repeating: 0x16, count: page))
            let readOnly = try fixture.layout.region("readOnly")
            let ro = zxRead(handle, readOnly.address, page)
            #expect(ro.status == .ok)
            #expect(ro.bytes == [UInt8](repeating: 0x18, count: page))
        }

        // MARK: actual and partial reads

        @Test("\"actual the actual number of bytes read is stored here. Less bytes than requested may be returned if vaddr+buffer_size extends beyond the memory mapped in the process.\"")
        func partialReadAtTheEndOfTheMemory() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let hole = try fixture.layout.region("hole")
            let holeOffset = Int(try #require(hole.holeOffset))
            let whole = zxRead(handle, hole.address, Int(hole.size))
            #expect(whole.status == .ok)
            #expect(whole.actual == holeOffset)
            #expect(Array(whole.bytes[0..<holeOffset]) == [UInt8](repeating: 0x10, count: holeOffset))
            let inside = zxRead(handle, hole.address + 100, Int(hole.size))
            #expect(inside.status == .ok)
            #expect(inside.actual == holeOffset - 100)
        }

        // The Zircon kernel clamps the transfer to the single mapping containing vaddr
        // (linux-semantics.md §13), even when the next mapping is adjacent and readable.
        @Test("\"Less bytes than requested may be returned if vaddr+buffer_size extends beyond the memory mapped in the process.\" (stops at the end of the mapping containing vaddr, even before an adjacent readable mapping)")
        func partialReadStopsAtTheMappingEnd() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let address = try adjacentMappings(in: fixture)
            let first = zxRead(handle, address, 4 * page)
            #expect(first.status == .ok)
            #expect(first.actual == 2 * page)
            #expect(Array(first.bytes[0..<(2 * page)]) == [UInt8](repeating: 0x33, count: 2 * page))
            #expect(first.bytes[(2 * page)...].allSatisfy { $0 == 0xEE })
            let second = zxRead(handle, address + UInt64(2 * page), 4 * page)
            #expect(second.status == .ok)
            #expect(second.actual == 2 * page)

            // rw- then PROT_NONE: the read stops at the first mapping's end, not because of PROT_NONE.
            let protNone = try fixture.layout.region("protNone")
            let offset = Int(try #require(protNone.protNoneOffset))
            let split = zxRead(handle, protNone.address + 100, Int(protNone.size))
            #expect(split.status == .ok)
            #expect(split.actual == offset - 100)

            // Inside one mapping the read stops at a guard page.
            let guardRegion = try fixture.layout.region("guard")
            let guarded = zxRead(handle, guardRegion.address, Int(guardRegion.size))
            #expect(guarded.status == .ok)
            #expect(guarded.actual == Int(try #require(guardRegion.guardOffset)))
        }

        // MARK: buffer_size

        @Test("\"buffer_size must be greater than zero and less than or equal to 64MB.\" (exactly 64 MiB is read)")
        func sixtyFourMebibytesAreRead() throws {
            #expect(Zircon.maxDebugBlockSize == 64 * 1024 * 1024)
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let address = try Conformance.map(Zircon.maxDebugBlockSize + page, in: fixture)
            let result = zxRead(handle, address, Zircon.maxDebugBlockSize)
            #expect(result.status == .ok)
            #expect(result.actual == Zircon.maxDebugBlockSize)
            #expect(allEqual(result.bytes, 0x33))
        }

        @Test("\"ZX_ERR_INVALID_ARGS buffer is an invalid pointer or NULL, or buffer_size is zero or greater than 64MB.\"")
        func invalidArguments() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let pattern = try fixture.layout.region("pattern")
            var actual = -1
            #expect(Zircon.processReadMemory(handle, vaddr: pattern.address, buffer: nil, actual: &actual) == .invalidArgs)
            #expect(Zircon.processReadMemory(handle, vaddr: pattern.address,
                                             buffer: UnsafeMutableRawBufferPointer(start: nil, count: 0), actual: &actual) == .invalidArgs)
            #expect(zxRead(handle, pattern.address, 0).status == .invalidArgs)
            let tooBig = zxRead(handle, pattern.address, Zircon.maxDebugBlockSize + 1)
            #expect(tooBig.status == .invalidArgs)
            #expect(tooBig.actual == -1)
            #expect(allEqual(tooBig.bytes, 0xEE))
            // An invalid pointer: a buffer this process cannot write.
            let local = try LocalPages(prot: PROT_READ)
            #expect(Zircon.processReadMemory(handle, vaddr: pattern.address, buffer: local.mutableBuffer, actual: &actual) == .invalidArgs)
            #expect(local.bytes.allSatisfy { $0 == 0xA5 })
            #expect(actual == -1)
            // The arguments are checked before the handle.
            #expect(Zircon.processReadMemory(.invalid, vaddr: pattern.address, buffer: nil, actual: &actual) == .invalidArgs)
        }

        // MARK: rights

        @Test("\"handle must be of type ZX_OBJ_TYPE_PROCESS and have ZX_RIGHT_READ and have ZX_RIGHT_WRITE.\"")
        func readAndWriteRightsSuffice() throws {
            let fixture = try Fixture()
            let full = try zxHandle(fixture)
            var handle: Zircon.Handle?
            #expect(Zircon.handleDuplicate(full, rights: [.read, .write], &handle) == .ok)
            let minimal = try #require(handle)
            #expect(minimal.rights == [.read, .write])
            #expect(minimal.objectType == .process)
            let pattern = try fixture.layout.region("pattern")
            let result = zxRead(minimal, pattern.address, 256)
            #expect(result.status == .ok)
            #expect(result.bytes == Conformance.pattern(0, 256))
        }

        @Test("\"ZX_ERR_ACCESS_DENIED handle does not have the ZX_RIGHT_READ right\"")
        func withoutReadRightIsDenied() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture, rights: Zircon.Rights.defaultProcess.subtracting(.read))
            let pattern = try fixture.layout.region("pattern")
            let result = zxRead(handle, pattern.address, 64)
            #expect(result.status == .accessDenied)
            #expect(result.actual == -1)
            #expect(result.bytes.allSatisfy { $0 == 0xEE })
        }

        @Test("\"or ZX_WRITE_RIGHT is needed for historical reasons.\"")
        func withoutWriteRightIsDenied() throws {
            let fixture = try Fixture()
            // The core handle underneath can read; the Zircon rule still needs ZX_RIGHT_WRITE.
            let core = try ProcessHandle(pid: fixture.pid, rights: .read)
            let handle = Zircon.Handle(process: core, rights: Zircon.Rights.defaultProcess.subtracting(.write))
            let pattern = try fixture.layout.region("pattern")
            let result = zxRead(handle, pattern.address, 64)
            #expect(result.status == .accessDenied)
            #expect(result.actual == -1)
            #expect(result.bytes.allSatisfy { $0 == 0xEE })
            #expect(try core.read(from: pattern.address, count: 64) == Conformance.pattern(0, 64))
        }

        // MARK: handles

        @Test("\"ZX_ERR_BAD_HANDLE handle is not a valid handle.\"")
        func invalidHandleIsBadHandle() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let pattern = try fixture.layout.region("pattern")
            var duplicate: Zircon.Handle?
            #expect(handle.duplicate(&duplicate) == .ok)
            #expect(Zircon.handleClose(handle) == .ok)
            let closed = zxRead(handle, pattern.address, 16)
            #expect(closed.status == .badHandle)
            #expect(closed.actual == -1)
            #expect(zxRead(.invalid, pattern.address, 16).status == .badHandle)
            #expect(Zircon.handleClose(handle) == .badHandle)
            #expect(Zircon.handleClose(.invalid) == .ok)
            // The process object lives on through the duplicate.
            #expect(zxRead(try #require(duplicate), pattern.address, 16).status == .ok)
        }

        @Test("\"ZX_ERR_WRONG_TYPE handle is not a process handle.\"")
        func nonProcessHandleIsWrongType() throws {
            let fixture = try Fixture()
            let pattern = try fixture.layout.region("pattern")
            let event = Zircon.Handle.event()
            #expect(event.objectType == .event)
            // The type is checked before the rights (an event has no READ or WRITE right).
            #expect(zxRead(event, pattern.address, 16).status == .wrongType)
            // pid 2 (kthreadd) is a kernel thread: a thread, not a process.
            let thread = try Zircon.Handle.open(koid: 2)
            #expect(thread.objectType == .thread)
            let result = zxRead(thread, 0x1000, 16)
            #expect(result.status == .wrongType)
            #expect(result.actual == -1)
        }

        // MARK: process state

        @Test("\"ZX_ERR_BAD_STATE the process's memory is not accessible (e.g., the process is being terminated)\"")
        func terminatedProcessIsBadState() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let pattern = try fixture.layout.region("pattern")
            fixture.kill()
            fixture.waitForZombie()
            let zombie = zxRead(handle, pattern.address, 16)
            #expect(zombie.status == .badState)
            #expect(zombie.actual == -1)
            fixture.reap()
            #expect(zxRead(handle, pattern.address, 16).status == .badState)
        }

        // Zircon has no exec; after an exec the address space the handle named is gone.
        @Test("\"ZX_ERR_BAD_STATE the process's memory is not accessible\" (after execve)")
        func execedProcessIsBadState() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let pattern = try fixture.layout.region("pattern")
            try execSleep(fixture)
            defer { fixture.kill(); fixture.reap() }
            let result = zxRead(handle, pattern.address, 16)
            #expect(result.status == .badState)
            #expect(result.actual == -1)
        }

        // Linux has no uncached user memory these paths can reach; the nearest is memory mapped into
        // the process that no other process can read: [vvar] (VM_IO|VM_PFNMAP kernel data) and
        // secret memory (removed from the kernel's direct map).
        @Test("\"or the requested memory is not cacheable.\"")
        func unreachableMemoryIsBadState() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let core = try ProcessHandle(pid: fixture.pid)
            let vvar = try Conformance.region(.vvar, in: core)
            let result = zxRead(handle, vvar.start, 64)
            #expect(result.status == .badState)
            #expect(result.actual == -1)
            let secret = try fixture.layout.region("secret")
            #expect(zxRead(handle, secret.address, 64).status == .badState)
        }

        // MARK: NOT_FOUND and OUT_OF_RANGE

        @Test("\"ZX_ERR_NOT_FOUND if the process does not have any memory at the requested address\"")
        func unmappedIsNotFound() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let hole = try fixture.layout.region("hole")
            let start = hole.address + (try #require(hole.holeOffset))
            // A hole, addresses outside the user address space, and [vsyscall] (not a mapping).
            for address in [start, start + 100, UInt64(1) << 47, UInt64(1) << 63, 0xFFFF_FFFF_FF60_0000] {
                let result = zxRead(handle, address, 16)
                #expect(result.status == .notFound, "0x\(String(address, radix: 16))")
                #expect(result.actual == -1)
            }
        }

        @Test("\"or ZX_ERR_OUT_OF_RANGE if the offset corresponding to vaddr within the mapped VMO is greater than or equal to the VMO size.\"")
        func pastTheObjectIsOutOfRange() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            for name in ["truncatedFile", "memfd"] {
                let region = try fixture.layout.region(name)
                for offset in [UInt64(2 * page), UInt64(3 * page + 10)] {
                    let result = zxRead(handle, region.address + offset, 16)
                    #expect(result.status == .outOfRange, "\(name) +\(offset)")
                    #expect(result.actual == -1)
                }
                // A read that starts inside the object stops at the end of its last page; the bytes
                // past the object's end in that page read as 0.
                let first: UInt8 = name == "memfd" ? 0xC0 : 0xB0
                let result = zxRead(handle, region.address, Int(region.size))
                #expect(result.status == .ok)
                #expect(result.actual == 2 * page, "\(name)")
                #expect(Array(result.bytes[0..<page]) == [UInt8](repeating: first, count: page))
                #expect(result.bytes[6144..<(2 * page)].allSatisfy { $0 == 0 })
            }
        }

        // A page fault at a Linux guard page is refused exactly as at a hole (/proc/PID/mem and
        // PTRACE_PEEKDATA both say EIO there, linux-semantics.md §1 5c), so it is NOT_FOUND too.
        @Test("\"These error codes are consistent with the error code that would be generated by a page fault at the same address\"")
        func guardPageIsNotFound() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let guardRegion = try fixture.layout.region("guard")
            let result = zxRead(handle, guardRegion.address + (try #require(guardRegion.guardOffset)), 16)
            #expect(result.status == .notFound)
            #expect(result.actual == -1)
        }

        @Test("\"In the event of failure, a negative error value is returned, and the number of bytes written to buffer is undefined.\"")
        func failuresAreNegative() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let hole = try fixture.layout.region("hole")
            let start = hole.address + (try #require(hole.holeOffset))
            var actual = 12345
            var bytes = [UInt8](repeating: 0, count: 16)
            let status = bytes.withUnsafeMutableBytes { Zircon.processReadMemory(handle, vaddr: start, buffer: $0, actual: &actual) }
            #expect(status.rawValue < 0)
            #expect(status.name == "ZX_ERR_NOT_FOUND")
            #expect(actual == 12345)
        }
    }

    @Suite("Zircon surface: zx_process_write_memory (seed 001)")
    struct ZirconWriteSurfaceTests {
        // MARK: behaviour

        @Test("\"zx_process_write_memory() attempts to write memory of the specified process.\" / \"vaddr the address of the block of memory to write.\"")
        func writesTheProcessMemory() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let pattern = try fixture.layout.region("pattern")
            let bytes: [UInt8] = [0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03]
            let result = zxWrite(handle, pattern.address + 100, bytes)
            #expect(result.status == .ok)
            #expect(result.actual == bytes.count)
            #expect(try fixture.selfRead(pattern.address + 100, bytes.count) == bytes)
            #expect(try fixture.selfRead(pattern.address + 90, 10) == Conformance.pattern(90, 10))
            #expect(try fixture.selfRead(pattern.address + 107, 10) == Conformance.pattern(107, 10))
        }

        @Test("\"buffer pointer to a user buffer containing the bytes to write.\"")
        func writesTheCallersBuffer() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let pattern = try fixture.layout.region("pattern")
            let source = (0..<300).map { UInt8(truncatingIfNeeded: 255 - $0) }
            var actual = -1
            let status = Zircon.KernelCommandLine.withDebuggingSyscalls {
                source.withUnsafeBytes { raw in
                    Zircon.processWriteMemory(handle, vaddr: pattern.address + 4000,
                                              buffer: UnsafeRawBufferPointer(rebasing: raw[0..<200]), actual: &actual)
                }
            }
            #expect(status == .ok)
            #expect(actual == 200)
            #expect(try fixture.selfRead(pattern.address + 4000, 200) == Array(source[0..<200]))
            #expect(try fixture.selfRead(pattern.address + 4200, 100) == Conformance.pattern(4200, 100))
        }

        // Zircon writes make the mapping privately writable (ForceWritable, §13): read-only and
        // PROT_NONE private memory is written, copy-on-write.
        @Test("\"zx_process_write_memory() attempts to write memory of the specified process.\" (read-only and PROT_NONE pages included)")
        func writesIgnoreProtections() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let readOnly = try fixture.layout.region("readOnly")
            #expect(zxWrite(handle, readOnly.address, [1, 2, 3, 4]).status == .ok)
            #expect(try fixture.selfRead(readOnly.address, 4) == [1, 2, 3, 4])
            let protNone = try fixture.layout.region("protNone")
            let target = protNone.address + (try #require(protNone.protNoneOffset))
            let result = zxWrite(handle, target, [9, 9])
            #expect(result.status == .ok)
            #expect(result.actual == 2)
            #expect(try fixture.selfRead(target, 2) == [9, 9])
        }

        // MARK: actual and partial writes

        @Test("\"actual_size the actual number of bytes written is stored here. Less bytes than requested may be returned if vaddr+buffer_size extends beyond the memory mapped in the process.\"")
        func partialWriteAtTheEndOfTheMemory() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let hole = try fixture.layout.region("hole")
            let holeOffset = Int(try #require(hole.holeOffset))
            let result = zxWrite(handle, hole.address, [UInt8](repeating: 0xEE, count: Int(hole.size)))
            #expect(result.status == .ok)
            #expect(result.actual == holeOffset)
            #expect(try fixture.selfRead(hole.address, holeOffset) == [UInt8](repeating: 0xEE, count: holeOffset))
            let after = hole.address + UInt64(holeOffset) + (try #require(hole.holeSize))
            #expect(try fixture.selfRead(after, page) == [UInt8](repeating: 0x12, count: page))
        }

        @Test("\"Less bytes than requested may be returned if vaddr+buffer_size extends beyond the memory mapped in the process.\" (stops at the end of the mapping containing vaddr, even before an adjacent writable mapping)")
        func partialWriteStopsAtTheMappingEnd() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let address = try adjacentMappings(in: fixture)
            let result = zxWrite(handle, address, [UInt8](repeating: 0x44, count: 4 * page))
            #expect(result.status == .ok)
            #expect(result.actual == 2 * page)
            #expect(try fixture.selfRead(address, 2 * page) == [UInt8](repeating: 0x44, count: 2 * page))
            // The next mapping (r--, which a Zircon write may enter) is untouched.
            #expect(try fixture.selfRead(address + UInt64(2 * page), 2 * page) == [UInt8](repeating: 0x33, count: 2 * page))
            let second = zxWrite(handle, address + UInt64(2 * page), [UInt8](repeating: 0x55, count: 4 * page))
            #expect(second.status == .ok)
            #expect(second.actual == 2 * page)
        }

        // MARK: the debugging switch

        @Test("\"To use the zx_process_write_memory() function, you must specify kernel.enable-debugging-syscalls=true on the kernel command line. Otherwise, the function returns ZX_ERR_NOT_SUPPORTED.\"")
        func needsTheDebuggingSwitch() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let pattern = try fixture.layout.region("pattern")
            let refused = zxWrite(handle, pattern.address, [1, 2, 3], debugging: false)
            #expect(refused.status == .notSupported)
            #expect(refused.actual == -1)
            #expect(try fixture.selfRead(pattern.address, 3) == Conformance.pattern(0, 3))
            // The switch is checked before anything else.
            var actual = -1
            let first = Zircon.KernelCommandLine.withDebuggingSyscalls(false) {
                Zircon.processWriteMemory(.invalid, vaddr: 0, buffer: nil, actual: &actual)
            }
            #expect(first == .notSupported)
            let allowed = zxWrite(handle, pattern.address, [1, 2, 3], debugging: true)
            #expect(allowed.status == .ok)
            #expect(try fixture.selfRead(pattern.address, 3) == [1, 2, 3])
        }

        @Test("\"you must specify kernel.enable-debugging-syscalls=true on the kernel command line.\" (the process-global switch, restored afterwards)")
        func globalSwitch() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let pattern = try fixture.layout.region("pattern")
            let saved = Zircon.KernelCommandLine.enableDebuggingSyscalls
            defer { Zircon.KernelCommandLine.enableDebuggingSyscalls = saved }
            if getenv(Zircon.KernelCommandLine.environmentVariable) == nil {
                #expect(saved == false)
            }
            Zircon.KernelCommandLine.enableDebuggingSyscalls = true
            var actual = -1
            let status = [UInt8](arrayLiteral: 7, 7).withUnsafeBytes {
                Zircon.processWriteMemory(handle, vaddr: pattern.address, buffer: $0, actual: &actual)
            }
            #expect(status == .ok)
            #expect(actual == 2)
            // A scoped value wins over the global one, for this thread only.
            #expect(Zircon.KernelCommandLine.withDebuggingSyscalls(false) { Zircon.KernelCommandLine.enableDebuggingSyscalls } == false)
            Zircon.KernelCommandLine.enableDebuggingSyscalls = false
            #expect(Zircon.KernelCommandLine.withDebuggingSyscalls { Zircon.KernelCommandLine.enableDebuggingSyscalls })
        }

        // MARK: buffer_size

        @Test("\"buffer_size must be greater than zero and less than or equal to 64MB.\" (exactly 64 MiB is written)")
        func sixtyFourMebibytesAreWritten() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let address = try Conformance.map(Zircon.maxDebugBlockSize + page, in: fixture)
            var bytes = [UInt8](repeating: 0x5C, count: Zircon.maxDebugBlockSize)
            bytes[0] = 0xA1
            bytes[Zircon.maxDebugBlockSize - 1] = 0xA2
            let result = zxWrite(handle, address, bytes)
            #expect(result.status == .ok)
            #expect(result.actual == Zircon.maxDebugBlockSize)
            #expect(try fixture.selfRead(address, 2) == [0xA1, 0x5C])
            #expect(try fixture.selfRead(address + UInt64(Zircon.maxDebugBlockSize - 2), 2) == [0x5C, 0xA2])
            #expect(try fixture.selfRead(address + UInt64(Zircon.maxDebugBlockSize), 16) == [UInt8](repeating: 0x33, count: 16))
        }

        @Test("\"ZX_ERR_INVALID_ARGS buffer is an invalid pointer or NULL, or buffer_size is zero or greater than 64MB.\"")
        func invalidArguments() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let pattern = try fixture.layout.region("pattern")
            var actual = -1
            Zircon.KernelCommandLine.withDebuggingSyscalls {
                #expect(Zircon.processWriteMemory(handle, vaddr: pattern.address, buffer: nil, actual: &actual) == .invalidArgs)
                #expect(Zircon.processWriteMemory(handle, vaddr: pattern.address,
                                                  buffer: UnsafeRawBufferPointer(start: nil, count: 0), actual: &actual) == .invalidArgs)
            }
            #expect(zxWrite(handle, pattern.address, []).status == .invalidArgs)
            let tooBig = zxWrite(handle, pattern.address, [UInt8](repeating: 1, count: Zircon.maxDebugBlockSize + 1))
            #expect(tooBig.status == .invalidArgs)
            #expect(tooBig.actual == -1)
            // An invalid pointer: a buffer this process cannot read.
            let local = try LocalPages(prot: PROT_NONE)
            let status = Zircon.KernelCommandLine.withDebuggingSyscalls {
                Zircon.processWriteMemory(handle, vaddr: pattern.address, buffer: local.buffer, actual: &actual)
            }
            #expect(status == .invalidArgs)
            #expect(actual == -1)
            #expect(try fixture.selfRead(pattern.address, 64) == Conformance.pattern(0, 64))
        }

        // MARK: rights

        @Test("\"handle must be of type ZX_OBJ_TYPE_PROCESS and have ZX_RIGHT_WRITE.\"")
        func writeRightSuffices() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture, rights: .write)
            let pattern = try fixture.layout.region("pattern")
            let result = zxWrite(handle, pattern.address, [9, 8, 7])
            #expect(result.status == .ok)
            #expect(try fixture.selfRead(pattern.address, 3) == [9, 8, 7])
            // The read call needs more.
            #expect(zxRead(handle, pattern.address, 3).status == .accessDenied)
        }

        @Test("\"ZX_ERR_ACCESS_DENIED handle does not have the ZX_RIGHT_WRITE right\"")
        func withoutWriteRightIsDenied() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture, rights: Zircon.Rights.defaultProcess.subtracting(.write))
            let pattern = try fixture.layout.region("pattern")
            let result = zxWrite(handle, pattern.address, [1, 2, 3, 4])
            #expect(result.status == .accessDenied)
            #expect(result.actual == -1)
            #expect(try fixture.selfRead(pattern.address, 4) == Conformance.pattern(0, 4))
        }

        @Test("\"or the address range to write falls into a protected area like the vDSO.\"")
        func protectedAreasAreDenied() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let core = try ProcessHandle(pid: fixture.pid)
            let vdso = try Conformance.region(.vdso, in: core)
            let before = try core.readExactly(from: vdso.start, count: 64)
            let result = zxWrite(handle, vdso.start, [UInt8](repeating: 0xCC, count: 64))
            #expect(result.status == .accessDenied)
            #expect(result.actual == -1)
            #expect(try core.readExactly(from: vdso.start, count: 64) == before)
            // The other areas Linux never lets a debugger write: [vvar], [vsyscall], secret memory,
            // and a shared mapping without write permission (a write would change the file).
            let vvar = try Conformance.region(.vvar, in: core)
            #expect(zxWrite(handle, vvar.start, [0]).status == .accessDenied)
            #expect(zxWrite(handle, 0xFFFF_FFFF_FF60_0000, [0]).status == .accessDenied)
            #expect(zxWrite(handle, try fixture.layout.region("secret").address, [0]).status == .accessDenied)
            let shared = try fixture.layout.region("readOnlySharedFile")
            let sharedBefore = try fixture.selfRead(shared.address, 8)
            #expect(zxWrite(handle, shared.address, [UInt8](repeating: 1, count: 8)).status == .accessDenied)
            #expect(try fixture.selfRead(shared.address, 8) == sharedBefore)
        }

        // MARK: handles and state

        @Test("\"ZX_ERR_BAD_HANDLE handle is not a valid handle.\"")
        func invalidHandleIsBadHandle() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let pattern = try fixture.layout.region("pattern")
            handle.close()
            #expect(zxWrite(handle, pattern.address, [1]).status == .badHandle)
            #expect(zxWrite(.invalid, pattern.address, [1]).status == .badHandle)
            #expect(try fixture.selfRead(pattern.address, 1) == Conformance.pattern(0, 1))
        }

        @Test("\"ZX_ERR_WRONG_TYPE handle is not a process handle.\"")
        func nonProcessHandleIsWrongType() throws {
            let fixture = try Fixture()
            let pattern = try fixture.layout.region("pattern")
            #expect(zxWrite(.event(), pattern.address, [1]).status == .wrongType)
            #expect(zxWrite(try Zircon.Handle.open(koid: 2), 0x1000, [1]).status == .wrongType)
        }

        @Test("\"ZX_ERR_BAD_STATE the process's memory is not accessible (e.g., the process is being terminated)\"")
        func terminatedProcessIsBadState() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let pattern = try fixture.layout.region("pattern")
            fixture.kill()
            fixture.waitForZombie()
            let result = zxWrite(handle, pattern.address, [1, 2, 3])
            #expect(result.status == .badState)
            #expect(result.actual == -1)
            fixture.reap()
            #expect(zxWrite(handle, pattern.address, [1, 2, 3]).status == .badState)
        }

        // MARK: NO_MEMORY and OUT_OF_RANGE

        // The document says NO_MEMORY; Zircon since 2023 says NOT_FOUND here, like reads (§13).
        @Test("\"ZX_ERR_NO_MEMORY the process does not have any memory at the requested address.\"")
        func unmappedIsNoMemory() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            let hole = try fixture.layout.region("hole")
            let start = hole.address + (try #require(hole.holeOffset))
            for address in [start, start + 100, UInt64(1) << 47, UInt64(1) << 63] {
                let result = zxWrite(handle, address, [1, 2, 3, 4])
                #expect(result.status == .noMemory, "0x\(String(address, radix: 16))")
                #expect(result.actual == -1)
            }
            // A guard page has no memory either.
            let guardRegion = try fixture.layout.region("guard")
            #expect(zxWrite(handle, guardRegion.address + (try #require(guardRegion.guardOffset)), [1]).status == .noMemory)
        }

        // Not in the document; the Zircon kernel: "If our partial write returned 0 bytes, it means
        // that offset is past the end of the VMO" (ZX_ERR_OUT_OF_RANGE).
        @Test("\"In the event of failure, a negative error value is returned\" (past the end of a file or memfd: ZX_ERR_OUT_OF_RANGE)")
        func pastTheObjectIsOutOfRange() throws {
            let fixture = try Fixture()
            let handle = try zxHandle(fixture)
            for name in ["truncatedFile", "memfd"] {
                let region = try fixture.layout.region(name)
                let result = zxWrite(handle, region.address + UInt64(2 * page), [1, 2])
                #expect(result.status == .outOfRange, "\(name)")
                #expect(result.status.rawValue < 0)
                // Starting inside the object, the write stops at the end of its last page.
                let partial = zxWrite(handle, region.address + UInt64(page), [UInt8](repeating: 7, count: 2 * page))
                #expect(partial.status == .ok)
                #expect(partial.actual == page, "\(name)")
            }
        }
    }
}
