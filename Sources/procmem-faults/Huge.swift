import Foundation
import Glibc
import ProcessMemoryTestSupport
import ProcessMemory

// Huge: a python3 target with 100,000+ regions (one mapping split by mprotect into rw/r/none pages);
// a 1 TiB MAP_NORESERVE mapping read partially; a THP (MADV_HUGEPAGE) region.

let hugeCases: [FaultCase] = [
    FaultCase(name: "120k-regions", group: "huge", timeout: 400,
              summary: "120,000 VMAs: memoryMap parses all; batch and reads across them are exact") { c, t in
        try manyRegions(iterations: c.n(quick: 1, full: 3), tally: t)
    },
    FaultCase(name: "tib-sparse-mapping", group: "huge", timeout: 180,
              summary: "1 TiB MAP_NORESERVE mapping: markers, zeros, exact partial at its end") { c, t in
        try sparseTiB(iterations: c.n(quick: 3, full: 10), tally: t)
    },
    FaultCase(name: "thp-region", group: "huge", timeout: 180,
              summary: "MADV_HUGEPAGE region: reads across huge-page boundaries, batch") { c, t in
        try hugePages(iterations: c.n(quick: 3, full: 10), tally: t)
    },
]

let pythonPrelude = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
def fail(what):
    print('ERR', what, ctypes.get_errno(), flush=True); sys.stdin.readline(); sys.exit(1)

"""

/// Runs a python3 target that prints "address [extra...]" and waits for a line on stdin.
func pythonTarget(_ body: String, _ args: [String] = []) throws -> (ChildProcess, [Substring]) {
    let python = try ChildProcess(["python3", "-c", pythonPrelude + body] + args)
    let line = try python.readLine(timeout: 120)
    let words = line.split(separator: " ")
    if words.first == "ERR" { python.kill(); python.reap(); throw HarnessError("python: \(line)") }
    return (python, words)
}

let manyRegionsScript = """
P = 4096; N = int(sys.argv[1])
base = libc.mmap(None, N * P, 3, 0x22, -1, 0)
if base in (None, 2**64 - 1): fail('mmap')
for k in range(N): ctypes.memset(base + k * P, k & 0xff, P)
for k in range(N):
    if k % 3 and libc.mprotect(base + k * P, P, (3, 1, 0)[k % 3]) != 0: fail('mprotect %d' % k)
