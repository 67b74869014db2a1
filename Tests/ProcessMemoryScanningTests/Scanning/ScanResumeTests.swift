import Foundation
import ProcessMemoryTestSupport
import Testing
import ProcessMemoryCore
import ProcessMemoryScanning

/// A page that becomes unreadable or unmapped inside a region being scanned hides only itself: the
/// scan skips it, lists it, and goes on with the rest of the region. (Found by the fault matrix's
/// mapping-races-during-scans-dumps case: one PROT_NONE page used to hide the rest of its region.)
@Suite("Scans resume after a failing page")
struct ScanResumeTests {
    static let pages = 16
    static let marker = "efbeadde"  // 0xDEADBEEF little-endian

    /// A fixture region of `pages` pages with the marker at offset 256 of every page, and the one
    /// region as it was mapped (so the scan is handed a region that the target changes afterwards).
    static func markedRegion(_ fixture: Fixture) throws -> (base: UInt64, region: MemoryRegion) {
        let size = pages * 4096
        let reply = try fixture.ok("map \(size)")
        let base = UInt64(try #require(reply["address"] as? Int))
        for page in 0..<pages { try fixture.ok("write \(base + UInt64(page * 4096 + 256)) \(marker)") }
        let region = MemoryRegion(start: base, end: base + UInt64(size), permissions: [.read, .write], isShared: false, path: nil)
        return (base, region)
    }

    @Test("a PROT_NONE page and an unmapped page in the middle are skipped alone", arguments: ["protect", "unmap"])
    func skipsOnlyTheFailingPages(_ change: String) throws {
        let fixture = try Fixture()
        let (base, region) = try Self.markedRegion(fixture)
        let first = base + 5 * 4096
        let second = base + 11 * 4096
        for address in [first, second] {
            if change == "protect" { try fixture.ok("protect \(address) 4096 ---") } else { try fixture.ok("unmap \(address) 4096") }
        }
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let scanner = ProcessMemoryScanning.Scanner(handle: handle, options: ScanOptions(chunkSize: 4 * 4096))
        let result = try scanner.scan(.value(try ScanValue("0xdeadbeef", as: .u32)), regions: [region])
        let found = result.matches.matches.map { Int(($0.address - base) / 4096) }
        #expect(found == (0..<Self.pages).filter { $0 != 5 && $0 != 11 })
        #expect(result.skipped.map { $0.start..<$0.end } == [first..<(first + 4096), second..<(second + 4096)])
        let code: ProcessMemoryError.Code = change == "protect" ? .protectionFailure : .notFound
        #expect(result.skipped.allSatisfy { $0.reason.code == code })
    }

    @Test("a comparison with a snapshot skips a page made unreadable since, and compares the pages after it")
    func compareResumes() throws {
        let fixture = try Fixture()
        let (base, region) = try Self.markedRegion(fixture)
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(UUID().uuidString).snap").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var options = ScanOptions(chunkSize: 8 * 4096)
        options.regions.addressRange = region.start..<region.end
        let scanner = ProcessMemoryScanning.Scanner(handle: handle, options: options)
        let taken = try scanner.snapshot(as: .u32, to: path)
        #expect(taken.skipped.isEmpty)
        // Page 3 becomes unreadable and the marker on page 9 changes: the compare must still see it.
        try fixture.ok("protect \(base + 3 * 4096) 4096 ---")
        try fixture.ok("write \(base + 9 * 4096 + 256) 01000000")
        let compared = try scanner.compare(snapshotAt: path, where: .changed)
        #expect(compared.matches.matches.map(\.address) == [base + 9 * 4096 + 256])
        #expect(compared.skipped.map { $0.start..<$0.end } == [(base + 3 * 4096)..<(base + 4 * 4096)])
    }
}
