// procmem-bench: our API against the raw system calls, side by side, on the package's fixture.
//
//   procmem-bench --fixture PATH [--size-mib 1024] [--repetitions 6]
//
// Every figure is the best of the per-round medians, ours and the baseline measured alternately in
// the same run. Nothing is asserted: the targets are printed beside the figures.
import CBaseline
import Foundation
import Glibc
import ProcessMemory

var arguments = CommandLine.arguments.dropFirst()
var fixturePath = ""
var sizeMiB = 1024
var repetitions = 6
var only: String?
var procmemPath = ""
var unknownMiB = 1536
var scanmemLimit = 600.0
var manyMiB = 256
while let argument = arguments.popFirst() {
    switch argument {
    case "--fixture": fixturePath = arguments.popFirst() ?? ""
    case "--size-mib": sizeMiB = Int(arguments.popFirst() ?? "") ?? sizeMiB
    case "--repetitions": repetitions = Int(arguments.popFirst() ?? "") ?? repetitions
    case "--only": only = arguments.popFirst()
    case "--procmem": procmemPath = arguments.popFirst() ?? ""
    case "--unknown-mib": unknownMiB = Int(arguments.popFirst() ?? "") ?? unknownMiB
    case "--scanmem-limit": scanmemLimit = Double(arguments.popFirst() ?? "") ?? scanmemLimit
    case "--many-mib": manyMiB = Int(arguments.popFirst() ?? "") ?? manyMiB
    default:
        FileHandle.standardError.write(Data("usage: procmem-bench --fixture PATH [--size-mib N] [--repetitions N] [--only 1|2|3|4|5|6|6s|6d|8|8-cold-profile|9|10] [--procmem PATH] [--unknown-mib N] [--scanmem-limit SECONDS] [--many-mib N]\n".utf8))
        exit(64)
    }
}

