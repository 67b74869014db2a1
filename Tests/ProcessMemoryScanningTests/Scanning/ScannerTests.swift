import Foundation
import Glibc
import ProcessMemoryTestSupport
import ProcessMemoryTestTraits
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryScanning

/// Scans of the fixture: planted values, narrowing, patterns, strings, floats, widths, byte order,
/// alignment, vanishing regions and snapshots.
@Suite("Scanner")
struct ScannerTests {
    static let seed: UInt32 = 0x5EED_1234

    func hexString(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    func scan(_ fixture: Fixture, _ query: ScanQuery, options: ScanOptions = ScanOptions(),
              regions: [MemoryRegion]? = nil) throws -> ScanResult {
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        return try Scanner(handle: handle, options: options).scan(query, regions: regions)
    }

    @Test("a u32 scan finds exactly the 7 planted addresses, by default and with --all")
    func plantedValue() throws {
        let fixture = try Fixture()
        let planted = Set(fixture.layout.planted.addresses)
        #expect(planted.count == 7)
        let value = try ScanValue("0x5EED1234", as: .u32)
        let byDefault = try scan(fixture, .value(value))
        #expect(Set(byDefault.matches.matches.map(\.address)) == planted)
        #expect(byDefault.matches.count == 7)
        var all = ScanOptions(regions: .all)
        all.chunkSize = 4096  // many chunk boundaries
        let everywhere = try scan(fixture, .value(value), options: all)
        #expect(Set(everywhere.matches.matches.map(\.address)) == planted)
        for index in 0..<everywhere.matches.count {
            #expect(everywhere.matches.number(ofMatch: index) == .integer(Int128(Self.seed)))
            #expect(everywhere.matches.region(ofMatch: index) != nil)
        }
    }

    @Test("a narrowing sequence converges on the one address that changed")
    func narrowing() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let scanner = Scanner(handle: handle)
        let first = try scanner.scan(.value(try ScanValue("1592594996", as: .u32)))
        #expect(first.matches.count == 7)
        let unchanged = try scanner.rescan(first.matches, where: .unchanged)
        #expect(unchanged.matches.count == 7)
        let target = fixture.layout.planted.addresses[3]
        try fixture.ok("write \(target) 39300000")  // 12345 little-endian
        let changed = try scanner.rescan(unchanged.matches, where: .changed)
        #expect(changed.matches.matches.map(\.address) == [target])
        let equal = try scanner.rescan(first.matches, where: .equal(try ScanValue("12345", as: .u32)))
        #expect(equal.matches.matches.map(\.address) == [target])
        let decreased = try scanner.rescan(first.matches, where: .decreased)
        #expect(decreased.matches.matches.map(\.address) == [target])
        let by = try scanner.rescan(first.matches, where: .decreasedBy(try ScanValue(String(1_592_594_996 - 12345), as: .u32)))
        #expect(by.matches.matches.map(\.address) == [target])
        let range = try scanner.rescan(first.matches, where: .inRange(try ScanValue("12000", as: .u32), try ScanValue("13000", as: .u32)))
        #expect(range.matches.matches.map(\.address) == [target])
        // Through a saved file, too.
        let path = NSTemporaryDirectory() + "scan-\(UUID().uuidString).pmm"
        defer { unlink(path) }
        try first.matches.save(to: path)
        let loaded = try MatchSet(contentsOf: path)
        #expect(loaded == first.matches)
        try fixture.ok("write \(fixture.layout.planted.addresses[5]) 3a300000")
        let again = try scanner.rescan(loaded, where: .increasedBy(try ScanValue("1", as: .u32)))
        #expect(again.matches.count == 0)
        let changedTwo = try scanner.rescan(loaded, where: .changed)
        #expect(changedTwo.matches.matches.map(\.address) == [target, fixture.layout.planted.addresses[5]])
    }

