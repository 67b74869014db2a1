import Foundation
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryScanning

/// Building pointer structures inside the fixture with its `map` and `write` commands.
extension Fixture {
    /// Maps `size` bytes (filled with 0x33) and returns the address.
    func mapForPointers(_ size: Int = 4096) throws -> UInt64 {
        let reply = try ok("map \(size)")
        let number = try #require(reply["address"] as? NSNumber, "map gave no address: \(reply)")
        return number.uint64Value
    }

    /// Stores `pointer` as 8 little-endian bytes at `address`, through the fixture's own /proc/self/mem.
    func storePointer(_ pointer: UInt64, at address: UInt64) throws {
        let hex = withUnsafeBytes(of: pointer.littleEndian) { $0.map { String(format: "%02x", $0) }.joined() }
        try ok("write \(address) \(hex)")
    }

    /// The fixture executable's writable, file-backed data mapping.
    func dataSegment(_ handle: ProcessHandle) throws -> MemoryRegion {
        let path = URL(fileURLWithPath: executable).resolvingSymlinksInPath().path
        return try #require(try handle.memoryMap().regions.first {
            $0.path == path && $0.permissions.contains(.write) && !$0.isShared
        }, "the fixture has no rw-p mapping of \(path)")
    }
}
