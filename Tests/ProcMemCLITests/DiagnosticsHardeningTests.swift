import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing

/// Issue 16: error messages and hints that said the wrong thing.
@Suite("procmem diagnostics name the real reason")
struct DiagnosticsHardeningTests {
    /// Runs `command` with arguments as uid/gid 65534 (nobody), through python3's setresuid.
    static func runAsNobody(_ command: [String], timeout: Double = 30) throws -> (status: Int32, stderr: String) {
        let python = try #require(StopHardeningTests.python)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", "import os, sys; os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534); "
                             + "os.execv(sys.argv[1], sys.argv[1:])"] + command
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let said = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, said)
    }

    @Test("read PID -1 16 says a negative ADDRESS is not accepted, not that LENGTH is missing")
    func negativeAddress() throws {
        let run = try procmem("read", "1", "-1", "16")
        #expect(run.status != 0)
        #expect(run.stderr.contains("can be negative"), "\(run.stderr)")
        #expect(!run.stderr.contains("LENGTH (in bytes) is required"), "\(run.stderr)")
    }

    @Test("a file that is not a match file gets no ADDRESS and LENGTH hint")
    func fileFormatHint() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-garbage-\(UUID().uuidString)").path
        try Data("not a match file at all".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try procmem("rescan", path, "--changed")
        #expect(run.status != 0 && run.stderr.contains("bad magic"), "\(run.stderr)")
        #expect(!run.stderr.contains("ADDRESS and LENGTH"), "\(run.stderr)")
    }

    @Test("another user's process: the hint warns that setcap makes the binary root-equivalent",
          .enabled(if: getuid() == 0 && StopHardeningTests.python != nil, "needs root (to drop to nobody) and python3"))
    func setcapWarning() throws {
        try withFixture { fixture in
            let run = try Self.runAsNobody([try Binaries.url("procmem").path, "read", fixture.pidArgument, hex(try fixture.layout.value("u32")), "4"])
            #expect(run.status != 0)
            #expect(run.stderr.contains("uid 0"), "\(run.stderr)")
            #expect(run.stderr.contains("root-equivalent"), "\(run.stderr)")
        }
    }

    @Test("a setuid-root program run by the caller is reported as not dumpable, not as having more capabilities",
          .enabled(if: getuid() == 0 && StopHardeningTests.python != nil, "needs root (to make a setuid binary and drop to nobody) and python3"))
    func setuidRootTarget() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-suid-\(UUID().uuidString)").path
        try #require(mkdir(base, 0o755) == 0)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let sleeper = base + "/sleep-suid"
        try FileManager.default.copyItem(atPath: "/bin/sleep", toPath: sleeper)
        try #require(chown(sleeper, 0, 0) == 0 && chmod(sleeper, 0o4755) == 0)
        // The target: started as nobody, its effective uid root by the setuid bit.
        let python = try #require(StopHardeningTests.python)
        let target = Process()
        target.executableURL = URL(fileURLWithPath: python)
        target.arguments = ["-c", "import os, sys; os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534); "
                            + "os.execv(sys.argv[1], sys.argv[1:])", sleeper, "60"]
        try target.run()
        defer {
            kill(target.processIdentifier, SIGKILL)
            target.waitUntilExit()
        }
        let pid = target.processIdentifier
        #expect(StopHardeningTests.eventually(10) {
            ((try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? "").contains("Uid:\t65534\t0\t0\t0")
        }, "the target did not become setuid root (nosuid mount?)")
        let run = try Self.runAsNobody([try Binaries.url("procmem").path, "maps", String(pid)])
        #expect(run.status != 0)
        #expect(run.stderr.contains("not dumpable"), "\(run.stderr)")
        #expect(!run.stderr.contains("capabilities you lack"), "\(run.stderr)")
    }
}