    @Test("byte patterns with ?? and nibble wildcards")
    func patterns() throws {
        let fixture = try Fixture()
        let planted = Set(fixture.layout.planted.addresses)
        for text in ["34 12 ed 5e", "34 ?? ed 5e", "3? 12 ?d 5e", "3412??5e", "?4 1? ED 5E"] {
            let found = try scan(fixture, .pattern(try BytePattern(hex: text)))
            #expect(Set(found.matches.matches.map(\.address)) == planted, "pattern \(text)")
        }
        // The pattern region's bytes: i*7 + i/4096; offset 1 onwards is 07 0e 15.
        let region = try fixture.layout.region("pattern")
        var options = ScanOptions(regions: .all)
        options.regions.addressRange = region.address..<(region.address + region.size)
        let found = try scan(fixture, .pattern(try BytePattern(hex: "07 0? 15 1c")), options: options)
        #expect(found.matches.matches.first?.address == region.address + 1)
        #expect(found.matches.content == .bytes(length: 4))
    }

    @Test("strings: UTF-8 and UTF-16LE, ignoring case")
    func strings() throws {
        let fixture = try Fixture()
        let cstring = try fixture.layout.value("cstring")
        let exact = try scan(fixture, .pattern(BytePattern(string: "procmem fixture says hello")))
        #expect(exact.matches.matches.map(\.address).contains(cstring))
        let folded = try scan(fixture, .pattern(BytePattern(string: "PROCMEM Fixture SAYS", ignoreCase: true)))
        #expect(folded.matches.matches.map(\.address).contains(cstring))
        let wrongCase = try scan(fixture, .pattern(BytePattern(string: "PROCMEM Fixture SAYS")))
        #expect(!wrongCase.matches.matches.map(\.address).contains(cstring))
        // Plant a UTF-16LE copy in a fresh region.
        let reply = try fixture.ok("map 8192")
        let base = UInt64(try #require(reply["address"] as? Int))
        let utf16 = Array("Wide Marker Ünïcode".utf16).flatMap { [UInt8(truncatingIfNeeded: $0), UInt8($0 >> 8)] }
        try fixture.ok("write \(base + 4093) \(hexString(utf16))")  // across a page boundary
        let wide = try scan(fixture, .pattern(BytePattern(string: "wide MARKER Ünïcode", utf16: true, ignoreCase: true)),
                            options: ScanOptions(chunkSize: 4096))
        #expect(wide.matches.matches.map(\.address) == [base + 4093])
    }

    @Test("floats match within a tolerance or by rounding; any-int; big endian; unaligned")
    func valueKinds() throws {
        let fixture = try Fixture()
        let f32 = try fixture.layout.value("f32")
        #expect(try scan(fixture, .value(try ScanValue("3.25", as: .f32))).matches.matches.map(\.address).contains(f32))
        #expect(try scan(fixture, .value(try ScanValue("3.2", as: .f32, tolerance: 0.06))).matches.matches.map(\.address).contains(f32))
        #expect(try !scan(fixture, .value(try ScanValue("3.1", as: .f32))).matches.matches.map(\.address).contains(f32))
        let f64 = try fixture.layout.value("f64")
        #expect(try scan(fixture, .value(try ScanValue("-2.5e10", as: .f64))).matches.matches.map(\.address).contains(f64))

        // any-int finds 0xDEADBEEF as a u32 and -5 as an i8.
        let anyInt = try scan(fixture, .value(try ScanValue("3735928559", as: .anyInt)))
        let u32 = try fixture.layout.value("u32")
        #expect(anyInt.matches.matches.contains { $0.address == u32 && $0.width == 4 })
        let minusFive = try scan(fixture, .value(try ScanValue("-5", as: .anyInt)))
        #expect(minusFive.matches.matches.contains { $0.address == (try? fixture.layout.value("i8")) && $0.width == 1 })

        // Big endian: the planted bytes 34 12 ed 5e read big-endian are 0x3412ED5E.
        let big = try scan(fixture, .value(try ScanValue("0x3412ED5E", as: .u32, byteOrder: .big)))
        #expect(Set(big.matches.matches.map(\.address)) == Set(fixture.layout.planted.addresses))
        #expect(big.matches.number(ofMatch: 0) == .integer(0x3412_ED5E))

        // Unaligned: a u64 at an odd address is found only with aligned off.
        let reply = try fixture.ok("map 4096")
        let base = UInt64(try #require(reply["address"] as? Int))
        try fixture.ok("write \(base + 13) 8877665544332211")
        let value = try ScanValue("0x1122334455667788", as: .u64)
        #expect(try scan(fixture, .value(value)).matches.matches.map(\.address).contains(base + 13) == false)
        var options = ScanOptions()
        options.aligned = false
        #expect(try scan(fixture, .value(value), options: options).matches.matches.map(\.address).contains(base + 13))
    }

    @Test("a region unmapped before or during the scan is skipped and reported")
    func vanishingRegions() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let reply = try fixture.ok("map \(64 * 4096)")
        let base = UInt64(try #require(reply["address"] as? Int))
        let size = UInt64(64 * 4096)
        let region = try #require(try handle.memoryMap().region(containing: base))
        let planted = try #require(try handle.memoryMap().region(containing: fixture.layout.planted.addresses[0]))
        var options = ScanOptions()
        options.chunkSize = 4096
        let scanner = Scanner(handle: handle, options: options)
        var unmapped = false
        let value = ScanValue.parse("0x5EED1234", as: .u32)
        let result = try scanner.scan(.value(try value.get()), regions: [region, planted]) { progress in
            if !unmapped, progress.bytesDone >= 4096 {
                unmapped = true
                _ = try? fixture.ok("unmap \(base) \(size)")
            }
        }
        #expect(unmapped)
        #expect(result.skipped.count == 1)
        let skip = try #require(result.skipped.first)
        #expect(skip.start > base && skip.end == base + size)
        #expect(skip.reason.code == .notFound)
        #expect(result.matches.count == 7)  // the region after it was scanned
        // Scanning the stale region again: skipped from its start.
        let stale = try scanner.scan(.value(try value.get()), regions: [region])
        #expect(stale.skipped.map(\.start) == [base])
        #expect(stale.matches.isEmpty)
    }

    @Test("snapshot search: one changed value in a mapped region")
    func snapshotSearch() throws {
        let fixture = try Fixture()
        let reply = try fixture.ok("map \(1 << 20)")
        let base = UInt64(try #require(reply["address"] as? Int))
        try fixture.ok("write \(base + 8192) 00000000")  // a partly zero page, and zero pages below
        let zeroPage = [UInt8](repeating: 0, count: 4096)
        try fixture.ok("write \(base + 4 * 4096) \(hexString(zeroPage))")
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        var options = ScanOptions()
        options.regions.addressRange = base..<(base + (1 << 20))
        options.chunkSize = 64 << 10
        let scanner = Scanner(handle: handle, options: options)
        let path = NSTemporaryDirectory() + "snap-\(UUID().uuidString).pms"
        defer { unlink(path) }
        let saved = try scanner.snapshot(as: .u32, to: path)
        #expect(saved.bytesScanned == 1 << 20)
        let fileSize = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(fileSize < (1 << 20) + 256 + 1 << 20 / 4096)  // the zero page took one byte
        #expect(MatchSet.isSnapshotFile(path))
        let none = try scanner.compare(snapshotAt: path, where: .changed)
        #expect(none.matches.isEmpty)
        try fixture.ok("write \(base + 4 * 4096 + 100) 05000000")
        let changed = try scanner.compare(snapshotAt: path, where: .changed)
        #expect(changed.matches.matches.map(\.address) == [base + 4 * 4096 + 100])
        #expect(changed.matches.number(ofMatch: 0) == .integer(5))
        let increased = try scanner.compare(snapshotAt: path, where: .increasedBy(try ScanValue("5", as: .u32)))
        #expect(increased.matches.count == 1)
        // A corrupted snapshot is refused with a clear error.
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 20] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect { try scanner.compare(snapshotAt: path, where: .changed) } throws: { error in
            (error as? ProcessMemoryError)?.message.contains("corrupt") ?? false
        }
    }

    @Test("resident-only scans skip untouched memory without faulting it in")
    func residentOnly() throws {
        // 64 MiB that this process never touches, except one value in one page.
        let size = 64 << 20
        let mapping = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        let base = try #require(mapping == MAP_FAILED ? nil : mapping)
        defer { munmap(base, size) }
        base.storeBytes(of: 0x1357_9BDF as UInt32, toByteOffset: 40 << 20, as: UInt32.self)
        let address = UInt64(UInt(bitPattern: base))
        let handle = try ProcessHandle(pid: getpid())
        defer { handle.close() }
        var options = ScanOptions(residentOnly: true)
        options.regions.addressRange = address..<(address + UInt64(size))
        let result = try Scanner(handle: handle, options: options).scan(.value(try ScanValue("0x13579BDF", as: .u32)))
        #expect(result.matches.matches.map(\.address) == [address + (40 << 20)])
        #expect(result.bytesNotResident >= UInt64(size - (8 << 20)))
        #expect(result.bytesScanned == UInt64(size))
        // Nothing was faulted in: the other pages are still absent.
        var residency = [UInt8](repeating: 0, count: size / 4096)
        #expect(mincore(base, size, &residency) == 0)
        // Residency is decided per chunk: only the one 4 MiB chunk holding the value was read (its
        // untouched pages now map the zero page); all other chunks stayed absent.
        #expect(residency.filter { $0 & 1 != 0 }.count <= (4 << 20) / 4096)
    }

    @Test("a real program: python3 holding a unique marker", .requiresTool("python3"))
    func python() throws {
        let python = try #require(ToolLookup.path(of: "python3"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        let marker = "procmem-scan-marker-\(UUID().uuidString.prefix(8).lowercased())"
        // The marker is built at run time so the command line does not hold it verbatim.
        process.arguments = ["-c", "import sys,time; m=bytearray(b'\(marker.uppercased())'.lower()); print('ok', flush=True); time.sleep(30)"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        defer { Glibc.kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        _ = pipe.fileHandleForReading.availableData
        let handle = try ProcessHandle(pid: process.processIdentifier)
        defer { handle.close() }
        let found = try Scanner(handle: handle).scan(.pattern(BytePattern(string: marker)))
        #expect(found.matches.count >= 1)
        for match in found.matches.matches {
            #expect(try handle.read(from: match.address, count: marker.utf8.count) == Array(marker.utf8))
        }
    }
}

@Suite("Cancellation")
struct CancellationTests {
    @Test("a scan run in a cancelled task stops at once, marked interrupted, with what it found")
    func taskCancellation() async throws {
        let fixture = try Fixture()
        let pid = fixture.pid
        let task = Task { () throws -> ScanResult in
            withUnsafeCurrentTask { $0?.cancel() }
            let handle = try ProcessHandle(pid: pid)
            defer { handle.close() }
            return try Scanner(handle: handle).scan(.value(try ScanValue.parse("0x5EED1234", as: .u32).get()),
                                                   cancellation: .currentTask)
        }
        let result = try await task.value
        #expect(result.interrupted)
        let finished = try ProcessHandle(pid: pid)
        defer { finished.close() }
        let whole = try Scanner(handle: finished).scan(.value(try ScanValue.parse("0x5EED1234", as: .u32).get()))
        #expect(!whole.interrupted)
        #expect(result.isPartial && result.matches.isPartial)
        #expect(result.bytesScanned < whole.bytesScanned)
        #expect(whole.matches.count > 0 && result.matches.count <= whole.matches.count)
    }

    @Test("a cancellation source cancels every operation that polls it, from another thread")
    func source() {
        let source = CancellationSource()
        let cancellation = source.cancellation
        #expect(!cancellation.isCancelled)
        let thread = Thread { source.cancel() }
        thread.start()
        while !cancellation.isCancelled { usleep(100) }
        #expect(source.isCancelled)
        #expect(!Cancellation.never.isCancelled)
    }
}
