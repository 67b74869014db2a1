import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryDumps

/// `DumpSelection.coredumpFilter`: the kernel's and gcore's rules against the fixture's shared file
/// mappings, memfd, shared anonymous memory, guard and secret regions and the kernel's `[vvar]`.
@Suite("Coredump filter")
struct CoredumpFilterTests {
    /// The index region that starts at `address`.
    private func entry(_ index: DumpIndex, _ address: UInt64) throws -> DumpIndex.Region {
        try #require(index.regions.first { $0.start == address }, "a region starts at 0x\(String(address, radix: 16))")
    }

    @Test("with the default filter 0x33, shared file mappings, [vvar] and secret memory are excluded, not failed")
    func defaultFilterExcludes() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let core = DumpSupport.scratch("filter")
        defer { DumpSupport.remove(core) }
        var options = DumpOptions()
        options.selection = .coredumpFilter(.kernelDefault)
        let index = try handle.dumpCore(to: core, options: options)
        #expect(index.complete)
        #expect(index.coredumpFilter == .kernelDefault)
        let page = fixture.layout.pageSize

        // MAP_SHARED mappings of a regular file: bit 3, off by default. The read-only one is "r--s"
        // in maps, but the kernel drops VM_SHARED for a file not opened for writing (no "sh" in
        // VmFlags), so to the core dumper it is a private file mapping: bit 2, also off.
        for (name, bit) in [("truncatedFile", "bit 3"), ("readOnlySharedFile", "bit 2")] {
            let region = try entry(index, try fixture.layout.region(name).address)
            let reason = try #require(region.excluded, "\(name) is excluded")
            #expect(reason.contains(bit), "\(name): \(reason)")
            #expect(region.segments.isEmpty && region.failed.isEmpty, "\(name) has neither data nor failures")
            #expect(region.processedUpTo == region.end)
        }
        // [vvar] is VM_IO | VM_DONTDUMP: excluded rather than listed as unreadable.
        for region in index.regions where region.path == "[vvar]" {
            #expect(region.excluded != nil)
            #expect(region.failed.isEmpty)
        }
        if let secret = fixture.layout.regions["secret"] {
            let region = try entry(index, secret.address)
            #expect(region.excluded?.contains("VM_DONTDUMP") == true, "secret memory is VM_DONTDUMP: \(region.excluded ?? "dumped")")
            #expect(region.failed.isEmpty)
        }
        // A memfd has no links, so it is shared anonymous memory (bit 1, on): dumped up to its end of
        // file, the pages past it still listed as failed.
        let memfd = try fixture.layout.region("memfd")
        let memfdEntry = try entry(index, memfd.address)
        #expect(memfdEntry.excluded == nil)
        #expect(DumpSupport.hasData(index, memfd.address..<(memfd.address + page)))
        #expect(DumpSupport.isListedAsFailed(index, (memfd.address + 2 * page)..<(memfd.address + memfd.size)))
        let sharedAnon = try fixture.layout.region("sharedAnon")
        #expect(try entry(index, sharedAnon.address).excluded == nil)
        #expect(DumpSupport.hasData(index, sharedAnon.address..<(sharedAnon.address + sharedAnon.size)))
        // Private anonymous memory with a guard page: dumped, the guard page failed as before.
        if let guardRegion = fixture.layout.regions["guard"], let offset = guardRegion.guardOffset {
            #expect(try entry(index, guardRegion.address).excluded == nil)
            #expect(DumpSupport.isListedAsFailed(index, (guardRegion.address + offset)..<(guardRegion.address + offset + page)))
            #expect(DumpSupport.hasData(index, guardRegion.address..<(guardRegion.address + page)))
        }
        #expect(try entry(index, try fixture.layout.region("values").address).excluded == nil)

