import Foundation
import Glibc

/// Measurement 10: match sets of many matches, as a user makes them. A fixture mapping of
/// `scanMiB` filled with int32 7s (`scanMiB` × 262,144 matches): `procmem scan PID 7 --as i32
/// --save FILE`, then `procmem rescan FILE --eq 7` (every match kept); and a fresh fixture with
/// `sessionMiB` of 7s narrowed in one `procmem session -c '7; 7'`. scanmem 0.17 runs the same
/// (`option scan_data_type int32; 7; 7`) on the same target in the same run. Each is a separate
/// process, timed from spawn to exit, its peak RSS its own `VmHWM`.
func manyMatchesRows(fixturePath: String, procmem: String, scanMiB: Int, sessionMiB: Int,
                     scanmemSeconds limit: Double) throws -> [Row] {
    let candidates: [String] = ["/usr/bin/scanmem", "/usr/local/bin/scanmem"]
    let scanmem = candidates.first(where: { path in access(path, X_OK) == 0 })
    if scanmem == nil { print("scanmem is not installed (run.sh installs it with apt-get as root): its figures are left out") }
    let directory = NSTemporaryDirectory() + "procmem-bench-many-\(getpid())"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    var rows: [Row] = []

    /// A fixture with `mib` MiB of int32 7s mapped, written through /proc/PID/mem.
    func sevens(_ mib: Int) throws -> FixtureProcess {
        let fixture = try FixtureProcess(executable: fixturePath)
        let size = mib << 20
        guard let base = (try fixture.command("map \(size)")["address"] as? NSNumber)?.uint64Value else {
            fixture.stop()
            throw BenchError.message("the fixture did not map \(mib) MiB")
        }
        let fd = open("/proc/\(fixture.pid)/mem", O_RDWR)
        guard fd >= 0 else { fixture.stop(); throw BenchError.message("cannot open /proc/\(fixture.pid)/mem for writing") }
        defer { close(fd) }
        var chunk = [UInt8](repeating: 0, count: 4 << 20)
        for index in stride(from: 0, to: chunk.count, by: 4) { chunk[index] = 7 }
        var done = 0
        while done < size {
            let n = min(chunk.count, size - done)
            guard pwrite(fd, chunk, n, off_t(base) + off_t(done)) == n else {
                fixture.stop()
                throw BenchError.message("cannot fill the fixture's mapping with 7s")
            }
            done += n
        }
        return fixture
    }
    func count(_ run: ChildRun) -> (Int, Bool) {
        let object = (try? JSONSerialization.jsonObject(with: Data(run.stdout.utf8))) as? [String: Any]
        return ((object?["matchCount"] as? NSNumber)?.intValue ?? -1, object?["partial"] as? Bool ?? true)
    }
    func scanmemRun(_ pid: String, _ label: String) -> ChildRun? {
        guard let scanmem else { return nil }
        let run = child(scanmem, ["-p", pid, "-c", "option region_scan_level 3; option scan_data_type int32; 7; 7; exit"], limit: limit)
        let outcome = run.timedOut ? "did not finish within \(Int(limit)) s (killed)"
            : (run.status == 0 ? "finished" : "failed (status \(run.status), signal \(run.signal))")
        print("scanmem: \(label): 7; 7 \(outcome) after \(String(format: "%.1f", run.seconds)) s, \(run.maxRSS >> 10) MiB peak RSS")
        return run
    }
    func rowPair(_ name: String, seconds: Double, peak: Int, _ baseline: ChildRun?) {
        let done = baseline.map { !$0.timedOut && $0.status == 0 } ?? false
        let note = baseline == nil ? " (no scanmem)" : done ? "" : " (scanmem did not finish: its time is a lower bound)"
        rows.append(Row(number: "10", name: name + ", seconds" + note, unit: "1/s", ours: 1 / seconds,
                        raw: baseline.map { 1 / $0.seconds } ?? 0, baseline: "scanmem 7; 7 (int32, one session)", target: 1,
                        oursRSS: peak << 10, rawRSS: (baseline?.maxRSS ?? 0) << 10))
        rows.append(Row(number: "10", name: "the same, peak RSS (MiB); ratio = ours / scanmem's", unit: "MiB",
                        ours: Double(peak >> 10), raw: Double((baseline?.maxRSS ?? 0) >> 10), baseline: "scanmem peak RSS",
                        target: nil, oursRSS: peak << 10, rawRSS: (baseline?.maxRSS ?? 0) << 10))
    }

    // A first scan and a rescan of a saved file.
    do {
        let fixture = try sevens(scanMiB)
        defer { fixture.stop() }
        let pid = String(fixture.pid)
        let file = directory + "/sevens.matches"
        let scan = child(procmem, ["scan", pid, "7", "--as", "i32", "--save", file, "--max-matches", "0", "--json"], limit: 1800)
        guard scan.status == 0 else { throw BenchError.message("procmem scan failed (status \(scan.status))") }
        let rescan = child(procmem, ["rescan", file, "--eq", "7", "--max-matches", "0", "--json"], limit: 1800)
        guard rescan.status == 0 else { throw BenchError.message("procmem rescan failed (status \(rescan.status))") }
        let (found, partial) = count(scan)
        let (kept, keptPartial) = count(rescan)
        let fileBytes = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.intValue ?? 0
        print("procmem: scan \(String(format: "%.1f", scan.seconds)) s, \(scan.maxRSS >> 10) MiB peak RSS, \(found) matches"
              + "\(partial ? " (partial!)" : ""); rescan --eq 7 \(String(format: "%.1f", rescan.seconds)) s, "
              + "\(rescan.maxRSS >> 10) MiB peak RSS, \(kept) matches\(keptPartial ? " (partial!)" : ""); file \(fileBytes >> 20) MiB")
        let baseline = scanmemRun(pid, "\(scanMiB) MiB")
        rowPair("many matches: scan + rescan --eq of \(scanMiB) MiB of int32 7s (\(found) matches), saved to a file",
                seconds: scan.seconds + rescan.seconds, peak: max(scan.maxRSS, rescan.maxRSS), baseline)
    }
    // The session path.
    do {
        let fixture = try sevens(sessionMiB)
        defer { fixture.stop() }
        let pid = String(fixture.pid)
        let session = child(procmem, ["session", pid, "-c", "7; 7", "--temp-dir", directory], limit: 1800)
        guard session.status == 0 else { throw BenchError.message("procmem session failed (status \(session.status))") }
        let last = session.stdout.split(separator: "\n").last.map(String.init) ?? ""
        print("procmem: session 7; 7 \(String(format: "%.1f", session.seconds)) s, \(session.maxRSS >> 10) MiB peak RSS (\(last))")
        let baseline = scanmemRun(pid, "session \(sessionMiB) MiB")
        rowPair("many matches: session 7; 7 over \(sessionMiB) MiB of int32 7s", seconds: session.seconds,
                peak: session.maxRSS, baseline)
    }
    return rows
}
