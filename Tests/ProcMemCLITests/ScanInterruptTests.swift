import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing

/// A `procmem` run that is sent SIGINT once it has shown progress: stdout goes to a file, stderr
/// to a pipe read until the progress label appears (never a timed guess).
final class InterruptedRun {
    let process = Process()
    let errors = Pipe()
    let outURL = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-int-\(UUID().uuidString).out")

    init(_ arguments: [String]) throws {
        process.executableURL = try Binaries.url("procmem")
        process.arguments = arguments
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    deinit { try? FileManager.default.removeItem(at: outURL) }

    /// Waits until stderr shows `label` (the progress line), sends SIGINT, drains stderr and waits
    /// for the exit. A watchdog kills the run after `timeout` seconds so a hang fails, not blocks.
    func interrupt(after label: String, timeout: Double = 600) throws -> (sawProgress: Bool, result: RunResult) {
        let pid = process.processIdentifier
        let watchdog = DispatchWorkItem { Glibc.kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        defer { watchdog.cancel() }
        var stderr = Data()
        var saw = false
        while true {
            let chunk = errors.fileHandleForReading.availableData
            if chunk.isEmpty { break }  // end of file: the run ended
            stderr.append(chunk)
            if !saw, String(decoding: stderr, as: UTF8.self).contains(label) {
                saw = true
                Glibc.kill(pid, SIGINT)
            }
        }
        process.waitUntilExit()
        return (saw, RunResult(status: process.terminationStatus, stdout: [UInt8](try Data(contentsOf: outURL)),
                               stderr: String(decoding: stderr, as: UTF8.self)))
    }
}

@Suite("Ctrl-C during scans and snapshots")
struct ScanInterruptTests {
    static let size = 512 << 20

    func temporaryPath(_ suffix: String) -> String {
        NSTemporaryDirectory() + "procmem-int-\(UUID().uuidString).\(suffix)"
    }

    func object(_ result: RunResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any], "stdout: \(result.text)")
    }

    func addresses(_ object: [String: Any]) -> [UInt64] {
        ((object["matches"] as? [[String: Any]]) ?? []).compactMap { ($0["address"] as? String).flatMap { UInt64($0.dropFirst(2), radix: 16) } }
    }

