import CBaseline
import Foundation
import Glibc
import ProcessMemory

/// #6d: a dense process, every page populated with incompressible bytes: python3 holding `sizeMiB`
/// MiB of `os.urandom` in an anonymous mapping. Three writers of the same core-sized output, on the
/// same file system, each timed from a clean start (no output file, no dirty pages: unlink and
/// sync(2), untimed), in rounds whose order rotates:
///
/// - ours: `dumpCore` with the options `procmem dump --core` uses by default;
/// - gcore;
/// - the floor: a C writer that puts as many bytes as our core holds (its st_blocks) from a buffer
///   already in memory into a new file, then fsyncs it as we do: with pwrites of our chunk size and
///   of 8 MiB, each plainly and starting the writeback of every 8 MiB at once as we do. The lowest
///   of the four medians is the floor.
///
/// Target (issue 14): ours within 10 % of the floor (floor time / ours ≥ 0.91).
func denseDumpRows(sizeMiB: Int, rounds: Int) throws -> [Row] {
    guard let gcore = ["/usr/bin/gcore", "/usr/local/bin/gcore"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        FileHandle.standardError.write(Data("procmem-bench: gcore (part of gdb) is not installed: row 6d is left out\n".utf8))
        return []
    }
    let holder = Process()
    holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    holder.arguments = ["python3", "-c", """
        import mmap, os, time
        size = \(sizeMiB) << 20
        m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        step = 16 << 20
        for offset in range(0, size, step):
            m[offset:offset + step] = os.urandom(min(step, size - offset))
        print("ready", flush=True)
        time.sleep(3600)
        """]
    let output = Pipe()
    holder.standardOutput = output
    try holder.run()
    defer {
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
    }
    _ = output.fileHandleForReading.availableData
    let pid = holder.processIdentifier
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-bench-dense-\(getpid())").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let ours = directory + "/ours.core", prefix = directory + "/gcore", theirs = prefix + ".\(pid)"
    let floorPath = directory + "/floor"
    func clean() {
        for path in [ours, ours + ".json", theirs, floorPath] { unlink(path) }
        sync()
    }
    func blocks(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_blocks) * 512 : 0
    }
    let handle = try ProcessHandle(pid: pid)
    defer { handle.close() }
    // What `procmem dump --core FILE` does by default.
    var options = DumpOptions(stopMethod: .ptrace)
    options.selection = .coredumpFilter(nil)
    var oursBytes = 0, theirBytes = 0
    let runOurs = {
        try handle.dumpCore(to: ours, options: options)
        oursBytes = blocks(ours)
    }
    let runTheirs = {
        try runGcore(gcore, prefix: prefix, pid: pid)
        theirBytes = blocks(theirs)
    }
    // Warm-up (untimed), which also tells how many bytes our core holds.
    clean(); try runOurs()
    clean(); try runTheirs()
    let floorBytes = oursBytes
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, floorBytes), alignment: 4096)
    defer { buffer.deallocate() }
    let random = open("/dev/urandom", O_RDONLY)
    guard random >= 0 else { throw BenchError.message("cannot open /dev/urandom") }
    defer { close(random) }
    var filled = 0
    while filled < floorBytes {
        let n = read(random, buffer.baseAddress! + filled, min(32 << 20, floorBytes - filled))
        guard n > 0 else { throw BenchError.message("cannot read /dev/urandom") }
        filled += n
    }
    // Two floors: plain pwrites then one fsync, and the same with the writeback of every 8 MiB
    // started at once (sync_file_range), as our dump does. The target is the lower of the two medians.
    func floorWriter(chunk: Int, writeback: Int) -> () throws -> Void {
        {
            guard CBaseline_write_floor(floorPath, buffer.baseAddress!, floorBytes, chunk, 1, writeback) == 0 else {
                throw BenchError.message("the floor writer failed: \(String(cString: strerror(errno)))")
            }
        }
    }
    let chunkKiB = options.chunkSize >> 10
    let writers = [runOurs, runTheirs,
                   floorWriter(chunk: options.chunkSize, writeback: 0), floorWriter(chunk: options.chunkSize, writeback: 8 << 20),
                   floorWriter(chunk: 8 << 20, writeback: 0), floorWriter(chunk: 8 << 20, writeback: 8 << 20)]
    let names = ["ours", "gcore", "floor (\(chunkKiB) KiB pwrites, fsync)", "floor (\(chunkKiB) KiB pwrites, sync_file_range per 8 MiB, fsync)",
                 "floor (8 MiB pwrites, fsync)", "floor (8 MiB pwrites, sync_file_range per 8 MiB, fsync)"]
    for floor in 2..<writers.count { clean(); try writers[floor]() }
    var times: [[Double]] = Array(repeating: [], count: writers.count)
    for round in 0..<max(1, rounds) {
        for step in 0..<writers.count {
            let which = (round + step) % writers.count
            clean()
            let start = now()
            try writers[which]()
            times[which].append(now() - start)
        }
    }
    clean()
    func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
    func spread(_ values: [Double]) -> String {
        values.sorted().map { String(format: "%.2f", $0) }.joined(separator: " ")
    }
    let floorIndex = (2..<writers.count).min { median(times[$0]) < median(times[$1]) } ?? 2
    let oursTime = median(times[0]), theirTime = median(times[1]), floorTime = median(times[floorIndex])
    let floorRatios = zip(times[0], times[floorIndex]).map { $1 / $0 }.sorted()
    var lines = "procmem-bench 6d: \(times[0].count) rounds, seconds sorted (median in the row):\n"
    for (name, values) in zip(names, times) { lines += "  \(name): \(spread(values))\n" }
    lines += "  per-round \(names[floorIndex]) / ours: \(floorRatios.map { String(format: "%.2f", $0) }.joined(separator: " "))\n"
    lines += "  ours wrote \(oursBytes) bytes (st_blocks), gcore \(theirBytes), the floors \(floorBytes)\n"
    FileHandle.standardError.write(Data(lines.utf8))
    let gigabytes = Double(floorBytes) / 1e9
    return [
        Row(number: "6d", name: String(format: "dense core (%d MiB of random bytes, all populated) vs the floor (the same %.0f MB from memory to a new file, fsynced), median of %d rounds; per-round ratio %.2f–%.2f×",
                                       sizeMiB, Double(floorBytes) / 1e6, times[0].count, floorRatios.first ?? 0, floorRatios.last ?? 0),
            unit: "GB/s", ours: gigabytes / oursTime, raw: gigabytes / floorTime, baseline: names[floorIndex],
            target: 0.91, oursRSS: 0, rawRSS: 0),
        Row(number: "6d", name: String(format: "dense core vs gcore (gcore's file %.0f MB)", Double(theirBytes) / 1e6),
            unit: "GB/s", ours: gigabytes / oursTime, raw: gigabytes / theirTime, baseline: "gcore", target: nil, oursRSS: 0, rawRSS: 0),
    ]
}
