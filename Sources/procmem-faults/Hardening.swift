import Foundation
import Glibc
import ProcessMemory
import ProcessMemoryTestSupport

// Hardening (issue 16): outputs that links planted by another user cannot redirect; targets
// resumed when the stopper is killed; a ptrace stop of a vfork parent that gives up; userfaultfd
// ranges that never block a dump; crafted and non-regular inputs that fail at once.

let hardeningCases: [FaultCase] = [
    FaultCase(name: "planted-output-links", group: "hardening", timeout: 300,
              summary: "links on regions/ADDR.bin, index.json, --core and FILE.json: never written through") { c, t in
        try plantedLinks(iterations: c.n(quick: 2, full: 10), tally: t)
    },
    FaultCase(name: "stopper-killed", group: "hardening", timeout: 240,
              summary: "procmem dump --stop signal SIGKILLed while the target is stopped: target runs again") { c, t in
        try stopperKilled(iterations: c.n(quick: 2, full: 10), tally: t)
    },
    FaultCase(name: "ptrace-stop-vfork", group: "hardening", timeout: 120,
              summary: "stop(.ptrace) of a parent blocked in vfork: fails within its 5 s bound") { c, t in
        try ptraceVfork(iterations: c.n(quick: 1, full: 3), tally: t)
    },
    FaultCase(name: "userfaultfd-dump", group: "hardening", timeout: 400,
              summary: "dump, scan, protect-mode read and watch of a target with an unserved userfaultfd range: finish, range reported") { c, t in
        try userfaultfdDump(iterations: c.n(quick: 1, full: 3), tally: t)
    },
    FaultCase(name: "crafted-inputs", group: "hardening", timeout: 60,
              summary: "index with a 2^63-byte segment, /dev/zero, FIFOs as match file, snapshot, index: clean errors") { c, t in
        try craftedInputs(iterations: c.n(quick: 3, full: 20), tally: t)
    },
]

/// Removes a scratch directory and everything in it.
func removeScratch(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

/// A fresh private directory.
func scratchDirectory(_ name: String) throws -> String {
    var template = Array("/tmp/procmem-faults-\(name)-XXXXXX".utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }) else { throw HarnessError("mkdtemp") }
    return String(cString: made)
}


func plantedLinks(iterations: Int, tally: Tally) throws {
    for _ in 0..<iterations {
        tally.attempt { () throws -> String? in
            let fixture = try FixtureProcess.quiet()
            defer { fixture.killAndReap() }
            let base = try scratchDirectory("links")
            defer { removeScratch(base) }
            let victim = base + "/victim"
            try Data("VICTIM".utf8).write(to: URL(fileURLWithPath: victim))
            let handle = try ProcessHandle(pid: fixture.pid)
            defer { handle.close() }
            // Every region file name, planted.
            let out = base + "/out"
            guard mkdir(out, 0o700) == 0, mkdir(out + "/regions", 0o700) == 0 else { return "mkdir" }
            for region in try handle.memoryMap().regions {
                let digits = String(region.start, radix: 16)
                _ = symlink(victim, out + "/regions/" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits + ".bin")
            }
            _ = try handle.dump(toDirectory: out, options: DumpOptions(stopMethod: .signal))
            // A dangling index.json, a linked core and a linked sidecar: refused.
            let other = base + "/other"
            guard mkdir(other, 0o700) == 0, symlink(base + "/created", other + "/index.json") == 0,
                  symlink(victim, base + "/a.core") == 0, symlink(victim, base + "/b.core.json") == 0 else { return "plant" }
            for attempt in [{ _ = try handle.dump(toDirectory: other) }, { _ = try handle.dumpCore(to: base + "/a.core") },
                            { _ = try handle.dumpCore(to: base + "/b.core") }] as [() throws -> Void] {
                do {
                    try attempt()
                    return "a planted link was accepted"
                } catch let error as ProcessMemoryError where error.code == .accessDenied {
                } catch {
                    return "unexpected error \(error)"
                }
            }
            if access(base + "/created", F_OK) == 0 { tally.lost(1, "a file was created through a dangling link") }
            if (try? String(contentsOfFile: victim, encoding: .utf8)) != "VICTIM" { tally.lost(6, "the victim file was written through a link") }
            return nil
        }
    }
}

