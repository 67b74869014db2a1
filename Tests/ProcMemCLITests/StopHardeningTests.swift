import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing

/// Issue 16: a target procmem stops is resumed even when procmem is killed; procmem never stops
/// itself or an ancestor; a ptrace stop is bounded; the freezer checks the whole cgroup subtree.
@Suite("procmem never leaves a target stopped")
struct StopHardeningTests {
    /// The cgroup v2 mount point, when there is one this test may create cgroups under.
    static let cgroup2: String? = {
        guard let mountinfo = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return nil }
        for line in mountinfo.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2, halves[1].hasPrefix("cgroup2 ") else { continue }
            let fields = halves[0].split(separator: " ")
            guard fields.count >= 5, fields[3] == "/" else { continue }
            let mount = String(fields[4])
            return access(mount + "/cgroup.procs", W_OK) == 0 ? mount : nil
        }
        return nil
    }()

    static let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// A cgroup of its own for `pids`, removed (its processes moved back to the root) by `body`'s end.
    static func withCgroup<R>(_ name: String, _ pids: [Int32], _ body: (String) throws -> R) throws -> R {
        let mount = try #require(cgroup2)
        let path = mount + "/procmem-harden-\(name)-\(getpid())"
        try #require(mkdir(path, 0o755) == 0 || errno == EEXIST)
        defer {
            try? Data("0".utf8).write(to: URL(fileURLWithPath: path + "/cgroup.freeze"))
            removeCgroup(path, root: mount)
        }
        for pid in pids { try Data("\(pid)".utf8).write(to: URL(fileURLWithPath: path + "/cgroup.procs")) }
        return try body(path)
    }

    /// Moves every process of `path` and its children back to the root cgroup and removes them.
    static func removeCgroup(_ path: String, root: String) {
        for child in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
            var info = stat()
            if lstat(path + "/" + child, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { removeCgroup(path + "/" + child, root: root) }
        }
        let procs = (try? String(contentsOfFile: path + "/cgroup.procs", encoding: .utf8)) ?? ""
        for pid in procs.split(separator: "\n") { try? Data(pid.utf8).write(to: URL(fileURLWithPath: root + "/cgroup.procs")) }
        rmdir(path)
    }

    static func frozen(_ cgroup: String) -> Bool {
        ((try? String(contentsOfFile: cgroup + "/cgroup.events", encoding: .utf8)) ?? "").contains("frozen 1")
    }

    /// Polls `condition` for up to `seconds`.
    static func eventually(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    /// Starts `procmem dump PID --output DIR --stop METHOD` on a fixture with a 2 GiB region, waits
    /// until that region is being written (the target is stopped), and sends `signal` to procmem.
    /// `beforeSignal` runs with procmem's pid just before the signal is sent. With `bothAtOnce`,
    /// SIGINT and SIGTERM (two interrupts, which procmem treats alike) reach it together: it is
    /// paused with SIGSTOP while both are sent, so the second arrives before the first can end the
    /// dump, and procmem must exit with 130.
    static func killDuringDump(_ fixture: Fixture, method: String, signal: Int32, whileStopped check: () -> Bool,
                               bothAtOnce: Bool = false, beforeSignal: (Int32) -> Void = { _ in }) throws -> Bool {
        let reply = try fixture.command("map \(2 << 30)")
        let address = try #require((reply["address"] as? NSNumber)?.uint64Value)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-harden-kill-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let process = Process()
        let arguments = ["dump", fixture.pidArgument, "--output", directory, "--stop", method]
        if let python {
            // SIGHUP and SIGINT may be ignored (nohup) or blocked (the signal mask of the test's
            // thread) by whatever runs the tests, and children inherit both: restore the default
            // actions and unblock them, as in a terminal session, before procmem starts.
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = ["-c", "import os, signal, sys; signal.signal(signal.SIGHUP, signal.SIG_DFL); signal.signal(signal.SIGINT, signal.SIG_DFL); "
                                 + "signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGHUP, signal.SIGINT]); os.execv(sys.argv[1], sys.argv[1:])",
                                 try Binaries.url("procmem").path] + arguments
        } else {
            process.executableURL = try Binaries.url("procmem")
            process.arguments = arguments
        }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let digits = String(address, radix: 16)
        let bigFile = String(repeating: "0", count: max(0, 12 - digits.count)) + digits + ".bin"
        func started() -> Bool {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            return entries.contains { $0.hasPrefix(".regions.procmem-") && FileManager.default.fileExists(atPath: directory + "/" + $0 + "/" + bigFile) }
        }
        while process.isRunning && !started() { usleep(200) }
        let wasStopped = process.isRunning && check()
        beforeSignal(process.processIdentifier)
        if bothAtOnce {
            kill(process.processIdentifier, SIGSTOP)
            _ = eventually(5) { !DumpCommandTests.isRunning("\(process.processIdentifier)") }
            kill(process.processIdentifier, SIGINT)
            kill(process.processIdentifier, SIGTERM)
            kill(process.processIdentifier, SIGCONT)
            process.waitUntilExit()
            #expect(process.terminationReason == .exit && process.terminationStatus == 130, "status \(process.terminationStatus)")
            return wasStopped
        }
        kill(process.processIdentifier, signal)
        if signal == SIGINT {
            // A second Ctrl-C exits at once (status 130). On a loaded machine the first one may
            // already have ended the dump (partial, status 1) before the second arrives; either
            // way the target must run again.
            usleep(50_000)
            kill(process.processIdentifier, signal)
            process.waitUntilExit()
            #expect(process.terminationReason == .exit && [130, 1].contains(process.terminationStatus),
                    "status \(process.terminationStatus)")
            return wasStopped
        }
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == signal)
        return wasStopped
    }

    @Test("SIGKILL, SIGHUP or a second Ctrl-C of procmem during a --stop signal dump leaves the target running",
          arguments: [SIGKILL, SIGHUP, SIGINT])
    func killedDuringSignalStop(_ signal: Int32) throws {
        try withFixture { fixture in
            let stopped = try Self.killDuringDump(fixture, method: "signal", signal: signal) { !DumpCommandTests.isRunning(fixture.pidArgument) }
            #expect(stopped, "the target was not stopped while it was dumped")
            #expect(Self.eventually(5) { DumpCommandTests.isRunning(fixture.pidArgument) }, "the target was left stopped")
            #expect(try fixture.command("ping")["ok"] as? Bool == true)
        }
    }

    @Test("SIGKILL, SIGHUP or a second Ctrl-C of procmem during a --stop freezer dump leaves the cgroup thawed",
          .enabled(if: StopHardeningTests.cgroup2 != nil, "needs a writable cgroup v2 hierarchy"), arguments: [SIGKILL, SIGHUP, SIGINT])
    func killedDuringFreezerStop(_ signal: Int32) throws {
        try withFixture { fixture in
            try Self.withCgroup("kill-\(signal)", [fixture.layout.pid]) { cgroup in
                let frozen = try Self.killDuringDump(fixture, method: "freezer", signal: signal) { Self.frozen(cgroup) }
                #expect(frozen, "the cgroup was not frozen while the target was dumped")
                #expect(Self.eventually(5) { !Self.frozen(cgroup) }, "the cgroup was left frozen")
                #expect(try fixture.command("ping")["ok"] as? Bool == true)
            }
        }
    }

    /// Processes other than `excluded` and this one that hold a pidfd of `target`: the stop guardian.
    static func pidfdHolders(of target: Int32, excluding excluded: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard pid != excluded, pid != getpid() else { return false }
            let fdinfo = "/proc/\(pid)/fdinfo"
            return ((try? FileManager.default.contentsOfDirectory(atPath: fdinfo)) ?? []).contains { fd in
                let text = (try? String(contentsOfFile: fdinfo + "/" + fd, encoding: .utf8)) ?? ""
                return text.split(separator: "\n").contains { $0 == "Pid:\t\(target)" }
            }
        }
    }

    /// Sends procmem two Ctrl-Cs during a dump while its stop guardian is held stopped, so that
    /// only procmem itself can have resumed the target by the time it has exited.
    static func secondInterrupt(_ fixture: Fixture, method: String, stopped: () -> Bool) throws {
        var guardians: [Int32] = []
        defer { for pid in guardians { kill(pid, SIGCONT) } }
        let wasStopped = try killDuringDump(fixture, method: method, signal: SIGINT, whileStopped: stopped, bothAtOnce: true) { procmem in
            guardians = pidfdHolders(of: fixture.layout.pid, excluding: procmem)
            for pid in guardians { kill(pid, SIGSTOP) }
        }
        #expect(wasStopped, "the target was not stopped while it was dumped")
        #expect(guardians.count == 1, "guardians found: \(guardians)")
        // Nothing else can resume it now: a short grace for /proc and cgroup.events to show it.
        #expect(eventually(1) { !stopped() }, "procmem exited and left the target stopped")
    }

    @Test("a second Ctrl-C resumes a --stop signal target before procmem exits, not only through the guardian afterwards")
    func secondInterruptResumesSignalStop() throws {
        try withFixture { fixture in
            try Self.secondInterrupt(fixture, method: "signal") { !DumpCommandTests.isRunning(fixture.pidArgument) }
            #expect(try fixture.command("ping")["ok"] as? Bool == true)
        }
    }

    @Test("a second Ctrl-C thaws a --stop freezer cgroup before procmem exits, not only through the guardian afterwards",
          .enabled(if: StopHardeningTests.cgroup2 != nil, "needs a writable cgroup v2 hierarchy"))
    func secondInterruptThawsFreezerStop() throws {
        try withFixture { fixture in
            try Self.withCgroup("second-int", [fixture.layout.pid]) { cgroup in
                try Self.secondInterrupt(fixture, method: "freezer") { Self.frozen(cgroup) }
            }
            #expect(try fixture.command("ping")["ok"] as? Bool == true)
        }
    }

    @Test("--stop ptrace (and SIGKILL of procmem under it) leaves the target running")
    func killedDuringPtraceStop() throws {
        try withFixture { fixture in
            let stopped = try Self.killDuringDump(fixture, method: "ptrace", signal: SIGKILL) { !DumpCommandTests.isRunning(fixture.pidArgument) }
            #expect(stopped)
            #expect(Self.eventually(5) { DumpCommandTests.isRunning(fixture.pidArgument) })
        }
    }

    @Test("the freezer refuses a cgroup whose child cgroup holds another process",
          .enabled(if: StopHardeningTests.cgroup2 != nil, "needs a writable cgroup v2 hierarchy"))
    func freezerChecksSubtree() throws {
        try withFixture { fixture in
            try withFixture { other in
                try Self.withCgroup("subtree", [fixture.layout.pid]) { cgroup in
                    try #require(mkdir(cgroup + "/child", 0o755) == 0)
                    try Data("\(other.layout.pid)".utf8).write(to: URL(fileURLWithPath: cgroup + "/child/cgroup.procs"))
                    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-harden-subtree-\(UUID().uuidString)").path
                    defer { try? FileManager.default.removeItem(atPath: directory) }
                    let run = try procmem("dump", fixture.pidArgument, "--output", directory, "--stop", "freezer")
                    #expect(run.status != 0 && run.stderr.contains("other process"), "\(run.stderr)")
                    #expect(!Self.frozen(cgroup + "/child"))
                    #expect(try other.command("ping")["ok"] as? Bool == true)
                }
            }
        }
    }

    @Test("procmem refuses to stop itself or its parent, under every stop method", arguments: ["signal", "freezer", "ptrace"])
    func refusesSelfAndAncestor(_ method: String) throws {
        let procmemPath = try Binaries.url("procmem").path
        let base = FileManager.default.temporaryDirectory
        let directory = base.appendingPathComponent("procmem-harden-self-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (script, says) in [("exec '\(procmemPath)' dump $$ --output '\(directory)' --stop \(method)", "own process"),
                               ("'\(procmemPath)' dump $$ --output '\(directory)' --stop \(method); exit $?", "parent")] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", script]
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let pid = process.processIdentifier
            // Whatever happens, never leave it stopped.
            let deadline = Date().addingTimeInterval(20)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            let hung = process.isRunning
            if hung {
                kill(pid, SIGKILL)
                kill(pid, SIGCONT)
            }
            let said = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(!hung, "procmem stopped itself or its parent (\(method))")
            #expect(process.terminationStatus != 0 && said.contains(says), "\(method): \(said)")
        }
    }

    @Test("--stop ptrace gives up within its bounded wait on a target blocked in vfork",
          .enabled(if: StopHardeningTests.python != nil, "needs python3 (posix_spawn with a file action that blocks)"))
    func ptraceStopOfVforkParent() throws {
        let python = try #require(Self.python)
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-harden-vfork-\(UUID().uuidString)").path
        try #require(mkdir(base, 0o700) == 0)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let fifo = base + "/gate"
        try #require(mkfifo(fifo, 0o600) == 0)
        // posix_spawn runs its file actions in the child while the parent waits in clone(CLONE_VFORK);
        // opening the FIFO blocks until the test opens its other end.
        let target = Process()
        target.executableURL = URL(fileURLWithPath: python)
        target.arguments = ["-c", "import os; os.posix_spawn('/bin/true', ['true'], {}, file_actions=[(os.POSIX_SPAWN_OPEN, 3, '\(fifo)', os.O_RDONLY, 0)])"]
        try target.run()
        defer {
            // Release the child, so the target finishes.
            let gate = open(fifo, O_WRONLY | O_NONBLOCK)
            if gate >= 0 { close(gate) }
            target.waitUntilExit()
        }
        // Wait until a child of the target exists: the target is then inside vfork.
        let pid = target.processIdentifier
        #expect(Self.eventually(10) {
            let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
            return !children.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        })
        let run = try runProcmem(["dump", String(pid), "--output", base + "/out"], timeout: 30, in: URL(fileURLWithPath: base))
        #expect(!run.timedOut, "procmem waited for the vfork without a bound")
        #expect(run.status != 0 && run.stderr.contains("did not stop within 5 s"), "\(run.stderr)")
        #expect(run.stderr.contains("vfork"), "\(run.stderr)")
        #expect(!run.stderr.contains("exiting or gone") && run.stderr.contains("--stop none"), "the hint blames the wrong cause: \(run.stderr)")
    }
}
