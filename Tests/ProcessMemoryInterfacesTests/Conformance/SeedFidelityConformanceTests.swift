import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore
import ProcessMemory
import ProcessMemoryInterfaces

// Issue 15: seed fidelity. A fault in the caller's buffer is its own condition (`.invalidBuffer`,
// naming the local address) in the core and in every surface; Win32 verifies the whole range before
// it transfers anything; Mach returns only the codes seed 002 lists; Zircon's "not cacheable" and its
// (pointer, size) forms.

/// Two pages of this process: the first read-write and filled with 0xA5, the second made read-only,
/// PROT_NONE or unmapped. ``across`` is 64 bytes across the boundary: 32 usable, 32 not.
///
/// The pages are placed at a low fixed address when that is free: an unmapped second page there is
/// never handed out again by another test's mmap (the kernel allocates top-down), so a read that
/// wrongly ran on could not land in someone else's memory.
final class SplitPages: @unchecked Sendable {
    enum Second: String, CaseIterable, Sendable { case readOnly, noAccess, unmapped }

    let base: UnsafeMutableRawPointer
    let second: Second
    private static let hint = Locked<UInt>(0x6_0000_0000)

    init(_ second: Second) throws {
        let page = Conformance.page
        self.second = second
        let hint = Self.hint.withLock { value -> UInt in
            defer { value += UInt(4 * page) }
            return value
        }
        var mapped = mmap(UnsafeMutableRawPointer(bitPattern: hint), 2 * page, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | 0x100000 /* MAP_FIXED_NOREPLACE */, -1, 0)
        if mapped == nil || mapped == MAP_FAILED {
            mapped = mmap(nil, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        }
        guard let mapped, mapped != MAP_FAILED else { throw FixtureError.spawn(errno) }
        memset(mapped, 0xA5, 2 * page)
        base = mapped
        let result: Int32
        switch second {
        case .readOnly: result = mprotect(mapped + page, page, PROT_READ)
        case .noAccess: result = mprotect(mapped + page, page, PROT_NONE)
        case .unmapped: result = munmap(mapped + page, page)
        }
        guard result == 0 else { throw FixtureError.spawn(errno) }
    }

    deinit { munmap(base, second == .unmapped ? Conformance.page : 2 * Conformance.page) }

    /// The first byte of the unusable page.
    var boundary: UInt64 { UInt64(UInt(bitPattern: base)) + UInt64(Conformance.page) }
    /// 64 bytes: the last 32 of the usable page and the first 32 of the other.
    var across: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + Conformance.page - 32, count: 64)
    }
    /// The usable half of ``across``.
    var usableHalf: [UInt8] { Array(UnsafeRawBufferPointer(start: base + Conformance.page - 32, count: 32)) }
}

@Suite("Conformance: seed fidelity (issue 15)")
struct SeedFidelityConformanceTests {
    // MARK: a fault in the caller's buffer, reads

    @Test("\"or the region specified by the data_in parameter cannot be written to.\" (second half of data_in read-only or unmapped; both read modes; vm_read_overwrite)",
          arguments: ReadMode.allCases, [SplitPages.Second.readOnly, .unmapped])
    func partlyUnwritableDataIn(mode: ReadMode, second: SplitPages.Second) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        let local = try SplitPages(second)

        let transfer = try handle.readTransfer(from: pattern.address, into: local.across, mode: mode)
        let stop = try #require(transfer.stop, "a read into a half-unwritable buffer completed")
        #expect(stop.code == .invalidBuffer)
        #expect(stop.localAddress == local.boundary)
        #expect(stop.address == pattern.address + UInt64(transfer.bytesTransferred))
        #expect(stop.bytesTransferred == transfer.bytesTransferred)
        #expect(transfer.bytesTransferred <= 32)
        #expect(local.usableHalf.prefix(transfer.bytesTransferred).elementsEqual(Conformance.pattern(0, transfer.bytesTransferred)))

