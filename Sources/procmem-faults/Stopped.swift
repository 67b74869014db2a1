import Foundation
import Glibc
import ProcessMemoryTestSupport
import ProcessMemory

// Stopped and traced targets: SIGSTOP; traced by gdb; in another PID namespace (read by host pid);
// a python3 process with 300 threads (read through the leader and through a thread id).

let stoppedCases: [FaultCase] = [
    FaultCase(name: "sigstopped-target", group: "stopped", timeout: 120,
              summary: "SIGSTOP'd target: reads (both modes), batch, map, write") { c, t in
        try stoppedTarget(iterations: c.n(quick: 10, full: 50), tally: t)
    },
    FaultCase(name: "gdb-traced-target", group: "stopped", timeout: 180,
              summary: "target attached by gdb -p: still readable without ptrace") { c, t in
        try gdbTraced(iterations: c.n(quick: 1, full: 3), tally: t)
    },
    FaultCase(name: "pid-namespace-target", group: "stopped", timeout: 120,
              summary: "fixture under unshare --pid --fork --mount-proc, read by its host pid") { c, t in
        try pidNamespace(iterations: c.n(quick: 3, full: 10), tally: t)
    },
    FaultCase(name: "300-threads", group: "stopped", timeout: 180,
              summary: "python3 with 300 sleeping threads: reads, map, handle by thread id") { c, t in
        try manyThreads(iterations: c.n(quick: 2, full: 5), tally: t)
    },
]

/// Reads the fixture's pattern in both modes and as a batch; every byte must be right.
func readAllWays(_ handle: ProcessHandle, base: UInt64, size: Int, tally: Tally) -> String? {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
    defer { buffer.deallocate() }
    for (round, kind) in ReadKind.allCases.enumerated() {
        if let code = readPatternOnce(handle, base: base, size: size, kind: kind, round: round, buffer: buffer, tally: tally) {
            return "\(kind) read failed: \(code)"
        }
    }
    return nil
}

func stoppedTarget(iterations: Int, tally: Tally) throws {
    for iteration in 0..<iterations {
        tally.attempt { () throws -> String? in
            let fixture = try FixtureProcess.quiet()
            defer { fixture.killAndReap() }
            let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
            fixture.kill(SIGSTOP)
            guard waitUntil(2, { procStatField(fixture.pid, "State")?.hasPrefix("T") == true }) else { return "never stopped" }
            if let failure = readAllWays(handle, base: fixture.patternAddress, size: fixture.patternSize, tally: tally) { return failure }
            if (try handle.memoryMap()).region(containing: fixture.patternAddress) == nil { return "map lacks the pattern" }
            if (try handle.state()) != .alive { return "stopped target not alive" }
            let value: UInt64 = 0x1122_3344_5566_7700 | UInt64(iteration & 0xff)
            try handle.write(value, to: fixture.patternAddress + 64)
            if try handle.read(UInt64.self, from: fixture.patternAddress + 64) != value { tally.lost(8, "write to a stopped target") }
            fixture.kill(SIGCONT)
            guard let back = try fixture.selfReadIfReadable(fixture.patternAddress + 64, 8) else { return "fixture read failed" }
            if back != withUnsafeBytes(of: value.littleEndian, Array.init) { tally.lost(8, "the target sees other bytes") }
            return nil
        }
    }
}

func gdbTraced(iterations: Int, tally: Tally) throws {
    guard access("/usr/bin/gdb", X_OK) == 0 || access("/usr/local/bin/gdb", X_OK) == 0 else {
        tally.skipped = "gdb not installed"
        return
    }
    for _ in 0..<iterations {
        tally.attempt { () throws -> String? in
            let fixture = try FixtureProcess.quiet()
            defer { fixture.killAndReap() }
            let handle = try ProcessHandle(pid: fixture.pid)
            let gdb = try ChildProcess(["gdb", "-nx", "-p", "\(fixture.pid)", "-batch", "-ex", "shell sleep 2"])
            defer { if !gdb.reap(timeout: 10) { gdb.kill(); gdb.reap() } }
            guard waitUntil(8, { (procStatField(fixture.pid, "TracerPid") ?? "0") != "0" }) else {
                return "gdb never attached"
            }
            var reads = 0
            // Read while gdb holds the target stopped.
            while (procStatField(fixture.pid, "TracerPid") ?? "0") != "0" && reads < 200 {
                if let failure = readAllWays(handle, base: fixture.patternAddress, size: fixture.patternSize, tally: tally) {
                    return failure + " (traced)"
                }
                reads += 1
                usleep(5000)
            }
            // A second handle opened while traced.
            if (procStatField(fixture.pid, "TracerPid") ?? "0") != "0" {
                let second = try ProcessHandle(pid: fixture.pid)
                if let failure = readAllWays(second, base: fixture.patternAddress, size: fixture.patternSize, tally: tally) { return failure }
            }
            tally.note("\(reads) read rounds while traced")
            return reads > 0 ? nil : "no read happened while traced"
        }
    }
}

