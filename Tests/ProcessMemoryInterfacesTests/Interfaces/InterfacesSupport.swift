import Foundation
import Glibc
import ProcessMemory
import ProcessMemoryInterfaces
import ProcessMemoryTestSupport
import Testing

/// The reference-interface surfaces (module ProcessMemoryInterfaces: Zircon, Mach, Win32), tested
/// through their own calls against the fixture. Each test names the sentence of shared/seeds 000–003
/// it checks. Run them alone with `swift test --filter Interfaces`.
@Suite("Reference interfaces")
enum Interfaces {
    /// The page size.
    static var page: Int { Int(sysconf(Int32(_SC_PAGESIZE))) }

    /// One mapping of 4 pages split into two VMAs, `rw-` then `r--` (`map 16384`, then
    /// `protect ADDR+8192 8192 r--`); every byte is 0x33. Returns the first address.
    static func adjacentMappings(in fixture: Fixture) throws -> UInt64 {
        let address = try Conformance.map(4 * page, in: fixture)
        try fixture.ok("protect \(address + UInt64(2 * page)) \(2 * page) r--")
        return address
    }

    /// Whether every byte of `bytes` is `value` (fast in debug builds: one memcmp of the array
    /// against itself shifted by one byte).
    static func allEqual(_ bytes: [UInt8], _ value: UInt8) -> Bool {
        guard let first = bytes.first else { return true }
        guard first == value else { return false }
        return bytes.withUnsafeBytes { raw in memcmp(raw.baseAddress!, raw.baseAddress! + 1, raw.count - 1) == 0 }
    }

    /// Waits until the fixture has exec'd `/bin/sleep`.
    static func execSleep(_ fixture: Fixture) throws {
        try fixture.ok("exec /bin/sleep 30")
        for _ in 0..<2000 {
            if (try? String(contentsOfFile: "/proc/\(fixture.pid)/comm", encoding: .utf8)) == "sleep\n" { return }
            usleep(1000)
        }
        Issue.record("the fixture did not exec /bin/sleep")
    }

    // MARK: Zircon

    /// The outcome of one Zircon call: the status, `actual` (-1 when the call did not set it) and
    /// the buffer afterwards.
    struct ZxResult {
        var status: Zircon.Status
        var actual: Int
        var bytes: [UInt8]
    }

    /// `zx_process_read_memory` into a new buffer of `count` bytes filled with `fill`.
    static func zxRead(_ handle: Zircon.Handle, _ vaddr: UInt64, _ count: Int, fill: UInt8 = 0xEE) -> ZxResult {
        var bytes = [UInt8](repeating: fill, count: count)
        var actual = -1
        let status = bytes.withUnsafeMutableBytes { Zircon.processReadMemory(handle, vaddr: vaddr, buffer: $0, actual: &actual) }
        return ZxResult(status: status, actual: actual, bytes: bytes)
    }

    /// `zx_process_write_memory` of `bytes`, with the debugging switch scoped to `debugging`.
    static func zxWrite(_ handle: Zircon.Handle, _ vaddr: UInt64, _ bytes: [UInt8], debugging: Bool = true) -> ZxResult {
        var actual = -1
        let status = Zircon.KernelCommandLine.withDebuggingSyscalls(debugging) {
            bytes.withUnsafeBytes { Zircon.processWriteMemory(handle, vaddr: vaddr, buffer: $0, actual: &actual) }
        }
        return ZxResult(status: status, actual: actual, bytes: bytes)
    }

    /// A Zircon handle to the fixture with `rights`.
    static func zxHandle(_ fixture: Fixture, rights: Zircon.Rights = .defaultProcess) throws -> Zircon.Handle {
        try Zircon.Handle.open(koid: UInt64(fixture.pid), rights: rights)
    }

    // MARK: Mach

    /// A task port for the fixture.
    static func machTask(_ fixture: Fixture) throws -> Mach.Task {
        var task: Mach.Task?
        let kr = Mach.taskForPid(fixture.pid, &task)
        #expect(kr == .success)
        return try #require(task)
    }
}