print(base, flush=True)
sys.stdin.readline()
"""

func manyRegions(iterations: Int, tally: Tally) throws {
    let wanted = 120_000
    let path = "/proc/sys/vm/max_map_count"
    let original = Int((try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 65530
    var raised = false
    if original < wanted + 20_000 {
        raised = (try? "262144\n".write(toFile: path, atomically: false, encoding: .utf8)) != nil
    }
    defer { if raised { try? "\(original)\n".write(toFile: path, atomically: false, encoding: .utf8) } }
    let pages = raised || original >= wanted + 20_000 ? wanted : max(original - 5000, 1000)
    if pages < wanted { tally.note("vm.max_map_count \(original) could not be raised: \(pages) regions") }
    if raised { tally.note("raised vm.max_map_count \(original) -> 262144 for the run") }
    let page = 4096
    for _ in 0..<iterations {
        tally.attempt { () throws -> String? in
            let (python, words) = try pythonTarget(manyRegionsScript, ["\(pages)"])
            defer { python.kill(); python.reap() }
            guard let base = UInt64(words.first ?? "") else { return "no address" }
            func byte(_ k: Int) -> UInt8 { UInt8(truncatingIfNeeded: k) }
            func readable(_ k: Int) -> Bool { k % 3 != 2 }
            let handle = try ProcessHandle(pid: python.pid)
            // 1. The map: every page its own region with the right permissions.
            let t0 = now()
            let map = try handle.memoryMap()
            let mapSeconds = now() - t0
            let inside = map.regions(overlapping: base..<(base + UInt64(pages * page)))
            if inside.count != pages { return "memoryMap has \(inside.count) regions in the range, expected \(pages)" }
            for (k, region) in inside.enumerated() {
                let perms: MemoryRegion.Permissions = [[.read, .write], [.read], []][k % 3]
                if region.start != base + UInt64(k * page) || region.size != UInt64(page) || region.permissions != perms {
                    return "region \(k) is \(region)"
                }
            }
            let rawLines = readProcFile("/proc/\(python.pid)/maps").map { bytes in bytes.reduce(0) { $0 + ($1 == 10 ? 1 : 0) } } ?? -1
            if abs(rawLines - map.count) > 2 { return "memoryMap has \(map.count) regions, /proc maps \(rawLines) lines" }
            tally.note("\(map.count) regions parsed in \(format1(mapSeconds)) s")
            // 2. A batch across all of them: one entry inside each page, one across each boundary.
            let batch = ReadBatch(capacity: 2 * pages, bytes: pages * 200)
            for k in 0..<pages { batch.add(address: base + UInt64(k * page + 100), count: 64) }
            for k in 0..<(pages - 1) { batch.add(address: base + UInt64((k + 1) * page - 40), count: 100) }
            let t1 = now()
            try handle.read(batch)
            tally.note("batch of \(batch.count) entries in \(format1(now() - t1)) s")
            var wrongOutcome = 0
            for k in 0..<pages {
                if readable(k) {
                    if batch.outcome(k) != .ok { wrongOutcome += 1; continue }
                    if batch.bytes(k) != [UInt8](repeating: byte(k), count: 64) { tally.misread(1, "batch entry in page \(k)") }
                } else if case .failed(_, let n) = batch.outcome(k), n == 0 {
                } else { wrongOutcome += 1 }
            }
            for k in 0..<(pages - 1) {
                let index = pages + k
                let expectedCount = readable(k) ? (readable(k + 1) ? 100 : 40) : 0
                let got: Int
                switch batch.outcome(index) {
                case .ok: got = 100
                case .failed(_, let n): got = n
                case .pending: got = -1
                }
                if got != expectedCount {
                    tally.lost(abs(expectedCount - got), "boundary entry after page \(k): \(got) bytes, expected \(expectedCount)")
                    continue
                }
                let bytes = batch.bytes(index)
                let expected = [UInt8](repeating: byte(k), count: 40) + [UInt8](repeating: byte(k + 1), count: 60)
                if bytes != Array(expected[0..<bytes.count]) { tally.misread(1, "boundary entry after page \(k)") }
            }
            if wrongOutcome > 0 { return "\(wrongOutcome) batch entries with the wrong outcome" }
            // 3. Single reads: debugger mode reads all 3 kinds; respecting stops exactly at the none page.
            for start in stride(from: 0, to: pages - 3000, by: pages / 7) {
                let s = start - start % 3
                let all = try handle.readExactly(from: base + UInt64(s * page), count: 3000 * page, mode: .debugger)
                for k in 0..<3000 where all[k * page] != byte(s + k) || all[k * page + page - 1] != byte(s + k) {
                    tally.misread(1, "debugger read page \(s + k)"); break
                }
                let t = try handle.readTransfer(from: base + UInt64(s * page + 7), count: 3 * page, mode: .respectingProtections)
                if t.bytes.count != 2 * page - 7 { tally.lost(abs(2 * page - 7 - t.bytes.count), "respecting read across regions: \(t.bytes.count)") }
            }
            return nil
        }
    }
}

let sparseScript = """
SIZE = 1 << 40
base = libc.mmap(None, SIZE, 3, 0x22 | 0x4000, -1, 0)
if base in (None, 2**64 - 1): fail('mmap 1 TiB')
for off, b in ((0, 0x5a), (1 << 39, 0x5b), (SIZE - 4096, 0x5c)): ctypes.memset(base + off, b, 4096)
print(base, flush=True)
sys.stdin.readline()
"""

func sparseTiB(iterations: Int, tally: Tally) throws {
    let size = UInt64(1) << 40
    for iteration in 0..<iterations {
        tally.attempt { () throws -> String? in
            let (python, words) = try pythonTarget(sparseScript)
            defer { python.kill(); python.reap() }
            guard let base = UInt64(words.first ?? "") else { return "no address" }
            let handle = try ProcessHandle(pid: python.pid)
            let map = try handle.memoryMap()
            guard let region = map.region(containing: base), region.start == base, region.size == size else {
                return "the map does not show the 1 TiB region"
            }
            let mode: ReadMode = iteration % 2 == 0 ? .debugger : .respectingProtections
            for (offset, value) in [(UInt64(0), UInt8(0x5a)), (size / 2, 0x5b), (size - 4096, 0x5c)] {
                if try handle.readExactly(from: base + offset, count: 4096, mode: mode) != [UInt8](repeating: value, count: 4096) {
                    tally.misread(1, "marker at +\(offset)")
                }
            }
            let zeros = try handle.readExactly(from: base + size / 4 + UInt64(iteration) * (1 << 30), count: 16 << 20, mode: mode)
            if zeros.contains(where: { $0 != 0 }) { tally.misread(1, "untouched pages are not zero") }
            // A read running off the end of the mapping stops exactly at its end.
            let next = map.region(containing: base + size)
            let t = try handle.readTransfer(from: base + size - 8192, count: 16384, mode: mode)
            if next == nil && t.bytes.count != 8192 { tally.lost(abs(8192 - t.bytes.count), "read past the end: \(t.bytes.count) bytes") }
            if t.bytes.count >= 8192 && Array(t.bytes[4096..<8192]) != [UInt8](repeating: 0x5c, count: 4096) { tally.misread(1, "end marker") }
            let batch = ReadBatch()
            batch.add(address: base, count: 4096)
            batch.add(address: base + size / 2 + 100, count: 100)
            batch.add(address: base + size / 3, count: 4096)
            batch.add(address: base + size - 50, count: 100)
            try handle.read(batch)
            if batch.bytes(0) != [UInt8](repeating: 0x5a, count: 4096) || batch.bytes(1) != [UInt8](repeating: 0x5b, count: 100)
                || batch.bytes(2) != [UInt8](repeating: 0, count: 4096) { tally.misread(1, "batch over the TiB mapping") }
            if next == nil, case .failed(_, let n) = batch.outcome(3), n == 50 {} else if next == nil {
                tally.lost(1, "batch entry past the end: \(batch.outcome(3))")
            }
            let rss = Int(procStatField(python.pid, "VmRSS")?.split(separator: " ").first ?? "") ?? 0
            if rss > 1 << 20 { return "reads populated the sparse mapping: VmRSS \(rss) kB" }
            return nil
        }
    }
}

let thpScript = """
H = 2 << 20; SIZE = 4 * H
raw = libc.mmap(None, SIZE + H, 3, 0x22, -1, 0)
if raw in (None, 2**64 - 1): fail('mmap')
base = (raw + H - 1) // H * H
libc.madvise(base, SIZE, 14)
for k in range(SIZE // 4096): ctypes.memset(base + k * 4096, (k * 5 + 1) & 0xff, 4096)
huge = 0
for line in open('/proc/self/smaps_rollup'):
    if line.startswith('AnonHugePages:'): huge = int(line.split()[1])
print(base, huge, flush=True)
sys.stdin.readline()
"""

func hugePages(iterations: Int, tally: Tally) throws {
    let setting = (try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8)) ?? ""
    if setting.isEmpty || setting.contains("[never]") {
        tally.skipped = "THP is off or unavailable (\(setting.trimmingCharacters(in: .whitespacesAndNewlines)))"
        return
    }
    let page = 4096
    let size = 8 << 20
    func expected(_ offset: Int) -> UInt8 { UInt8(truncatingIfNeeded: (offset / page) * 5 + 1) }
    for iteration in 0..<iterations {
        tally.attempt { () throws -> String? in
            let (python, words) = try pythonTarget(thpScript)
            defer { python.kill(); python.reap() }
            guard words.count >= 2, let base = UInt64(words[0]), let huge = Int(words[1]) else { return "bad python output" }
            if iteration == 0 { tally.note(huge > 0 ? "AnonHugePages \(huge) kB" : "no huge pages were used (THP not effective)") }
            let handle = try ProcessHandle(pid: python.pid)
            for mode in ReadMode.allCases {
                let all = try handle.readExactly(from: base, count: size, mode: mode)
                for k in 0..<(size / page) where all[k * page] != expected(k * page) || all[k * page + page - 1] != expected(k * page) {
                    tally.misread(1, "\(mode) page \(k)"); break
                }
                for boundary in stride(from: 2 << 20, to: size, by: 2 << 20) {
                    let bytes = try handle.readExactly(from: base + UInt64(boundary - 100), count: 200, mode: mode)
                    if bytes != (0..<200).map({ expected(boundary - 100 + $0) }) { tally.misread(1, "across a huge-page boundary") }
                }
            }
            let batch = ReadBatch()
            for k in 0..<1024 { batch.add(address: base + UInt64(k * 8192 + 4000), count: 200) }
            try handle.read(batch)
            for k in 0..<1024 where batch.bytes(k) != (0..<200).map({ expected(k * 8192 + 4000 + $0) }) {
                tally.misread(1, "batch entry \(k)"); break
            }
            return nil
        }
    }
}
