import CBaseline
import Foundation
import Glibc
import ProcessMemory

/// #6: a full core dump of the fixture (holding a mapped region of the benchmark's size) by our
/// library, following the target's coredump_filter as gcore does, against `gcore`, and a
/// byte-for-byte comparison of the PT_LOAD contents both cores hold.
///
/// Both cores are written to the same temporary directory and removed afterwards. Every run of
/// differing bytes is printed on stderr with the region it lies in and the likely reason: gcore
/// zero-fills a whole section when part of it cannot be read (a guard page, a memfd's pages past
/// its end), and live data (the rseq `cpu_id`) can change between the two dumps.
func dumpRows(pid: Int32, fixturePath: String, repetitions: Int) throws -> [Row] {
    guard let gcore = ["/usr/bin/gcore", "/usr/local/bin/gcore"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        FileHandle.standardError.write(Data("procmem-bench: gcore (part of gdb) is not installed: row 6 is left out\n".utf8))
        return []
    }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-bench-dump-\(getpid())").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let ours = directory + "/ours.core"
    let prefix = directory + "/gcore"
    let theirs = prefix + ".\(pid)"
    let handle = try ProcessHandle(pid: pid)
    defer { handle.close() }
    var dumped: UInt64 = 0
    var index: DumpIndex?
    // Like for like: our core follows the same coredump_filter rules as gcore.
    var options = DumpOptions(stopMethod: .ptrace)
    options.selection = .coredumpFilter(nil)
    // Every timed run starts with no output file and no dirty page cache (unlink, sync(2), both
    // untimed): otherwise each run pays for truncating the last run's gigabyte and for writing back
    // the other tool's dirty pages, whichever happens to cross the kernel's dirty threshold.
    func clean() {
        for path in [ours, ours + ".json", theirs] { unlink(path) }
        sync()
    }
    let oursRun = {
        index = try handle.dumpCore(to: ours, options: options)
        dumped = index?.bytesDumped ?? 0
    }
    // The peak RSS of one dump (its two chunk buffers), measured on its own.
    clean()
    let single = try measure(repetitions: 1) { clean(); try oursRun() }
    let result = try compareInterleaved(rounds: max(7, repetitions), prepare: clean, ours: oursRun, raw: {
        try runGcore(gcore, prefix: prefix, pid: pid)
    })
    // The ceiling: the same bytes from memory to a new file (8 MiB pwrites, writeback started every
    // 8 MiB, fsync), paired with gcore. No dumper can beat gcore by more than this here: a dump
    // writes the same bytes and must first copy them out of the target.
    let floorPath = directory + "/floor", floorBytes = Int(dumped)
    let floorBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, floorBytes), alignment: 4096)
    defer { floorBuffer.deallocate() }
    for offset in stride(from: 0, to: floorBytes, by: 4096) { floorBuffer[offset] = UInt8(truncatingIfNeeded: offset >> 12) | 1 }
    let ceiling = try compareInterleaved(rounds: max(7, repetitions), prepare: { clean(); unlink(floorPath) }, ours: {
        guard CBaseline_write_floor(floorPath, floorBuffer.baseAddress!, floorBytes, 8 << 20, 1, 8 << 20) == 0 else {
            throw BenchError.message("the floor writer failed: \(String(cString: strerror(errno)))")
        }
    }, raw: { try runGcore(gcore, prefix: prefix, pid: pid) })
    unlink(floorPath)
    // Both cores again, untimed, for the byte comparison.
    clean()
    try runGcore(gcore, prefix: prefix, pid: pid)
    try oursRun()
    let (equal, compared, differences) = try compareCores(ours, theirs)
    clean()
    _ = fixturePath  // gcore and our dump need only the PID
    if let index { explain(differences, index: index) }
    func range(_ ratios: [Double]) -> String {
        String(format: "median pair ratio %.2f×, range %.2f–%.2f×", ratios[ratios.count / 2], ratios.first ?? 0, ratios.last ?? 0)
    }
    return [
        Row(number: "6", name: "core dump of the fixture (\(dumped >> 20) MiB, coredump_filter rules) vs gcore, \(result.ratios.count) pairs: \(range(result.ratios))",
            unit: "GB/s", ours: Double(dumped) / result.ours / 1e9, raw: Double(dumped) / result.raw / 1e9,
            baseline: "gcore", target: 3.0, oursRSS: single.peakRSS, rawRSS: 0),
        Row(number: "6", name: "ceiling for the row above: the floor (the same bytes from memory to a new file, 8 MiB pwrites, writeback per 8 MiB, fsync) vs gcore, \(ceiling.ratios.count) pairs: \(range(ceiling.ratios))",
            unit: "GB/s", ours: Double(dumped) / ceiling.ours / 1e9, raw: Double(dumped) / ceiling.raw / 1e9,
            baseline: "gcore", target: nil, oursRSS: 0, rawRSS: 0),
        Row(number: "6", name: "core contents equal to gcore's under coredump_filter (bytes equal / bytes both hold; differences on stderr)", unit: "bytes",
            ours: Double(equal), raw: Double(compared), baseline: "gcore PT_LOADs", target: 1.0, oursRSS: 0, rawRSS: 0),
    ]
}

