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

    /// The PT_LOADs of a core: address, bytes in the file, size in memory.
    private func loads(_ core: String) throws -> [(address: UInt64, fileSize: UInt64, memorySize: UInt64)] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: core), options: .alwaysMapped))
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) } }
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) } }
        let phoff = Int(u64(32))
        var count = u16(56)
        if count == 0xffff { count = Int(u32(Int(u64(40)) + 44)) }
        return (0..<count).map { phoff + $0 * 56 }.filter { u32($0) == 1 }.map { (u64($0 + 16), u64($0 + 32), u64($0 + 40)) }
    }

    @Test("--core follows the target's own coredump_filter by default; --all-mappings writes every readable byte")
    func coreFollowsTheTargetsFilterByDefault() throws {
        try withFixture { fixture in
            // Bit 1 (shared anonymous) off, bit 3 (shared file-backed) on: the reverse of the default 0x33.
            try "0x39\n".write(toFile: "/proc/\(fixture.pidArgument)/coredump_filter", atomically: false, encoding: .utf8)
            let sharedAnon = try fixture.layout.region("sharedAnon")
            let truncated = try fixture.layout.region("truncatedFile")
            let values = try fixture.layout.region("values")
            let core = DumpCommandTests.scratch("filter-default")
            defer { DumpCommandTests.remove(core) }
            let result = try procmem("dump", fixture.pidArgument, "--core", core, "--json")
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.text.contains("\"coredumpFilter\":\"0x39\"") || result.text.contains("\"coredumpFilter\": \"0x39\""),
                    "\(result.text)")
            let sidecar = try DumpCommandTests.index(core + ".json")
            let regions = try #require(sidecar["regions"] as? [[String: Any]])
            func entry(_ address: UInt64) throws -> [String: Any] {
                try #require(regions.first { $0["start"] as? String == hex(address) })
            }
            let anonReason = try #require(try entry(sharedAnon.address)["excluded"] as? String, "shared anonymous memory is left out")
            #expect(anonReason.contains("bit 1"), "\(anonReason)")
            for address in [truncated.address, values.address] {
                let excluded = try entry(address)["excluded"]
                #expect(excluded == nil || excluded is NSNull, "0x\(String(address, radix: 16)) is dumped: \(String(describing: excluded))")
            }
            // In the core: the left-out range is a PT_LOAD without bytes, the others hold theirs.
            let all = try loads(core)
            func bytes(_ address: UInt64) -> UInt64 {
                all.filter { $0.address <= address && address < $0.address + $0.memorySize }.map(\.fileSize).max() ?? 0
            }
            #expect(all.contains { $0.address == sharedAnon.address && $0.fileSize == 0 && $0.memorySize == sharedAnon.size })
            #expect(bytes(sharedAnon.address) == 0)
            #expect(bytes(truncated.address) > 0, "bit 3 brings the shared file mapping in")
            #expect(bytes(values.address) > 0)

            let everything = DumpCommandTests.scratch("filter-all")
            defer { DumpCommandTests.remove(everything) }
            let all2 = try procmem("dump", fixture.pidArgument, "--core", everything, "--all-mappings", "--json")
            #expect(all2.status == 0, "\(all2.stderr)")
            #expect(all2.text.contains("\"coredumpFilter\":null") || all2.text.contains("\"coredumpFilter\": null"), "\(all2.text)")
            #expect(all2.text.contains("\"bytesExcluded\":0") || all2.text.contains("\"bytesExcluded\": 0"), "\(all2.text)")
            let loadsAll = try loads(everything)
            #expect(loadsAll.contains { $0.address <= sharedAnon.address && sharedAnon.address < $0.address + $0.memorySize && $0.fileSize > 0 },
                    "--all-mappings writes the shared anonymous memory")

            let both = try procmem("dump", fixture.pidArgument, "--core", everything, "--all-mappings", "--coredump-filter")
            #expect(both.status != 0)
            #expect(both.stderr.contains("--all-mappings"), "\(both.stderr)")
            #expect(DumpCommandTests.isRunning(fixture.pidArgument))
        }
    }
}