    /// The fixture runs on: not stopped (state in /proc/PID/stat) and it answers.
    func expectRunning(_ fixture: Fixture) throws {
        let stat = try String(contentsOfFile: "/proc/\(fixture.pidArgument)/stat", encoding: .utf8)
        let state = stat[stat.index(after: try #require(stat.lastIndex(of: ")")))...].split(separator: " ").first
        #expect(state != "T" && state != "t", "the fixture is stopped: \(stat)")
        #expect(try fixture.command("ping")["ok"] as? Bool == true)
    }

    /// A 512 MiB mapping with the planted value in its first page; the range argument for it.
    func bigRegion(_ fixture: Fixture) throws -> (base: UInt64, range: String) {
        let reply = try fixture.ok("map \(Self.size)")
        let base = UInt64(try #require(reply["address"] as? Int))
        _ = try fixture.ok("write \(base + 100) 3412ed5e")
        return (base, "\(hex(base))-\(hex(base + UInt64(Self.size)))")
    }

    @Test("SIGINT during a scan: exit 1, JSON partial, the saved file rescans, the target runs on")
    func scan() throws {
        try withFixture { fixture in
            let (base, range) = try bigRegion(fixture)
            let file = temporaryPath("pmm")
            defer { unlink(file) }
            // 4 KiB chunks: some hundred thousand progress points, so the signal lands mid-scan.
            let run = try InterruptedRun(["scan", fixture.pidArgument, "0x5EED1234", "--as", "u32", "--range", range, "--save", file,
                                          "--json", "--progress", "--chunk-size", "4096"])
            let (saw, result) = try run.interrupt(after: "scan:")
            #expect(saw, "no progress line: \(result.stderr)")
            #expect(result.status == 1, "\(result.stderr)")
            let json = try object(result)
            #expect(json["interrupted"] as? Bool == true)
            #expect(json["partial"] as? Bool == true)
            #expect(json["saved"] as? String == file)
            #expect(addresses(json) == [base + 100])  // found in the first chunk, before any progress
            let rescan = try procmem("rescan", file, "--unchanged", "--no-save", "--json")
            #expect(rescan.status == 1, "\(rescan.stderr)")
            let narrowed = try object(rescan)
            #expect(narrowed["partial"] as? Bool == true)
            #expect(narrowed["interrupted"] as? Bool == false)
            #expect(addresses(narrowed) == [base + 100])
            try expectRunning(fixture)
        }
    }

    @Test("SIGINT during a snapshot: exit 1, a valid partial snapshot, a partial compare, the target runs on")
    func snapshot() throws {
        try withFixture { fixture in
            let (base, range) = try bigRegion(fixture)
            let snap = temporaryPath("pms")
            let matches = temporaryPath("pmm")
            defer { unlink(snap); unlink(matches) }
            let run = try InterruptedRun(["scan", fixture.pidArgument, "--snapshot", "--as", "u32", "--range", range, "--save", snap,
                                          "--json", "--progress", "--chunk-size", "4096"])
            let (saw, result) = try run.interrupt(after: "snapshot:")
            #expect(saw, "no progress line: \(result.stderr)")
            #expect(result.status == 1, "\(result.stderr)")
            let json = try object(result)
            #expect(json["interrupted"] as? Bool == true)
            #expect(json["partial"] as? Bool == true)
            #expect(json["saved"] as? String == snap)
            let taken = try #require(json["bytesScanned"] as? Int)
            #expect(taken >= 4096 && taken < Self.size)
            try expectRunning(fixture)

            // The first page was taken: a change there is found; the result says partial.
            _ = try fixture.ok("write \(base + 100) 01000000")
            let compare = try procmem("rescan", snap, "--changed", "--save", matches, "--json")
            #expect(compare.status == 1, "\(compare.stderr)")
            let compared = try object(compare)
            #expect(compared["partial"] as? Bool == true)
            #expect(compared["interrupted"] as? Bool == false)
            #expect(addresses(compared) == [base + 100])
            // The saved set is readable and keeps the mark.
            let again = try procmem("rescan", matches, "--eq", "1", "--no-save", "--json")
            #expect(again.status == 1, "\(again.stderr)")
            #expect(addresses(try object(again)) == [base + 100])
            #expect(try object(again)["partial"] as? Bool == true)
            try expectRunning(fixture)
        }
    }

    @Test("SIGINT during a snapshot comparison: exit 1, the partial set is saved to --save only and rescans")
    func compare() throws {
        try withFixture { fixture in
            let (base, _) = try bigRegion(fixture)
            let range = "\(hex(base))-\(hex(base + (128 << 20)))"
            let snap = temporaryPath("pms")
            let matches = temporaryPath("pmm")
            defer { unlink(snap); unlink(matches) }
            let taken = try procmem("scan", fixture.pidArgument, "--snapshot", "--as", "u32", "--range", range, "--save", snap)
            #expect(taken.status == 0, "\(taken.stderr)")
            _ = try fixture.ok("write \(base + 100) 01000000")
            let run = try InterruptedRun(["rescan", snap, "--changed", "--save", matches, "--json", "--progress", "--chunk-size", "4096"])
            let (saw, result) = try run.interrupt(after: "rescan:")
            #expect(saw, "no progress line: \(result.stderr)")
            #expect(result.status == 1, "\(result.stderr)")
            let json = try object(result)
            #expect(json["interrupted"] as? Bool == true)
            #expect(json["partial"] as? Bool == true)
            #expect(json["saved"] as? String == matches)
            #expect(addresses(json) == [base + 100])
            // The snapshot itself is untouched (still a snapshot), and the partial set rescans.
            let again = try procmem("rescan", matches, "--unchanged", "--no-save", "--json")
            #expect(again.status == 1, "\(again.stderr)")
            #expect(addresses(try object(again)) == [base + 100])
            let whole = try procmem("rescan", snap, "--changed", "--no-save", "--json")
            #expect(whole.status == 0, "\(whole.stderr)")
            #expect(addresses(try object(whole)) == [base + 100])
            try expectRunning(fixture)
        }
    }
}