func stopperKilled(iterations: Int, tally: Tally) throws {
    let procmem = (try? BuiltProducts.path(of: "procmem")) ?? "procmem"
    guard access(procmem, X_OK) == 0 else { tally.skipped = "\(procmem) is missing"; return }
    for _ in 0..<iterations {
        tally.attempt { () throws -> String? in
            let fixture = try FixtureProcess.quiet()
            defer { fixture.killAndReap() }
            _ = try fixture.map(1 << 30)
            let base = try scratchDirectory("stopper")
            defer { removeScratch(base) }
            let dumper = try ChildProcess([procmem, "dump", String(fixture.pid), "--output", base + "/out", "--stop", "signal"])
            let stopped = waitUntil(20) { procStatField(fixture.pid, "State")?.hasPrefix("T") == true }
            dumper.kill(SIGKILL)
            dumper.reap()
            guard stopped else { return "the dump never stopped the target" }
            let resumed = waitUntil(5) { procStatField(fixture.pid, "State")?.hasPrefix("T") == false }
            if !resumed {
                fixture.kill(SIGCONT)
                return "the target was left stopped after procmem was killed"
            }
            return nil
        }
    }
}

func ptraceVfork(iterations: Int, tally: Tally) throws {
    for _ in 0..<iterations {
        tally.attempt { () throws -> String? in
            let base = try scratchDirectory("vfork")
            defer { removeScratch(base) }
            let gate = base + "/gate"
            guard mkfifo(gate, 0o600) == 0 else { return "mkfifo" }
            // The system python3: glibc's posix_spawn (clone with CLONE_VFORK) runs the file
            // actions in the child while the parent waits.
            let candidates: [String] = ["/usr/bin/python3", "/usr/local/bin/python3"]
            let python = candidates.first(where: { access($0, X_OK) == 0 }) ?? "python3"
            let target = try ChildProcess([python, "-c", "import os; os.posix_spawn('/bin/true', ['true'], {}, file_actions=[(os.POSIX_SPAWN_OPEN, 3, '\(gate)', os.O_RDONLY, 0)])"])
            defer {
                let fd = open(gate, O_WRONLY | O_NONBLOCK)
                if fd >= 0 { close(fd) }
                target.kill()
                target.reap()
            }
            guard waitUntil(10, { !(String(decoding: readProcFile("/proc/\(target.pid)/task/\(target.pid)/children") ?? [], as: UTF8.self).isEmpty) }) else {
                return "the target never entered vfork"
            }
            let handle = try ProcessHandle(pid: target.pid)
            defer { handle.close() }
            let t0 = now()
            do throws(ProcessMemoryError) {
                let stopped = try handle.stop(.ptrace)
                stopped.resume()
                return "stop(.ptrace) succeeded on a vfork parent"
            } catch {
                let seconds = now() - t0
                if seconds > 7 { return "stop(.ptrace) took \(Int(seconds)) s" }
                if error.code != .badState { return "unexpected \(error.code)" }
            }
            return nil
        }
    }
}

let userfaultfdScript = """
import fcntl, os, struct
fd = libc.syscall(323, os.O_CLOEXEC | os.O_NONBLOCK)
if fd < 0: fail('userfaultfd')
fcntl.ioctl(fd, 0xc018aa3f, bytearray(struct.pack('QQQ', 0xAA, 0, 0)))
address = libc.mmap(None, 16384, 3, 0x22, -1, 0)
fcntl.ioctl(fd, 0xc020aa00, bytearray(struct.pack('QQQQ', address, 16384, 1, 0)))
print(address, flush=True)
sys.stdin.readline()
"""