/// Runs `gcore -o PREFIX PID` (posix_spawn), quietly, and waits for it.
func runGcore(_ gcore: String, prefix: String, pid: Int32) throws {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    var argv: [UnsafeMutablePointer<CChar>?] = [strdup(gcore), strdup("-o"), strdup(prefix), strdup(String(pid)), nil]
    defer { argv.forEach { free($0) } }
    var child: pid_t = 0
    guard posix_spawn(&child, gcore, &actions, nil, &argv, environ) == 0 else { throw BenchError.message("cannot run \(gcore)") }
    var status: Int32 = 0
    while waitpid(child, &status, 0) == -1 && errno == EINTR {}
    guard status == 0 else { throw BenchError.message("gcore failed with status \(status)") }
}

/// The PT_LOADs (address, file offset, bytes in the file) of an ELF64 core.
private func loads(_ bytes: UnsafeRawBufferPointer) -> [(address: UInt64, offset: UInt64, size: UInt64)] {
    func u16(_ at: Int) -> Int { Int(bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
    func u32(_ at: Int) -> UInt32 { bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self) }
    func u64(_ at: Int) -> UInt64 { bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self) }
    guard bytes.count >= 64 else { return [] }
    let phoff = Int(u64(32))
    var count = u16(56)
    if count == 0xffff { count = Int(u32(Int(u64(40)) + 44)) }
    return (0..<count).compactMap { index in
        let at = phoff + index * 56
        guard at + 56 <= bytes.count, u32(at) == 1, u64(at + 32) > 0 else { return nil }
        return (u64(at + 16), u64(at + 8), u64(at + 32))
    }
}

/// A run of bytes that differ between the two cores.
struct Difference {
    var address: UInt64
    var length: Int
    var oursAllZero: Bool
    var gcoreAllZero: Bool
}

/// Prints every differing run with the region it lies in and the reason it differs.
private func explain(_ differences: [Difference], index: DumpIndex) {
    var lines: [String] = []
    for difference in differences {
        let region = index.regions.first { $0.start <= difference.address && difference.address < $0.end }
        let name = region.map { "\($0.path ?? "anonymous") \($0.permissions) 0x\(String($0.start, radix: 16))-0x\(String($0.end, radix: 16))" } ?? "?"
        let reason: String
        if difference.gcoreAllZero, let region, !region.failed.isEmpty {
            reason = "gcore wrote zeros: one read of a whole section failed on its unreadable part (\(region.failed.map { "0x\(String($0.start, radix: 16))-0x\(String($0.end, radix: 16)) \($0.code)" }.joined(separator: ", "))); ours has the readable bytes"
        } else if difference.length <= 4 {
            // A CPU number is 0 on one side when the thread ran on CPU 0 during one of the dumps.
            reason = "a small live field changed between the two dumps (e.g. the kernel's rseq cpu_id_start/cpu_id, written when a thread migrates between CPUs)"
        } else if difference.gcoreAllZero {
            reason = "gcore wrote zeros where ours has data"
        } else if difference.oursAllZero {
            reason = "ours has zeros where gcore has data"
        } else {
            reason = "both hold data that differs (memory changed between the dumps)"
        }
        lines.append("  0x\(String(difference.address, radix: 16)) +\(difference.length) in \(name): \(reason)")
    }
    let header = "procmem-bench: core contents vs gcore (both under coredump_filter): \(differences.count) differing runs\n"
    FileHandle.standardError.write(Data((header + lines.joined(separator: "\n") + (lines.isEmpty ? "" : "\n")).utf8))
}

/// Bytes equal and bytes compared over the addresses both cores hold data for, and the runs that differ.
private func compareCores(_ first: String, _ second: String) throws -> (equal: UInt64, compared: UInt64, differences: [Difference]) {
    let a = try Data(contentsOf: URL(fileURLWithPath: first), options: .alwaysMapped)
    let b = try Data(contentsOf: URL(fileURLWithPath: second), options: .alwaysMapped)
    return a.withUnsafeBytes { rawA in
        b.withUnsafeBytes { rawB in
            var equal: UInt64 = 0
            var compared: UInt64 = 0
            var differences: [Difference] = []
            let loadsB = loads(rawB)
            for loadA in loads(rawA) {
                for loadB in loadsB {
                    let start = max(loadA.address, loadB.address)
                    let end = min(loadA.address + loadA.size, loadB.address + loadB.size)
                    guard start < end else { continue }
                    let offsetA = Int(loadA.offset + (start - loadA.address))
                    let offsetB = Int(loadB.offset + (start - loadB.address))
                    let length = Int(end - start)
                    guard offsetA + length <= rawA.count, offsetB + length <= rawB.count,
                          let baseA = rawA.baseAddress, let baseB = rawB.baseAddress else { continue }
                    compared += UInt64(length)
                    var position = 0
                    while position < length {
                        let block = min(4096, length - position)
                        if memcmp(baseA + offsetA + position, baseB + offsetB + position, block) == 0 {
                            equal += UInt64(block)
                        } else {
                            for index in 0..<block {
                                let a = rawA[offsetA + position + index]
                                let b = rawB[offsetB + position + index]
                                if a == b { equal += 1; continue }
                                let address = start + UInt64(position + index)
                                if var last = differences.last, last.address + UInt64(last.length) == address {
                                    last.length += 1
                                    last.oursAllZero = last.oursAllZero && a == 0
                                    last.gcoreAllZero = last.gcoreAllZero && b == 0
                                    differences[differences.count - 1] = last
                                } else {
                                    differences.append(Difference(address: address, length: 1, oursAllZero: a == 0, gcoreAllZero: b == 0))
                                }
                            }
                        }
                        position += block
                    }
                }
            }
            return (equal, compared, differences)
        }
    }
}
