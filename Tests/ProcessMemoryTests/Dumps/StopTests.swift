import Foundation
import Glibc
import ProcessMemory
import ProcessMemoryTestSupport
import ProcessMemoryTestTraits
import Testing

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