func userfaultfdDump(iterations: Int, tally: Tally) throws {
    var info = utsname()
    uname(&info)
    let machine = withUnsafeBytes(of: info.machine) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    guard machine == "x86_64" else { tally.skipped = "userfaultfd syscall number is for x86_64"; return }
    for _ in 0..<iterations {
        tally.attempt { () throws -> String? in
            let (python, words) = try pythonTarget(userfaultfdScript)
            defer { python.kill(); python.reap() }
            guard let address = words.first.flatMap({ UInt64($0) }) else { return "no address" }
            let base = try scratchDirectory("uffd")
            defer { removeScratch(base) }
            let handle = try ProcessHandle(pid: python.pid)
            defer { handle.close() }
            for method in [StopMethod.ptrace, .signal] {
                let index = try handle.dump(toDirectory: base + "/\(method)", options: DumpOptions(stopMethod: method))
                guard index.failedRanges.contains(where: { $0.start == address && $0.reason.contains("userfaultfd") }) else {
                    return "the index does not report the userfaultfd range (\(method))"
                }
            }
            let result = try Scanner(handle: handle, options: ScanOptions()).scan(.value(try ScanValue("0x5EED1234", as: .u32)))
            guard result.skipped.contains(where: { $0.start == address }) else { return "the scan does not report the userfaultfd range" }
            // process_vm_readv (protect mode, batches) waits forever on such a page: both must stop.
            do throws(ProcessMemoryError) {
                let bytes = try handle.read(from: address, count: 8, mode: .respectingProtections)
                return "a protect-mode read of the userfaultfd range returned \(bytes.count) bytes"
            } catch {
                guard error.code == .notSupported && error.message.contains("userfaultfd") else {
                    return "a protect-mode read of the userfaultfd range failed with \(error.code), not notSupported"
                }
            }
            let changes = try Watcher(handle: handle, targets: [.init(address: address, size: 4)]).poll()
            guard changes.count == 1, case .unreadable(let why) = changes[0].new, why.code == .notSupported else {
                return "a watch of the userfaultfd range did not report it unreadable"
            }
            return nil
        }
    }
}

func craftedInputs(iterations: Int, tally: Tally) throws {
    let huge = #"{"complete":true,"format":"procmem-dump","pid":10,"readMode":"debugger","stopMethod":"ptrace","version":1,"regions":[{"start":"0x1000","end":"0xffffffffffffffff","failed":[],"kind":"anonymous","offset":"0x0","path":null,"permissions":"rw-p","processedUpTo":"0x1000","segments":[{"start":"0x1000","end":"0xffffffffffffffff","file":"regions/x.bin","fileOffset":0}]}]}"#
    for _ in 0..<iterations {
        tally.attempt { () throws -> String? in
            if (try? DumpIndex.decode(Array(huge.utf8))) != nil { return "a 2^63-byte segment was accepted" }
            let base = try scratchDirectory("inputs")
            defer { removeScratch(base) }
            guard mkfifo(base + "/fifo", 0o600) == 0, mkdir(base + "/dump", 0o700) == 0, mkfifo(base + "/dump/index.json", 0o600) == 0 else { return "mkfifo" }
            let t0 = now()
            if (try? MatchSet(contentsOf: "/dev/zero")) != nil { return "/dev/zero read as a match file" }
            if (try? MatchSet(contentsOf: base + "/fifo")) != nil { return "a FIFO read as a match file" }
            if (try? SnapshotInfo(contentsOf: base + "/fifo")) != nil { return "a FIFO read as a snapshot" }
            if (try? SnapshotDiff.compare(directory: base + "/dump", directory: base + "/dump")) != nil { return "a FIFO read as an index" }
            if now() - t0 > 2 { return "non-regular inputs took \(Int(now() - t0)) s to refuse" }
            return nil
        }
    }
}