        // The partial form never passes a caller's fault off as a short count.
        let thrown = try #require(throws: ProcessMemoryError.self) {
            try handle.read(from: pattern.address, into: local.across, mode: mode)
        }
        #expect(thrown.code == .invalidBuffer)
        #expect(thrown.localAddress == local.boundary)

        // vm_read_overwrite: KERN_INVALID_ADDRESS, data_count unchanged.
        let task = try Interfaces.machTask(fixture)
        var dataCount = 64
        #expect(Mach.vmReadOverwrite(task, address: pattern.address, size: 64, data: local.across, dataCount: &dataCount) == .invalidAddress)
        #expect(dataCount == 64)
    }

    @Test("\"A pointer to a buffer that receives the contents from the address space of the specified process.\" (an lpBuffer that cannot receive them in part: ERROR_NOACCESS, not ERROR_PARTIAL_COPY)",
          arguments: [SplitPages.Second.readOnly, .unmapped])
    func partlyUnwritableLpBuffer(second: SplitPages.Second) throws {
        let fixture = try Fixture()
        let pattern = try fixture.layout.region("pattern")
        let local = try SplitPages(second)
        let process = try #require(Win32.openProcess(desiredAccess: .vmRead, inheritHandle: false, processId: UInt32(fixture.pid)))
        var count = -1
        Win32.setLastError(.success)
        #expect(!Win32.readProcessMemory(process, pattern.address, local.across.baseAddress, 64, &count))
        #expect(Win32.getLastError() == .noAccess)
        // "the number of bytes transferred into the specified buffer": those before its first
        // unwritable byte.
        #expect(count >= 0 && count <= 32)
        #expect(local.usableHalf.prefix(max(count, 0)).elementsEqual(Conformance.pattern(0, max(count, 0))))
        // The same range into a good buffer reads: the target was never at fault.
        var good = [UInt8](repeating: 0, count: 64)
        #expect(Win32.readProcessMemory(process, pattern.address, &good, 64, &count))
        #expect(good == Conformance.pattern(0, 64))
    }

    @Test("\"ZX_ERR_INVALID_ARGS buffer is an invalid pointer or NULL\" (zx_process_read_memory: the second half of buffer read-only or unmapped)",
          arguments: [SplitPages.Second.readOnly, .unmapped])
    func zirconReadIntoPartlyUnwritableBuffer(second: SplitPages.Second) throws {
        let fixture = try Fixture()
        let pattern = try fixture.layout.region("pattern")
        let local = try SplitPages(second)
        let handle = try Interfaces.zxHandle(fixture)
        var actual = -1
        #expect(Zircon.processReadMemory(handle, vaddr: pattern.address, buffer: local.across, actual: &actual) == .invalidArgs)
        #expect(actual == -1)
        #expect(Zircon.processReadMemory(handle, vaddr: pattern.address, buffer: local.across.baseAddress, bufferSize: 64,
                                         actual: &actual) == .invalidArgs)
        #expect(actual == -1)
    }

    // MARK: a fault in the caller's buffer, writes

    @Test("\"ZX_ERR_INVALID_ARGS buffer is an invalid pointer or NULL\" (writes: the second half of buffer PROT_NONE or unmapped; core, zx_process_write_memory, WriteProcessMemory)",
          arguments: WriteMode.allCases, [SplitPages.Second.noAccess, .unmapped])
    func writeFromPartlyUnreadableBuffer(mode: WriteMode, second: SplitPages.Second) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let pattern = try fixture.layout.region("pattern")
        let target = pattern.address + 4096
        let before = Conformance.pattern(4096, 64)
        let local = try SplitPages(second)
        let source = UnsafeRawBufferPointer(local.across)

        let transfer = try handle.writeTransfer(source, to: target, mode: mode)
        let stop = try #require(transfer.stop, "a write from a half-unreadable buffer completed")
        #expect(stop.code == .invalidBuffer)
        #expect(stop.localAddress == local.boundary)
        #expect(stop.address == target + UInt64(transfer.bytesTransferred))
        // pwrite on /proc/PID/mem loads a page-sized chunk before it stores any of it.
        #expect(transfer.bytesTransferred == 0)
        #expect(try fixture.selfRead(target, 64) == before)

        let exactly = try #require(throws: ProcessMemoryError.self) { try handle.writeExactly(source, to: target, mode: mode) }
        #expect(exactly.code == .invalidBuffer)
        #expect(exactly.localAddress == local.boundary)
        #expect(exactly.bytesTransferred == 0)
        let partial = try #require(throws: ProcessMemoryError.self) { try handle.write(source, to: target, mode: mode) }
        #expect(partial.code == .invalidBuffer)
        #expect(try fixture.selfRead(target, 64) == before)

        // Two pages, the second unusable: pwrite would store the first before it faults on the
        // second, so writeExactly checks the buffer first and writes nothing.
        let page = Conformance.page
        let twoPages = UnsafeRawBufferPointer(start: local.base, count: 2 * page)
        let whole = try #require(throws: ProcessMemoryError.self) { try handle.writeExactly(twoPages, to: target, mode: mode) }
        #expect(whole.code == .invalidBuffer)
        #expect(whole.localAddress == local.boundary)
        #expect(whole.bytesTransferred == 0)
        #expect(try fixture.selfRead(target, 2 * page) == Conformance.pattern(4096, 2 * page))
        let prefix = try handle.writeTransfer(twoPages, to: target, mode: mode)
        #expect(prefix.stop?.code == .invalidBuffer)
        #expect(prefix.stop?.localAddress == local.boundary)
        // writeTransfer has no such check: pwrite stored the first page and then said EFAULT
        // (no partial count). Put the pattern back.
        try fixture.ok("write \(target) " + Conformance.pattern(4096, page).map { String(format: "%02x", $0) }.joined())

        let zx = try Interfaces.zxHandle(fixture)
        var actual = -1
        let status = Zircon.KernelCommandLine.withDebuggingSyscalls {
            Zircon.processWriteMemory(zx, vaddr: target, buffer: source, actual: &actual)
        }
        #expect(status == .invalidArgs)
        #expect(actual == -1)

        let process = try #require(Win32.openProcess(desiredAccess: [.vmWrite, .vmOperation], inheritHandle: false,
                                                     processId: UInt32(fixture.pid)))
        var written = -1
        Win32.setLastError(.success)
        #expect(!Win32.writeProcessMemory(process, target, source.baseAddress, 64, &written))
        #expect(Win32.getLastError() == .noAccess)
        #expect(written == 0)
        #expect(try fixture.selfRead(target, 64) == before)
    }

    // MARK: Win32 verifies before it transfers

    @Test("\"Before any data transfer occurs, the system verifies that all data in the base address and memory of the specified size is accessible for read access, and if it is not accessible the function fails.\" (lpBuffer untouched, lpNumberOfBytesRead 0)")
    func win32VerifiesBeforeTransfer() throws {
        let fixture = try Fixture()
        let process = try #require(Win32.openProcess(desiredAccess: .vmRead, inheritHandle: false, processId: UInt32(fixture.pid)))
        let page = Conformance.page
        let hole = try fixture.layout.region("hole")
        let protNone = try fixture.layout.region("protNone")
        let guardRegion = try fixture.layout.region("guard")
        let file = try fixture.layout.region("truncatedFile")
        // Each range starts with readable bytes and runs into an inaccessible page.
        let ranges: [(String, UInt64, Int)] = [
            ("hole", hole.address, Int(hole.size)), ("PROT_NONE", protNone.address, Int(protNone.size)),
            ("guard page", guardRegion.address, Int(guardRegion.size)), ("past EOF", file.address, 3 * page),
        ]
        for (name, address, size) in ranges {
            var buffer = [UInt8](repeating: 0xEE, count: size)
            var count = -1
            Win32.setLastError(.success)
            #expect(!Win32.readProcessMemory(process, address, &buffer, size, &count), "\(name)")
            #expect(Win32.getLastError() == .partialCopy, "\(name)")
            #expect(count == 0, "\(name)")
            #expect(buffer.allSatisfy { $0 == 0xEE }, "\(name): lpBuffer was touched")
        }
        // A huge nSize is verified against the map before anything is allocated or transferred:
        // the PROT_NONE lpBuffer would turn any copy into ERROR_NOACCESS.
        let untouchable = try LocalPages(prot: PROT_NONE)
        for (address, expected) in [(hole.address, Win32.Error.partialCopy), (UInt64(1) << 47, .noAccess)] {
            var count = -1
            #expect(!Win32.readProcessMemory(process, address, untouchable.base, 1 << 40, &count))
            #expect(Win32.getLastError() == expected, "0x\(String(address, radix: 16))")
            #expect(count == 0)
        }
    }

    @Test("\"Before any data transfer occurs, the system verifies that all data … is accessible for read access\" (the race: the target changes protection during the calls; every call is all or nothing)")
    func win32RaceIsAllOrNothing() throws {
        let fixture = try Fixture()
        let process = try #require(Win32.openProcess(desiredAccess: .vmRead, inheritHandle: false, processId: UInt32(fixture.pid)))
        let page = Conformance.page
        let address = try Conformance.map(2 * page, in: fixture)
        let second = address + UInt64(page)
        // A thread flips the second page between --- and rw- while this one reads both pages.
        final class Shared: @unchecked Sendable {
            let stop = Locked(false)
            let fixture: Fixture
            init(_ fixture: Fixture) { self.fixture = fixture }
        }
        let shared = Shared(fixture)
        let finished = DispatchSemaphore(value: 0)
        let flipper = Thread {
            var perms = "---"
            while !shared.stop.withLock({ $0 }) {
                _ = try? shared.fixture.command("protect \(second) \(page) \(perms)")
                perms = perms == "---" ? "rw-" : "---"
            }
            _ = try? shared.fixture.command("protect \(second) \(page) rw-")
            finished.signal()
        }
        flipper.start()
        var succeeded = 0
        var failed = 0
        for _ in 0..<400 {
            var buffer = [UInt8](repeating: 0xEE, count: 2 * page)
            var count = -1
            if Win32.readProcessMemory(process, address, &buffer, buffer.count, &count) {
                succeeded += 1
                #expect(count == buffer.count)
                #expect(Interfaces.allEqual(buffer, 0x33))
            } else {
                failed += 1
                #expect(Win32.getLastError() == .partialCopy)
                #expect(count == 0)
                #expect(Interfaces.allEqual(buffer, 0xEE), "a failed call touched lpBuffer")
            }
        }
        shared.stop.withLock { $0 = true }
        finished.wait()
        #expect(succeeded + failed == 400)
        // The flipper ends with the page readable again: the whole range reads.
        var buffer = [UInt8](repeating: 0xEE, count: 2 * page)
        #expect(Win32.readProcessMemory(process, address, &buffer, buffer.count, nil))
        #expect(Interfaces.allEqual(buffer, 0x33))
    }

    // MARK: only documented codes

    @Test("\"KERN_INVALID_ADDRESS The address is illegal or specifies a non-allocated region, or there are less than size bytes of data following the address\" (a file page past the end of its file, never KERN_MEMORY_ERROR)")
    func machPastEndOfFileIsInvalidAddress() throws {
        let fixture = try Fixture()
        let task = try Interfaces.machTask(fixture)
        let page = Conformance.page
        for name in ["truncatedFile", "memfd"] {
            let region = try fixture.layout.region(name)
            for (address, size) in [(region.address + UInt64(2 * page), 16), (region.address, Int(region.size))] {
                var data: [UInt8]?
                var dataCount = -1
                let kr = Mach.vmRead(task, address: address, size: size, data: &data, dataCount: &dataCount)
                #expect(kr == .invalidAddress, "\(name) at +\(address - region.address): \(kr)")
                #expect(kr == .invalidAddress || kr == .protectionFailure, "only the documented codes")
                #expect(data == nil)
                #expect(dataCount == -1)
            }
            var buffer = [UInt8](repeating: 0xEE, count: 16)
            var dataCount = 16
            let kr = buffer.withUnsafeMutableBytes {
                Mach.vmReadOverwrite(task, address: region.address + UInt64(3 * page), size: 16, data: $0, dataCount: &dataCount)
            }
            #expect(kr == .invalidAddress, "\(name)")
        }
    }

    @Test("\"ZX_ERR_BAD_STATE the process's memory is not accessible (e.g., the process is being terminated), or the requested memory is not cacheable.\" ([vvar], mapped as I/O memory)")
    func vvarIsNotCacheable() throws {
        let fixture = try Fixture()
        let core = try ProcessHandle(pid: fixture.pid)
        let vvar = try Conformance.region(.vvar, in: core)
        // The core's condition for it, which ErrorConditions.md maps to this status.
        let error = try #require(throws: ProcessMemoryError.self) { try core.read(from: vvar.start, count: 64, mode: .debugger) }
        #expect(error.code == .protectionFailure)
        let handle = try Interfaces.zxHandle(fixture)
        let result = Interfaces.zxRead(handle, vvar.start, 64)
        #expect(result.status == .badState)
        #expect(result.actual == -1)
    }

    // MARK: porting comfort

    @Test("\"buffer pointer to a user buffer to read bytes into. buffer_size number of bytes to attempt to read.\" (the (pointer, size) form)")
    func zirconReadPointerForm() throws {
        let fixture = try Fixture()
        let pattern = try fixture.layout.region("pattern")
        let handle = try Interfaces.zxHandle(fixture)
        var bytes = [UInt8](repeating: 0, count: 100)
        var actual = -1
        let status = bytes.withUnsafeMutableBytes {
            Zircon.processReadMemory(handle, vaddr: pattern.address + 5, buffer: $0.baseAddress, bufferSize: 100, actual: &actual)
        }
        #expect(status == .ok)
        #expect(actual == 100)
        #expect(bytes == Conformance.pattern(5, 100))
        // "buffer_size must be greater than zero and less than or equal to 64MB"; NULL buffer.
        actual = -1
        for size in [0, -1, Zircon.maxDebugBlockSize + 1] {
            let refused = bytes.withUnsafeMutableBytes {
                Zircon.processReadMemory(handle, vaddr: pattern.address, buffer: $0.baseAddress, bufferSize: size, actual: &actual)
            }
            #expect(refused == .invalidArgs, "\(size)")
        }
        #expect(Zircon.processReadMemory(handle, vaddr: pattern.address, buffer: nil, bufferSize: 16, actual: &actual) == .invalidArgs)
        #expect(actual == -1)
    }

    @Test("\"To use the zx_process_write_memory() function, you must specify kernel.enable-debugging-syscalls=true on the kernel command line. Otherwise, the function returns ZX_ERR_NOT_SUPPORTED.\" (the (pointer, size) form)")
    func zirconWritePointerForm() throws {
        let fixture = try Fixture()
        let pattern = try fixture.layout.region("pattern")
        let handle = try Interfaces.zxHandle(fixture)
        let bytes: [UInt8] = [9, 8, 7, 6, 5, 4, 3, 2]
        var actual = -1
        let off = Zircon.KernelCommandLine.withDebuggingSyscalls(false) {
            bytes.withUnsafeBytes { Zircon.processWriteMemory(handle, vaddr: pattern.address, buffer: $0.baseAddress, bufferSize: 8, actual: &actual) }
        }
        #expect(off == .notSupported)
        #expect(actual == -1)
        #expect(try fixture.selfRead(pattern.address, 8) == Conformance.pattern(0, 8))
        let on = Zircon.KernelCommandLine.withDebuggingSyscalls {
            bytes.withUnsafeBytes { Zircon.processWriteMemory(handle, vaddr: pattern.address, buffer: $0.baseAddress, bufferSize: 8, actual: &actual) }
        }
        #expect(on == .ok)
        #expect(actual == 8)
        #expect(try fixture.selfRead(pattern.address, 8) == bytes)
        let refused = Zircon.KernelCommandLine.withDebuggingSyscalls {
            Zircon.processWriteMemory(handle, vaddr: pattern.address, buffer: nil, bufferSize: 8, actual: &actual)
        }
        #expect(refused == .invalidArgs)
    }
}
