import Foundation
import Glibc

/// Measurement 9: the unknown-initial-value search at scale, as a user runs it: `procmem scan PID
/// --snapshot --as any-int --unaligned`, then `procmem rescan FILE --unchanged` (every integer
/// width at every byte offset, all of them matching), over a fixture mapping of `sizeMiB`. Each
/// step is a separate `procmem` process, timed from spawn to exit, its peak RSS from `wait4(2)`.
/// scanmem 0.17 does the same in one session (`option scan_data_type int; snapshot; =`), timed and
/// measured the same way; it keeps every byte's old value and flags in memory, so it is given a
/// time limit and its row says when it did not finish.
func unknownValueRows(fixturePath: String, procmem: String, sizeMiB: Int, scanmemSeconds limit: Double) throws -> [Row] {
    let fixture = try FixtureProcess(executable: fixturePath)
    defer { fixture.stop() }
    let size = sizeMiB << 20
    guard (try fixture.command("map \(size)")["address"] as? NSNumber) != nil else {
        throw BenchError.message("the fixture did not map \(sizeMiB) MiB")
    }
    let directory = NSTemporaryDirectory() + "procmem-bench-unknown-\(getpid())"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let snapshot = directory + "/s.snap"
    let pid = String(fixture.pid)
    var rows: [Row] = []

    let take = child(procmem, ["scan", pid, "--snapshot", "--as", "any-int", "--unaligned", "--all", "--save", snapshot], limit: 600)
    guard take.status == 0 else { throw BenchError.message("procmem scan --snapshot failed (status \(take.status))") }
    let filter = child(procmem, ["rescan", snapshot, "--unchanged", "--json", "--max-matches", "0"], limit: 1800)
    guard filter.status == 0 else { throw BenchError.message("procmem rescan --unchanged failed (status \(filter.status))") }
    let object = try JSONSerialization.jsonObject(with: Data(filter.stdout.utf8)) as? [String: Any]
    let matches = (object?["matchCount"] as? NSNumber)?.intValue ?? -1
    let partial = object?["partial"] as? Bool ?? true
    let fileBytes = (try? FileManager.default.attributesOfItem(atPath: snapshot)[.size] as? NSNumber)?.intValue ?? 0
    print("procmem: snapshot \(String(format: "%.1f", take.seconds)) s, \(take.maxRSS >> 10) MiB peak RSS; "
          + "any-int unaligned --unchanged \(String(format: "%.1f", filter.seconds)) s, \(filter.maxRSS >> 10) MiB peak RSS, "
          + "\(matches) matches\(partial ? " (partial!)" : ""), narrowed snapshot \(fileBytes >> 20) MiB on disk")

    var scanmemRun: ChildRun?
    let candidates: [String] = ["/usr/bin/scanmem", "/usr/local/bin/scanmem"]
    if let scanmem = candidates.first(where: { path in access(path, X_OK) == 0 }) {
        let run = child(scanmem, ["-p", pid, "-c", "option region_scan_level 3; option scan_data_type int; snapshot; =; exit"],
                        limit: limit)
        scanmemRun = run
        let outcome = run.timedOut ? "did not finish within \(Int(limit)) s (killed)"
            : (run.status == 0 ? "finished" : "failed (status \(run.status), signal \(run.signal))")
        print("scanmem: snapshot and = \(outcome) after \(String(format: "%.1f", run.seconds)) s, \(run.maxRSS >> 10) MiB peak RSS")
    } else {
        print("scanmem is not installed (run.sh installs it with apt-get as root): its figures are left out")
    }
    let total = take.seconds + filter.seconds
    let peak = max(take.maxRSS, filter.maxRSS)
    let scanmemDone = scanmemRun.map { !$0.timedOut && $0.status == 0 } ?? false
    rows.append(Row(number: "9", name: "unknown value: snapshot + any-int unaligned --unchanged of \(sizeMiB) MiB, seconds"
                    + (scanmemRun == nil ? " (no scanmem)" : scanmemDone ? "" : " (scanmem did not finish: its time is a lower bound)"),
                    unit: "1/s", ours: 1 / total, raw: scanmemRun.map { 1 / $0.seconds } ?? 0,
                    baseline: "scanmem snapshot; = (int, one session)", target: 1, oursRSS: peak << 10,
                    rawRSS: (scanmemRun?.maxRSS ?? 0) << 10))
    rows.append(Row(number: "9", name: "the same, peak RSS of the larger procmem step (MiB; ≤ 256 MiB wanted); ratio = ours / scanmem's",
                    unit: "MiB", ours: Double(peak >> 10), raw: Double((scanmemRun?.maxRSS ?? 0) >> 10),
                    baseline: "scanmem peak RSS", target: nil, oursRSS: peak << 10, rawRSS: (scanmemRun?.maxRSS ?? 0) << 10))
    return rows
}

/// A child's exit status, signal, wall-clock seconds, peak RSS (KiB) and stdout.
struct ChildRun {
    var status: Int32
    var signal: Int32
    var timedOut: Bool
    var seconds: Double
    var maxRSS: Int
    var stdout: String
}

/// Runs `path` with `arguments` (posix_spawn(3)), stdin from /dev/null, stderr discarded, stdout
/// captured through a file; killed with SIGKILL after `limit` seconds. The peak RSS is the child's
/// own `VmHWM` (/proc/PID/status), polled every 20 ms until it exits: the high-water mark only
/// grows, so the last reading misses at most the final 20 ms. (`ru_maxrss` from `wait4(2)` would not
/// do: exec records the spawning process's high-water mark in it, and this one holds gigabytes.)
func child(_ path: String, _ arguments: [String], limit: Double) -> ChildRun {
    let outPath = NSTemporaryDirectory() + "procmem-bench-out-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    defer { unlink(outPath) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    var argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let start = now()
    guard posix_spawn(&pid, path, &actions, nil, &argv, environ) == 0 else {
        return ChildRun(status: -1, signal: 0, timedOut: false, seconds: 0, maxRSS: 0, stdout: "")
    }
    var status: Int32 = 0
    var usage = rusage()
    var timedOut = false
    var peak = 0
    while true {
        if let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
           let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") {
            peak = max(peak, kib)
        }
        let done = wait4(pid, &status, WNOHANG, &usage)
        if done == pid { break }
        if done == -1 && errno != EINTR { break }
        if now() - start > limit && !timedOut {
            timedOut = true
            kill(pid, SIGKILL)
        }
        usleep(20_000)
    }
    let seconds = now() - start
    let signaled = (status & 0x7F) != 0
    let text = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    return ChildRun(status: signaled ? -1 : (status >> 8) & 0xFF, signal: signaled ? status & 0x7F : 0, timedOut: timedOut,
                    seconds: seconds, maxRSS: peak, stdout: text)
}
