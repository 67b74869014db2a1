import Foundation
import Glibc
import ProcessMemory

/// #6s: a sparse process, as real ones are (JVM and Go heaps, allocator arenas, sanitizer shadows):
/// python3 maps 4 GiB with `MAP_NORESERVE` and touches 64 pages. Our core (never-populated pages
/// are holes) against gcore's on the same process: time, and the disk each file takes (st_blocks).
/// Targets (issue 14): at least 50× less time and under 1 % of gcore's disk.
func sparseDumpRows(repetitions: Int) throws -> [Row] {
    guard let gcore = ["/usr/bin/gcore", "/usr/local/bin/gcore"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        FileHandle.standardError.write(Data("procmem-bench: gcore (part of gdb) is not installed: row 6s is left out\n".utf8))
        return []
    }
    let holder = Process()
    holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    holder.arguments = ["python3", "-c", """
        import mmap, sys, time
        NORESERVE = 0x4000  # MAP_NORESERVE on Linux; this python's mmap module lacks the name
        m = mmap.mmap(-1, 4 << 30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | NORESERVE)
        for i in range(64):
            m[i * (64 << 20)] = 0x5E
        print("ready", flush=True)
        time.sleep(3600)
        """]
    let output = Pipe()
    holder.standardOutput = output
    try holder.run()
    defer {
        holder.terminate()
        holder.waitUntilExit()
    }
    _ = output.fileHandleForReading.availableData
    let pid = holder.processIdentifier
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-bench-sparse-\(getpid())").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let ours = directory + "/ours.core", prefix = directory + "/gcore", theirs = prefix + ".\(pid)"
    func clean() {
        for path in [ours, ours + ".json", theirs] { unlink(path) }
        sync()
    }
    func blocks(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_blocks) * 512 : 0
    }
    let handle = try ProcessHandle(pid: pid)
    defer { handle.close() }
    var oursDisk = 0, theirDisk = 0
    // Ours first, then gcore's: gcore reads every page through /proc/PID/mem, which maps the shared
    // zero page into the untouched ones, so afterwards they are present in pagemap and ours reads
    // them too (and still writes holes, after checking 4 GiB of zeros). Not interleaved for that reason.
    // Each timed run starts from a clean state (unlink and sync(2), untimed): a sync inside the
    // timed part would charge ours with whatever else on the machine has dirty pages.
    func timed(_ runs: Int, _ body: () throws -> Void) rethrows -> Double {
        clean(); try body()  // warm-up
        var times: [Double] = []
        for _ in 0..<runs {
            clean()
            let start = now()
            try body()
            times.append(now() - start)
        }
        return times.sorted()[times.count / 2]
    }
    let oursSeconds = try timed(max(3, repetitions)) {
        try handle.dumpCore(to: ours, options: DumpOptions(stopMethod: .ptrace))
        oursDisk = blocks(ours)
    }
    let theirSeconds = try timed(1) {
        try runGcore(gcore, prefix: prefix, pid: pid)
        theirDisk = blocks(theirs)
    }
    let result = (ours: oursSeconds, raw: theirSeconds)
    clean()
    return [
        Row(number: "6s", name: "core of a sparse process (4 GiB mapped, 64 pages touched) vs gcore: time", unit: "dumps/s",
            ours: 1 / result.ours, raw: 1 / result.raw, baseline: "gcore", target: 50, oursRSS: 0, rawRSS: 0),
        Row(number: "6s", name: "core of a sparse process: disk used, gcore's over ours (st_blocks)", unit: "1/bytes",
            ours: 1 / Double(max(1, oursDisk)), raw: 1 / Double(max(1, theirDisk)), baseline: "gcore", target: 100,
            oursRSS: 0, rawRSS: 0),
    ]
}
