import Foundation
import Glibc
import Testing
import ProcessMemoryCore
import ProcessMemoryDumps

/// Files read back (issue 16): crafted indexes, files that are not regular files, links out of the
/// dump directory. Each fails cleanly and quickly, never traps or hangs.
@Suite("Read-back hardening")
struct ReadBackHardeningTests {
    /// The input kept in Fuzz/regressions/dump-index: one segment longer than 2^63 bytes.
    static let hugeSegment = #"""
        {"complete":true,"format":"procmem-dump","pid":10,"readMode":"debugger","stopMethod":"ptrace","version":1,
        "regions":[{"start":"0x1000","end":"0xffffffffffffffff","failed":[],"kind":"anonymous","offset":"0x0","path":null,
        "permissions":"rw-p","processedUpTo":"0x1000",
        "segments":[{"start":"0x1000","end":"0xffffffffffffffff","file":"regions/x.bin","fileOffset":0}]}]}
        """#

    @Test("a segment longer than 2^63 bytes is refused, not an arithmetic trap")
    func segmentLongerThanHalfTheAddressSpace() throws {
        let error = #expect(throws: ProcessMemoryError.self) { try DumpIndex.decode(Array(Self.hugeSegment.utf8)) }
        #expect(error?.code == .invalidArguments)
        #expect(error?.message.contains("beyond any file") == true)
    }
}
