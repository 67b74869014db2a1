import Foundation
import Glibc
import Testing
import ProcessMemoryCore
import ProcessMemoryTestSupport
import ProcessMemoryTestTraits

/// The populated runs of a mapping, by the PAGEMAP_SCAN ioctl and by reading 8-byte entries: both
/// agree with each other and with the pages a python3 process touched.
@Suite("Pagemap runs")
struct PagemapTests {
    /// Pages touched: runs of 1, 2, 3… pages with gaps of 1, 3, 5… pages, then 64 pages dropped
    /// again with MADV_DONTNEED, in a 2,048-page private anonymous mapping.
    static let script = """
        import ctypes, mmap, sys, time
        m = mmap.mmap(-1, 2048 * 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        page, n = 0, 1
        while page < 2048:
            for p in range(page, min(page + n, 2048)):
                m[p * 4096] = 1
            page += n + (2 * n - 1)
            n += 1
        address = ctypes.addressof(ctypes.c_char.from_buffer(m))
        m.madvise(mmap.MADV_DONTNEED, 1024 * 4096, 64 * 4096)
        print(hex(address), flush=True)
        time.sleep(600)
        """

    /// The runs the script populates, computed the same way.
    static func expectedRuns(base: UInt64) -> [Range<UInt64>] {
        var touched = [Bool](repeating: false, count: 2048)
        var page = 0, n = 1
        while page < 2048 {
            for p in page..<min(page + n, 2048) { touched[p] = true }
            page += n + (2 * n - 1)
            n += 1
        }
        for p in 1024..<1088 { touched[p] = false }
        var runs: [Range<UInt64>] = []
        var start: Int?
        for p in 0...2048 {
            let on = p < 2048 && touched[p]
            if on, start == nil { start = p }
            if !on, let s = start {
                runs.append((base + UInt64(s) * 4096)..<(base + UInt64(p) * 4096))
                start = nil
            }
        }
        return runs
    }

    @Test("PAGEMAP_SCAN and the entries give the touched runs, whole and for unaligned parts", .requiresPagemapScan)
    func scanMatchesEntries() throws {
        let child = try ChildProcess(["python3", "-c", Self.script])
        defer { child.kill(); child.reap() }
        let line = try child.readLine()
        let base = try #require(UInt64(line.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst(2), radix: 16))
        let handle = try ProcessHandle(pid: child.pid)
        defer { handle.close() }
        let pagemap = try #require(Pagemap(handle: handle))
        let whole = base..<(base + 2048 * 4096)
        let expected = Self.expectedRuns(base: base)
        #expect(expected.count > 30)
        #expect(pagemap.scannedRuns(in: whole) == expected)
        #expect(pagemap.runsFromEntries(in: whole) == expected)
        #expect(pagemap.populatedRuns(in: whole) == expected)
        // Parts that start and end inside pages, across runs and inside the dropped stretch.
        for (from, to) in [(1, 4097), (5000, 300_000), (1020 * 4096 + 7, 1100 * 4096 - 3), (4_000_000, 2048 * 4096)] {
            let part = (base + UInt64(from))..<(base + UInt64(to))
            let clipped = expected.compactMap { run -> Range<UInt64>? in
                let start = max(run.lowerBound, part.lowerBound), end = min(run.upperBound, part.upperBound)
                return start < end ? start..<end : nil
            }
            #expect(pagemap.scannedRuns(in: part) == clipped, "part \(from)..<\(to)")
            #expect(pagemap.runsFromEntries(in: part) == clipped, "part \(from)..<\(to)")
        }
    }
}