func pidNamespace(iterations: Int, tally: Tally) throws {
    guard access("/usr/bin/unshare", X_OK) == 0 else {
        tally.skipped = "unshare not installed"
        return
    }
    for _ in 0..<iterations {
        tally.attempt { () throws -> String? in
            let fixture: FixtureProcess
            do {
                fixture = try FixtureProcess.quiet(wrapper: ["unshare", "--pid", "--fork", "--mount-proc"])
            } catch {
                tally.skipped = "unshare failed here: \(error)"
                return nil
            }
            defer { fixture.stop() }
            // The layout says the namespace pid; the host pid is unshare's only child.
            let innerPid = Int(fixture.layout.pid)
            guard let children = try? String(contentsOfFile: "/proc/\(fixture.pid)/task/\(fixture.pid)/children", encoding: .utf8),
                  let host = Int32(children.split(separator: " ").first ?? "") else { return "no host pid" }
            if innerPid == Int(host) { tally.note("fixture is not in a new pid namespace") }
            let handle = try ProcessHandle(pid: host, rights: .readWrite)
            if let failure = readAllWays(handle, base: fixture.patternAddress, size: fixture.patternSize, tally: tally) { return failure }
            let map = try handle.memoryMap()
            if map.region(containing: fixture.patternAddress) == nil { return "map lacks the pattern" }
            try handle.writeExactly([0xab, 0xcd], to: fixture.patternAddress + 8)
            if try fixture.selfReadIfReadable(fixture.patternAddress + 8, 2) != [0xab, 0xcd] { tally.lost(2, "write into the namespace") }
            // The namespace's pid means a different process (or none) on the host: never the fixture by accident.
            if innerPid > 0 && innerPid != Int(host), let other = try? ProcessHandle(pid: Int32(innerPid)) {
                if let bytes = try? other.read(from: fixture.patternAddress, count: 16), bytes == (0..<16).map(patternByte) {
                    tally.note("inner pid \(innerPid) on the host has the same bytes")
                }
            }
            return nil
        }
    }
}

let threadsScript = """
import ctypes, sys, threading, time, os
buf = ctypes.create_string_buffer(bytes((i * 13) & 0xff for i in range(65536)), 65536)
ev = threading.Event()
ts = [threading.Thread(target=ev.wait, daemon=True) for _ in range(300)]
for t in ts: t.start()
tids = os.listdir('/proc/self/task')
print(ctypes.addressof(buf), ' '.join(tids), flush=True)
sys.stdin.readline()
"""

func manyThreads(iterations: Int, tally: Tally) throws {
    for _ in 0..<iterations {
        tally.attempt { () throws -> String? in
            let python = try ChildProcess(["python3", "-c", threadsScript])
            defer { python.kill(); python.reap() }
            let words = try python.readLine(timeout: 60).split(separator: " ")
            guard let address = UInt64(words.first ?? ""), words.count > 300 else { return "python gave no address/threads" }
            let tids = words.dropFirst().compactMap { Int32($0) }
            let threads = Int(procStatField(python.pid, "Threads") ?? "0") ?? 0
            if threads < 300 { return "only \(threads) threads" }
            let expected = (0..<65536).map { UInt8(truncatingIfNeeded: $0 * 13) }
            let handle = try ProcessHandle(pid: python.pid)
            for mode in ReadMode.allCases {
                let bytes = try handle.readExactly(from: address, count: 65536, mode: mode)
                if bytes != expected { tally.misread(1, "\(mode) read of a 300-thread process") }
            }
            let map = try handle.memoryMap()
            if map.region(containing: address) == nil { return "map lacks the buffer" }
            if map.count < 300 { tally.note("only \(map.count) regions (thread stacks missing?)") }
            // A handle opened by a thread id reads the same address space.
            if let tid = tids.last(where: { $0 != python.pid }) {
                do {
                    let byThread = try ProcessHandle(pid: tid)
                    if try byThread.readExactly(from: address, count: 4096) != Array(expected[0..<4096]) {
                        tally.misread(1, "read through thread id \(tid)")
                    }
                } catch {
                    tally.note("handle by thread id: \(error)")
                }
            }
            return nil
        }
    }
}
