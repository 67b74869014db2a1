import Foundation
import Glibc
import ProcessMemoryTestSupport
import ProcessMemoryTestTraits
import Testing

/// `procmem dump --core FILE --coredump-filter`: the regions gcore leaves out are marked excluded in
/// the sidecar, and gdb still loads the core.
@Suite("procmem dump --coredump-filter")
struct DumpCoredumpFilterTests {
    @Test("a filtered core loads in gdb; the sidecar lists the shared file mapping as excluded")
    func filteredCore() throws {
        try withFixture { fixture in
            let core = DumpCommandTests.scratch("filtered")
            defer { DumpCommandTests.remove(core) }
            let result = try procmem("dump", fixture.pidArgument, "--core", core, "--coredump-filter", "--json")
            #expect(result.status == 0, "\(result.stderr)")
            let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any])
            #expect(summary["coredumpFilter"] as? String == "0x33", "the fixture inherits the default filter: \(result.text)")
            #expect(((summary["bytesExcluded"] as? NSNumber)?.intValue ?? 0) > 0, "\(result.text)")
            let sidecar = try DumpCommandTests.index(core + ".json")
            let regions = try #require(sidecar["regions"] as? [[String: Any]])
            let truncated = try fixture.layout.region("truncatedFile")
            let entry = try #require(regions.first { $0["start"] as? String == hex(truncated.address) })
            #expect((entry["excluded"] as? String)?.contains("coredump_filter") == true, "\(entry)")
            #expect((entry["segments"] as? [Any])?.isEmpty == true)
            #expect((entry["failed"] as? [Any])?.isEmpty == true)
            #expect(DumpCommandTests.isRunning(fixture.pidArgument))
        }
    }

    @Test("gdb loads a filtered core and reads the left-out file mapping from the file", .requiresTool("gdb"))
    func filteredCoreLoadsInGDB() throws {
        let gdb = try #require(DumpCommandTests.gdb)
        try withFixture { fixture in
            let core = DumpCommandTests.scratch("filtered-gdb")
            defer { DumpCommandTests.remove(core) }
            let result = try procmem("dump", fixture.pidArgument, "--core", core, "--coredump-filter")
            #expect(result.status == 0, "\(result.stderr)")
            let truncated = try fixture.layout.region("truncatedFile")
            let u32 = try fixture.layout.value("u32")
            let (status, output) = try DumpCommandTests.run(gdb, ["-batch", "-nx", "-ex", "x/4xw \(hex(u32))",
                                                                  "-ex", "x/xb \(hex(truncated.address))",
                                                                  fixture.executable, core])
            #expect(status == 0, "\(output)")
            #expect(output.contains("0xdeadbeef"), "\(output)")
            // The core has no bytes for it; gdb reads them from the file NT_FILE names, as it does for
            // a kernel core (the file's first page is filled with 0xb0).
            #expect(output.contains("\(hex(truncated.address)):\t0xb0"), "\(output)")
        }
    }

    @Test("--coredump-filter-bits takes a hex mask and rejects anything else")
    func explicitBits() throws {
        try withFixture { fixture in
            let directory = DumpCommandTests.scratch("bits")
            defer { DumpCommandTests.remove(directory) }
            let result = try procmem("dump", fixture.pidArgument, "--output", directory, "--coredump-filter-bits", "0x3b", "--json")
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.text.contains("\"coredumpFilter\":\"0x3b\"") || result.text.contains("\"coredumpFilter\": \"0x3b\""),
                    "\(result.text)")
            let bad = try procmem("dump", fixture.pidArgument, "--output", directory, "--coredump-filter-bits", "zz")
            #expect(bad.status != 0)
            #expect(bad.stderr.contains("hex mask"), "\(bad.stderr)")
        }
    }
}