/// `unknown`: rows 9 and 10's procmem binary (empty: the rows are left out), row 9's region size,
/// the scanmem time limit and row 10's region size.
func run(fixturePath: String, sizeMiB: Int, repetitions: Int, only: String?,
         unknown: (procmem: String, sizeMiB: Int, scanmemLimit: Double, manyMiB: Int)) throws {
    func wanted(_ number: String) -> Bool { only == nil || only == number }
    let fixture = try FixtureProcess(executable: fixturePath)
    defer { fixture.stop() }
    let size = sizeMiB << 20
    guard let base = (try fixture.command("map \(size)")["address"] as? NSNumber)?.uint64Value,
          let hole = fixture.region("hole"), let holeOffset = hole.holeOffset
    else { throw BenchError.message("the fixture did not map the target region") }
    let unmapped = hole.address + holeOffset
    let handle = try ProcessHandle(pid: fixture.pid)
    let memFD = open("/proc/\(fixture.pid)/mem", O_RDONLY)
    guard memFD >= 0 else { throw BenchError.message("cannot open /proc/\(fixture.pid)/mem") }
    defer { close(memFD) }
    let pid = fixture.pid
    var rows: [Row] = []
    var generator = SystemRandomNumberGenerator()

    // 1. Bulk reads.
    let bulk = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
    defer { bulk.deallocate() }
    memset(bulk.baseAddress!, 0, size)
    for length in [64 << 20, size] where length <= size && wanted("1") {
        let slice = UnsafeMutableRawBufferPointer(rebasing: bulk[0..<length])
        let result = try compare(repetitions: repetitions, ours: {
            guard try handle.read(from: base, into: slice, mode: .respectingProtections) == length else { throw BenchError.message("short") }
        }, raw: {
            guard CBaseline_bulk_process_vm_readv(pid, base, slice.baseAddress!, length) == length else { throw BenchError.message("short") }
        })
        rows.append(Row(number: "1", name: "bulk read \(length >> 20) MiB (respecting protections)", unit: "GB/s",
                        ours: Double(length) / result.ours / 1e9, raw: Double(length) / result.raw / 1e9,
                        baseline: "process_vm_readv", target: 0.95, oursRSS: result.oursRSS, rawRSS: result.rawRSS))
        let debug = try compare(repetitions: repetitions, ours: {
            guard try handle.read(from: base, into: slice, mode: .debugger) == length else { throw BenchError.message("short") }
        }, raw: {
            guard CBaseline_bulk_pread(memFD, base, slice.baseAddress!, length) == length else { throw BenchError.message("short") }
        })
        rows.append(Row(number: "1", name: "bulk read \(length >> 20) MiB (debugger)", unit: "GB/s",
                        ours: Double(length) / debug.ours / 1e9, raw: Double(length) / debug.raw / 1e9,
                        baseline: "pread /proc/PID/mem", target: 0.95, oursRSS: debug.oursRSS, rawRSS: debug.rawRSS))
    }

    // 2. One 8-byte read per call at random aligned addresses.
    let count = 200_000
    let addresses = (0..<count).map { _ in base + (UInt64.random(in: 0..<UInt64(size / 8), using: &generator) * 8) }
    let small = UnsafeMutableRawBufferPointer.allocate(byteCount: count * 8, alignment: 8)
    defer { small.deallocate() }
    if wanted("2") {
    let single = try compare(repetitions: repetitions, ours: {
        for (index, address) in addresses.enumerated() {
            try handle.read(from: address, into: UnsafeMutableRawBufferPointer(rebasing: small[(index * 8)..<(index * 8 + 8)]))
        }
    }, raw: {
        guard CBaseline_single_pread(memFD, addresses, count, 8, small.baseAddress!) == count else { throw BenchError.message("short") }
    })
    rows.append(Row(number: "2", name: "8-byte reads, one per call (debugger mode)", unit: "reads/s",
                    ours: Double(count) / single.ours, raw: Double(count) / single.raw,
                    baseline: "pread on a kept /proc/PID/mem fd (fastest raw)", target: 0.9,
                    oursRSS: single.oursRSS, rawRSS: single.rawRSS))
    // The same, as 12 back-to-back pairs: the median per-pair ratio and its range are steadier
    // than the ratio of two medians taken seconds apart on a shared machine.
    let pairs = try compareInterleaved(rounds: 12, ours: {
        for (index, address) in addresses.enumerated() {
            try handle.read(from: address, into: UnsafeMutableRawBufferPointer(rebasing: small[(index * 8)..<(index * 8 + 8)]))
        }
    }, raw: {
        guard CBaseline_single_pread(memFD, addresses, count, 8, small.baseAddress!) == count else { throw BenchError.message("short") }
    })
    let medianRatio = pairs.ratios[pairs.ratios.count / 2]
    rows.append(Row(number: "2", name: String(format: "the same, 12 back-to-back pairs: median pair ratio %.2f× (range %.2f–%.2f×)",
                                              medianRatio, pairs.ratios.first ?? 0, pairs.ratios.last ?? 0), unit: "reads/s",
                    ours: Double(count) / pairs.ours, raw: Double(count) / pairs.raw,
                    baseline: "pread on a kept /proc/PID/mem fd (fastest raw)", target: 0.9, oursRSS: 0, rawRSS: 0))
    let singleVM = try compare(repetitions: repetitions, ours: {
        for (index, address) in addresses.enumerated() {
            try handle.read(from: address, into: UnsafeMutableRawBufferPointer(rebasing: small[(index * 8)..<(index * 8 + 8)]),
                            mode: .respectingProtections)
        }
    }, raw: {
        guard CBaseline_single_process_vm_readv(pid, addresses, count, 8, small.baseAddress!) == count else { throw BenchError.message("short") }
    })
    rows.append(Row(number: "2", name: "8-byte reads, one per call (respecting protections)", unit: "reads/s",
                    ours: Double(count) / singleVM.ours, raw: Double(count) / singleVM.raw,
                    baseline: "process_vm_readv per read", target: nil, oursRSS: singleVM.oursRSS, rawRSS: singleVM.rawRSS))
    }

    // 3. Batched 8-byte reads, with 0 % and 10 % of entries failing.
    let batch = ReadBatch(capacity: count, bytes: count * 8)
    for failing in [0, 10] where wanted("3") {
        let entries = addresses.enumerated().map { index, address in
            failing > 0 && index % (100 / failing) == 0 ? unmapped + UInt64(index % 512) * 8 : address
        }
        let result = try compare(repetitions: repetitions, ours: {
            batch.removeAll()
            for address in entries { batch.add(address: address, count: 8) }
            try handle.read(batch)
        }, raw: {
            _ = CBaseline_batched_process_vm_readv(pid, addresses, count, 8, small.baseAddress!)
        })
        var okCount = 0
        for index in 0..<batch.count where batch.outcome(index) == .ok { okCount += 1 }
        guard okCount == count - (failing > 0 ? count / (100 / failing) : 0) else {
            throw BenchError.message("batch outcome mismatch: \(okCount) ok")
        }
        rows.append(Row(number: "3", name: "batched 8-byte reads, \(failing) % failing", unit: "reads/s",
                        ours: Double(count) / result.ours, raw: Double(count) / result.raw,
                        baseline: "batched process_vm_readv, no faults", target: failing == 0 ? 0.9 : 0.7,
                        oursRSS: result.oursRSS, rawRSS: result.rawRSS))
    }

    // 4. Clustered: 1024 fields of 8 bytes within 64 KiB, many clusters.
    let clusters = 200
    var clustered: [UInt64] = []
    for _ in 0..<clusters {
        let start = base + UInt64.random(in: 0..<UInt64((size - (64 << 10)) / 4096), using: &generator) * 4096
        for _ in 0..<1024 { clustered.append(start + UInt64.random(in: 0..<(8192), using: &generator) * 8) }
    }
    let clusterBatch = ReadBatch(capacity: 1024, bytes: 8192)
    if wanted("4") {
    let clusteredResult = try compare(repetitions: repetitions, ours: {
        for cluster in 0..<clusters {
            clusterBatch.removeAll()
            for address in clustered[(cluster * 1024)..<(cluster * 1024 + 1024)] { clusterBatch.add(address: address, count: 8) }
            try handle.read(clusterBatch)
        }
    }, raw: {
        clustered.withUnsafeBufferPointer { all in
            for cluster in 0..<clusters {
                _ = CBaseline_batched_process_vm_readv(pid, all.baseAddress! + cluster * 1024, 1024, 8, small.baseAddress!)
            }
        }
    })
    let fields = Double(clusters * 1024)
    rows.append(Row(number: "4", name: "clustered: 1024 fields within 64 KiB", unit: "reads/s",
                    ours: fields / clusteredResult.ours, raw: fields / clusteredResult.raw,
                    baseline: "batched process_vm_readv (1024 iovecs)", target: 5, oursRSS: clusteredResult.oursRSS,
                    rawRSS: clusteredResult.rawRSS))
    }
    if wanted("5") { rows += try scanRows(handle: handle, pid: pid, base: base, size: size, repetitions: repetitions) }
    if wanted("6") { rows += try dumpRows(pid: pid, fixturePath: fixturePath, repetitions: max(2, repetitions / 3)) }
    if wanted("6s") { rows += try sparseDumpRows(repetitions: 2) }
    if wanted("6d") { rows += try denseDumpRows(sizeMiB: sizeMiB, rounds: max(5, repetitions)) }
    if wanted("9") && !unknown.procmem.isEmpty {
        rows += try unknownValueRows(fixturePath: fixturePath, procmem: unknown.procmem, sizeMiB: unknown.sizeMiB,
                                     scanmemSeconds: unknown.scanmemLimit)
    }
    if wanted("10") && !unknown.procmem.isEmpty {
        rows += try manyMatchesRows(fixturePath: fixturePath, procmem: unknown.procmem, scanMiB: unknown.manyMiB, sessionMiB: 16,
                                    scanmemSeconds: unknown.scanmemLimit)
    }
    report(rows, sizeMiB: sizeMiB)
    if wanted("8") { try symbolRows(handle: handle, pid: pid, base: base, size: size, repetitions: repetitions) }
    // Not a row: only the cold naming of row 8, repeated, for a profiler (perf record).
    if only == "8-cold-profile" { try symbolColdProfile(handle: handle, rounds: max(20, repetitions * 10)) }
}

