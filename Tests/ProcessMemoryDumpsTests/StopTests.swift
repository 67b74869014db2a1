import Foundation
import Glibc
import ProcessMemoryTestSupport
import ProcessMemoryTestTraits
import Testing
import ProcessMemoryCore
import ProcessMemoryDumps

/// Stopping a process: SIGSTOP, ptrace and the cgroup v2 freezer, each resumed.
@Suite("Stopping")
struct StopTests {
    @Test("SIGSTOP and ptrace stop every thread and resume it", arguments: [StopMethod.signal, .ptrace])
    func stopAndResume(method: StopMethod) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let stopped = try handle.stop(method)
        #expect(stopped.threads.first == fixture.pid)
        let state = DumpSupport.state(fixture.pid)
        #expect(state == "T" || state == "t", "state \(String(describing: state))")
        stopped.resume()
        stopped.resume()  // idempotent
        #expect(DumpSupport.isRunning(fixture.pid))
        try fixture.ok("ping")
    }

    @Test("a process stopped before is left stopped")
    func alreadyStoppedStaysStopped() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        fixture.kill(SIGSTOP)
        defer { fixture.kill(SIGCONT) }
        // SIGSTOP is delivered asynchronously: wait until the process is really stopped.
        try waitUntil { DumpSupport.state(fixture.pid) == "T" }
        let stopped = try handle.stop(.signal)
        #expect(stopped.wasAlreadyStopped)
        // Reading registers (a brief PTRACE_SEIZE per thread) leaves it in the group stop too.
        #expect(try stopped.registers().first?.tid == fixture.pid)
        #expect(DumpSupport.state(fixture.pid) == "T")
        stopped.resume()
        #expect(DumpSupport.state(fixture.pid) == "T")
    }

    @Test("ptrace gives every thread's registers; stop method none gives none")
    func registers() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        try handle.withStopped(.ptrace) { stopped in
            let registers = try stopped.registers()
            let main = try #require(registers.first)
            #expect(main.tid == fixture.pid)
            #if arch(x86_64)
            #expect(main.general.count == 27 * 8)
            let rip = main.general[(16 * 8)..<(17 * 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            #expect(rip != 0)
            #endif
        }
        #expect(DumpSupport.isRunning(fixture.pid))
        // A process that is not stopped has no registers to give.
        #expect(throws: ProcessMemoryError.self) {
            try handle.withStopped(.none) { stopped in _ = try stopped.registers() }
        }
    }

    @Test("the cgroup v2 freezer stops a target in its own cgroup, and refuses a shared one", .requiresCgroupV2)
    func cgroupFreezer() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        // A shared cgroup (here the test's own) is refused.
        #expect(throws: ProcessMemoryError.self) { try handle.stop(.cgroupFreezer) }
        #expect(DumpSupport.isRunning(fixture.pid))
        let mount = try #require(CgroupV2.writableMount)
        let cgroup = mount + "/procmem-dump-test-\(fixture.pid)"
        try #require(mkdir(cgroup, 0o755) == 0, "cannot create a cgroup under \(mount): errno \(errno)")
        defer {
            try? "\(fixture.pid)".write(toFile: mount + "/cgroup.procs", atomically: false, encoding: .utf8)
            rmdir(cgroup)
        }
        try "\(fixture.pid)".write(toFile: cgroup + "/cgroup.procs", atomically: false, encoding: .utf8)
        try handle.withStopped(.cgroupFreezer) { stopped in
            #expect(stopped.method == .cgroupFreezer)
            let events = try String(contentsOfFile: cgroup + "/cgroup.events", encoding: .utf8)
            #expect(events.contains("frozen 1"))
            // PTRACE_SEIZE + PTRACE_INTERRUPT trap a frozen task (Linux 6.18), and the detach puts it
            // back: the cgroup is still frozen afterwards.
            let capture = stopped.registerCapture()
            #expect(capture.absent.isEmpty, "\(capture.absent)")
            let main = try #require(capture.registers.first)
            #expect(main.tid == fixture.pid)
            #if arch(x86_64)
            let rip = main.general[(16 * 8)..<(17 * 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            #expect(try handle.memoryMap().regions.contains { $0.permissions.contains(.execute) && $0.contains(rip) })
            #endif
            let after = try String(contentsOfFile: cgroup + "/cgroup.events", encoding: .utf8)
            #expect(after.contains("frozen 1"))
        }
        let events = try String(contentsOfFile: cgroup + "/cgroup.events", encoding: .utf8)
        #expect(events.contains("frozen 0"))
        try fixture.ok("ping")
    }
}

/// Issue 16: a ptrace stop that gives up on a thread blocked in vfork must not leave that thread
/// attached to the caller, where its pending interrupt would stop it for good once vfork returns.
@Suite("ptrace stop of a vfork parent")
struct PtraceVforkTests {
    static let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// `TracerPid` of `/proc/PID/status`, or nil when the process is gone.
    static func tracer(_ pid: Int32) -> Int32? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        return status.split(separator: "\n").first { $0.hasPrefix("TracerPid:") }
            .flatMap { Int32($0.dropFirst("TracerPid:".count).trimmingCharacters(in: .whitespaces)) }
    }

    @Test("after the bounded wait gives up, the vfork parent is untraced and runs on when vfork returns",
          .requiresTool("python3"))
    func releasedAfterTimeout() throws {
        let python = try #require(Self.python)
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-vfork-\(UUID().uuidString)").path
        try #require(mkdir(base, 0o700) == 0)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let fifo = base + "/gate"
        try #require(mkfifo(fifo, 0o600) == 0)
        // posix_spawn's file action runs in the child while the parent waits in clone(CLONE_VFORK);
        // opening the FIFO blocks until this test opens its other end.
        let target = Process()
        target.executableURL = URL(fileURLWithPath: python)
        target.arguments = ["-c", "import os, time; os.posix_spawn('/bin/true', ['true'], {}, file_actions=[(os.POSIX_SPAWN_OPEN, 3, '\(fifo)', os.O_RDONLY, 0)]); time.sleep(0.2)"]
        try target.run()
        let pid = target.processIdentifier
        defer {
            kill(pid, SIGKILL)
            target.waitUntilExit()
        }
        var inVfork = false
        for _ in 0..<1000 where !inVfork {
            let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
            inVfork = !children.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
            if !inVfork { usleep(10_000) }
        }
        try #require(inVfork, "the target never entered vfork")
        let handle = try ProcessHandle(pid: pid)
        defer { handle.close() }
        #expect(throws: ProcessMemoryError.self) { _ = try handle.stop(.ptrace) }
        // This thread is still alive, and was the tracer before the fix.
        #expect(Self.tracer(pid) == 0, "the vfork parent is still traced by pid \(Self.tracer(pid) ?? -1)")
        // Release the child: vfork returns, and the target must run to its end.
        let gate = open(fifo, O_WRONLY | O_NONBLOCK)
        if gate >= 0 { close(gate) }
        let deadline = Date().addingTimeInterval(10)
        while target.isRunning && Date() < deadline { usleep(10_000) }
        #expect(!target.isRunning, "the target stopped for good after vfork returned (state \(DumpSupport.state(pid) ?? "?"))")
    }
}
