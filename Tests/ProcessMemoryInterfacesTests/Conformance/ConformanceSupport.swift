import Glibc
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryDumps
@testable import ProcessMemoryObjects
@testable import ProcessMemoryScanning
import ProcessMemory

// Small helpers shared by the conformance suites (seeds 000–003 in shared/seeds).
//
// Every suite runs against its own `procmem-fixture` process (see Support/Fixture.swift), so the
// tests can run in parallel.

enum Conformance {
    /// The fixture's page size.
    static var page: Int { Int(AddressSpace.pageSize) }

    /// One past the highest user address on this machine (2^47 with 4-level paging).
    static var userLimit: UInt64 { AddressSpace.userLimit }

    /// `count` pattern bytes starting at `offset` into the `pattern` region.
    static func pattern(_ offset: Int, _ count: Int) -> [UInt8] {
        (offset..<(offset + count)).map(patternByte)
    }

    /// The first region of `kind` in the target's map (for `[vdso]` and `[vvar]`).
    static func region(_ kind: MemoryRegion.Kind, in handle: ProcessHandle) throws -> MemoryRegion {
        try #require(try handle.memoryMap().first { $0.kind == kind }, "the target has no \(kind) region")
    }
}

/// A page-aligned buffer in this process, mapped with `prot`, unmapped by `deinit`.
final class LocalPages {
    let base: UnsafeMutableRawPointer
    let count: Int

    init(pages: Int = 1, fill: UInt8 = 0xA5, prot: Int32) throws {
        count = pages * Conformance.page
        let p = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else { throw FixtureError.spawn(errno) }
        memset(p, Int32(fill), count)
        guard mprotect(p, count, prot) == 0 else {
            munmap(p, count)
            throw FixtureError.spawn(errno)
        }
        base = p
    }

    deinit { munmap(base, count) }

    var mutableBuffer: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: base, count: count) }
    var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// The bytes (the pages must be readable).
    var bytes: [UInt8] { Array(buffer) }
}

/// A zero-filled heap buffer of `count` bytes, as `[UInt8]` for easy comparison.
func withBuffer<R>(_ count: Int, fill: UInt8 = 0, _ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> (R, [UInt8]) {
    var bytes = [UInt8](repeating: fill, count: count)
    let result = try bytes.withUnsafeMutableBytes { try body($0) }
    return (result, bytes)
}

extension Conformance {
    /// Asks the fixture for a new read-write mapping of `size` bytes filled with 0x33.
    static func map(_ size: Int, in fixture: Fixture) throws -> UInt64 {
        let reply = try fixture.ok("map \(size)")
        return UInt64(try #require(reply["address"] as? Int))
    }
}