func report(_ rows: [Row], sizeMiB: Int) {
    func figure(_ value: Double, _ unit: String) -> String {
        unit == "GB/s" ? String(format: "%.2f", value) : String(format: "%.3g", value)
    }
    print("procmem-bench: target region \(sizeMiB) MiB, \(ProcessInfo.processInfo.activeProcessorCount) cores, "
          + "kernel \(ProcessInfo.processInfo.operatingSystemVersionString)")
    print("| # | measurement | unit | ours | raw | ratio | target | met | baseline | peak RSS growth ours / raw (KiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows {
        let target = row.target.map { String(format: "≥ %.2g×", $0) } ?? "–"
        let met = row.target.map { row.ratio >= $0 ? "yes" : "no" } ?? "–"
        print("| \(row.number) | \(row.name) | \(row.unit) | \(figure(row.ours, row.unit)) | \(figure(row.raw, row.unit)) | "
              + String(format: "%.2f×", row.ratio) + " | \(target) | \(met) | \(row.baseline) | \(row.oursRSS >> 10) / \(row.rawRSS >> 10) |")
    }
    // #7: the peak RSS growth of each measurement above, as its own rows. A scan must stay within
    // 64 MiB plus its matches whatever the target's size (the matches here are a handful of bytes).
    for row in rows where (row.number != "6" || row.unit == "GB/s") && row.number != "6d" && row.number != "9" && row.number != "10" && !row.name.hasPrefix("the same")
        && !row.baseline.hasPrefix("scanmem") {
        let scan = row.number == "5" && row.baseline.hasPrefix("C ")
        let limit = 64 << 20
        let target = scan ? "≤ 64 MiB + matches" : "–"
        let met = scan ? (row.oursRSS <= limit ? "yes" : "no") : "–"
        let name = "peak RSS growth: " + (row.number == "6" ? "core dump of the fixture" : row.name)
        print("| 7 | \(name) | KiB | \(row.oursRSS >> 10) | \(row.rawRSS >> 10) | – | \(target) | \(met) | the same run's \(row.baseline) | |")
    }
}

do {
    try run(fixturePath: fixturePath, sizeMiB: sizeMiB, repetitions: repetitions, only: only,
            unknown: (procmemPath, unknownMiB, scanmemLimit, manyMiB))
} catch {
    FileHandle.standardError.write(Data("procmem-bench: \(error)\n".utf8))
    exit(1)
}