        // The core: every excluded region is one PT_LOAD without bytes; what is there equals the process.
        let (loads, _, _) = try DumpSupport.loads(ofCore: core)
        for region in index.regions where region.excluded != nil {
            #expect(loads.contains { $0.address == region.start && $0.memorySize == region.end - region.start && $0.fileSize == 0 },
                    "excluded 0x\(String(region.start, radix: 16)) is a PT_LOAD without bytes")
        }
        #expect(loads.filter { $0.fileSize > 0 }.reduce(0) { $0 + $1.fileSize } == index.bytesDumped)
        #expect(index.bytesExcluded > 0)
        // The sidecar says the same.
        let stored = try DumpIndex.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: core + ".json"))))
        #expect(stored == index)
        #expect(DumpSupport.isRunning(fixture.pid))
    }

    @Test("the target's own /proc/PID/coredump_filter is followed; bit 3 brings shared file mappings back")
    func followsTheTargetsFilter() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let path = "/proc/\(fixture.pid)/coredump_filter"
        try "0x3b\n".write(toFile: path, atomically: false, encoding: .utf8)
        let directory = DumpSupport.scratch("filter-own")
        defer { DumpSupport.remove(directory) }
        var options = DumpOptions()
        options.selection = .coredumpFilter(nil)
        let index = try handle.dump(toDirectory: directory, options: options)
        #expect(index.coredumpFilter == CoredumpFilter(rawValue: 0x3b))
        let truncated = try fixture.layout.region("truncatedFile")
        let region = try entry(index, truncated.address)
        #expect(region.excluded == nil)
        let page = fixture.layout.pageSize
        #expect(DumpSupport.hasData(index, truncated.address..<(truncated.address + page)))
        // Its bytes are the file's: page k of the file is filled with 0xB0 + k.
        let segment = try #require(region.segments.first)
        let bytes = try DumpSupport.fileBytes(directory + "/" + (segment.file ?? ""), at: segment.fileOffset, count: 16)
        #expect(bytes == [UInt8](repeating: 0xB0, count: 16))
    }

    @Test("without the option nothing is excluded: every readable byte is dumped")
    func defaultDumpsEverything() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let directory = DumpSupport.scratch("filter-off")
        defer { DumpSupport.remove(directory) }
        let index = try handle.dump(toDirectory: directory)
        #expect(index.coredumpFilter == nil)
        #expect(index.regions.allSatisfy { $0.excluded == nil })
        #expect(index.bytesExcluded == 0)
        let truncated = try fixture.layout.region("truncatedFile")
        #expect(DumpSupport.hasData(index, truncated.address..<(truncated.address + fixture.layout.pageSize)))
    }

    @Test("an explicit mask overrides the target's: 0 leaves out everything but [vdso] and [vsyscall]")
    func explicitMask() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let directory = DumpSupport.scratch("filter-zero")
        defer { DumpSupport.remove(directory) }
        var options = DumpOptions()
        options.selection = .coredumpFilter(CoredumpFilter(rawValue: 0))
        let index = try handle.dump(toDirectory: directory, options: options)
        for region in index.regions {
            if region.path == "[vdso]" || region.path == "[vsyscall]" {
                #expect(region.excluded == nil)
            } else {
                #expect(region.excluded != nil, "0x\(String(region.start, radix: 16)) \(region.path ?? "") is excluded")
            }
        }
        #expect(index.bytesDumped <= index.regions.filter { $0.path == "[vdso]" }.reduce(0) { $0 + $1.end - $1.start })
    }

    @Test("DAX mappings follow bits 7 and 8 (the kernel's rule), before the anonymous and file-backed bits")
    func daxBits() {
        let file = MemoryRegion(start: 0x10000, end: 0x30000, permissions: [.read, .write], isShared: true, inode: 12,
                                path: "/mnt/pmem/data")
        var shared = RegionDetails(region: file)
        shared.vmFlags = ["rd", "wr", "sh", "mr", "mw", "me", "ms"]
        let noELF = { false }
        // A shared DAX mapping: bit 8 decides, whatever bit 3 (shared file-backed) says.
        #expect(DumpEngine.exclusionReason(file, details: shared, filter: [.fileShared], startsWithELFHeader: noELF,
                                           isDAX: { true })?.contains("lacks bit 8") == true)
        #expect(DumpEngine.exclusionReason(file, details: shared, filter: [.daxShared], startsWithELFHeader: noELF,
                                           isDAX: { true }) == nil)
        #expect(DumpEngine.exclusionReason(file, details: shared, filter: [.daxPrivate], startsWithELFHeader: noELF,
                                           isDAX: { true })?.contains("shared DAX mapping") == true)
        // A private one: bit 7, even when it holds anonymous pages.
        var privateFile = file
        privateFile.isShared = false
        var privateDetails = RegionDetails(region: privateFile)
        privateDetails.vmFlags = ["rd", "wr", "mr", "mw", "me"]
        privateDetails.anonymous = 4096
        #expect(DumpEngine.exclusionReason(privateFile, details: privateDetails, filter: .kernelDefault,
                                           startsWithELFHeader: noELF, isDAX: { true })?.contains("lacks bit 7") == true)
        #expect(DumpEngine.exclusionReason(privateFile, details: privateDetails, filter: [.daxPrivate],
                                           startsWithELFHeader: noELF, isDAX: { true }) == nil)
        // Not DAX: the file-backed bits decide as before (anonymous pages count under bit 0).
        #expect(DumpEngine.exclusionReason(privateFile, details: privateDetails, filter: .kernelDefault,
                                           startsWithELFHeader: noELF, isDAX: { false }) == nil)
        #expect(DumpEngine.exclusionReason(file, details: shared, filter: .kernelDefault, startsWithELFHeader: noELF,
                                           isDAX: { false })?.contains("lacks bit 3") == true)
        // Bits 7 and 8 as core(5) numbers them; the kernel's default has neither.
        #expect(CoredumpFilter.daxPrivate.rawValue == 0x80 && CoredumpFilter.daxShared.rawValue == 0x100)
        #expect(!CoredumpFilter.kernelDefault.contains(.daxPrivate) && !CoredumpFilter.kernelDefault.contains(.daxShared))
    }
}
