import CBaseline
import Glibc
import ProcessMemory

/// Measurement 5: a u32 value scan and a byte-pattern scan over `size` bytes at `base` in the
/// fixture, in GB/s, against a raw C process_vm_readv + memchr loop, and the u32 scan against
/// scanmem 0.17 when it is installed (its whole first scan of the process, timed from spawn to exit).
func scanRows(handle: ProcessHandle, pid: Int32, base: UInt64, size: Int, repetitions: Int) throws -> [Row] {
    var rows: [Row] = []
    let region = MemoryRegion(start: base, end: base + UInt64(size), permissions: [.read, .write], isShared: false)
    let scanner = Scanner(handle: handle)
    let value = try ScanValue("0x5EED1234", as: .u32)
    let needle: [UInt8] = [0x34, 0x12, 0xED, 0x5E]
    var expected = -1
    // Warm up: this machine returns idle memory to its host, and a cold first pass is slower.
    for _ in 0..<2 { _ = CBaseline_scan_bytes(pid, base, size, needle, needle.count, 4) }

    let u32 = try compare(repetitions: repetitions, ours: {
        let found = try scanner.scan(.value(value), regions: [region]).matches.count
        if expected < 0 { expected = found } else if found != expected { throw BenchError.message("u32 scan found \(found), not \(expected)") }
    }, raw: {
        let found = CBaseline_scan_bytes(pid, base, size, needle, needle.count, 4)
        if expected >= 0 && found != expected { throw BenchError.message("raw u32 scan found \(found), not \(expected)") }
    })
    rows.append(Row(number: "5", name: "u32 value scan of \(size >> 20) MiB", unit: "GB/s",
                    ours: Double(size) / u32.ours / 1e9, raw: Double(size) / u32.raw / 1e9,
                    baseline: "C process_vm_readv + memchr, 4 MiB chunks", target: 0.6,
                    oursRSS: u32.oursRSS, rawRSS: u32.rawRSS))

    let pattern = try BytePattern(hex: "34 12 ?? 5e")
    let bytes = try compare(repetitions: repetitions, ours: {
        _ = try scanner.scan(.pattern(pattern), regions: [region])
    }, raw: {
        _ = CBaseline_scan_bytes(pid, base, size, needle, needle.count, 1)
    })
    rows.append(Row(number: "5", name: "byte-pattern scan (34 12 ?? 5e) of \(size >> 20) MiB", unit: "GB/s",
                    ours: Double(size) / bytes.ours / 1e9, raw: Double(size) / bytes.raw / 1e9,
                    baseline: "C process_vm_readv + memchr + memcmp (exact bytes)", target: 0.6,
                    oursRSS: bytes.oursRSS, rawRSS: bytes.rawRSS))

    let candidates: [String] = ["/usr/bin/scanmem", "/usr/local/bin/scanmem"]
    if let scanmem = candidates.first(where: { path in access(path, X_OK) == 0 }) {
        // scanmem scans all of the fixture's writable memory, which the mapped region dominates.
        let command = "option scan_data_type int32; option region_scan_level 3; 1592594996; exit"
        var scanmemSeconds = Double.infinity
        for _ in 0..<max(1, min(repetitions, 3)) {
            let start = now()
            guard run(scanmem, ["-p", String(pid), "-c", command]) == 0 else { break }
            scanmemSeconds = min(scanmemSeconds, now() - start)
        }
        if scanmemSeconds.isFinite {
            rows.append(Row(number: "5", name: "u32 value scan vs scanmem (its first scan)", unit: "GB/s",
                            ours: Double(size) / u32.ours / 1e9, raw: Double(size) / scanmemSeconds / 1e9,
                            baseline: "scanmem -c (int32, region_scan_level 3)", target: 10,
                            oursRSS: u32.oursRSS, rawRSS: 0))
        }
    }
    return rows
}

/// Runs `path` with `arguments` (posix_spawn(3)), output to /dev/null; its exit status, or -1.
private func run(_ path: String, _ arguments: [String]) -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    var argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var child: pid_t = 0
    guard posix_spawn(&child, path, &actions, nil, &argv, environ) == 0 else { return -1 }
    var status: Int32 = 0
    while waitpid(child, &status, 0) == -1 && errno == EINTR {}
    return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : -1
}
