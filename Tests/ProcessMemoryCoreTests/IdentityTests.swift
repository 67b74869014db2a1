import Foundation
import ProcessMemoryTestSupport
import Testing
import ProcessMemoryCore

@Suite("Process identity through the handle") struct IdentityTests {
    @Test("command line, status and executable come from the handle's /proc directory")
    func identity() throws {
        let fixture = try Fixture(arguments: ["--fill", "0x5a"])
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let arguments = try handle.commandLine()
        #expect(arguments.first.map { URL(fileURLWithPath: $0).lastPathComponent } == "procmem-fixture")
        #expect(Array(arguments.dropFirst()) == ["--fill", "0x5a"])
        let status = try handle.status()
        #expect(status.name == "procmem-fixture")
        #expect((status.threads ?? 0) >= 1)
        #expect((status.residentBytes ?? 0) > 0)
        #expect(status.realUID == getuid())
        #expect(status.effectiveUID == geteuid())
        #expect(status.parentPID == getpid())
        #expect(status.state != nil && status.state != "Z")
        let executable = try #require(handle.executablePath())
        #expect(URL(fileURLWithPath: executable).lastPathComponent == "procmem-fixture")
    }

    @Test("a reaped process's status is not read from whatever reuses the PID")
    func reapedProcess() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        fixture.kill()
        fixture.waitForZombie()
        fixture.reap()
        let error = try #require(throws: ProcessMemoryError.self) { try handle.status() }
        #expect(error.code == .badState)
        #expect(throws: ProcessMemoryError.self) { try handle.commandLine() }
    }

    @Test("status parsing: kB sizes become bytes, State splits into letter and description")
    func parse() {
        let text = "Name:\tgame server\nState:\tS (sleeping)\nThreads:\t3\nUid:\t1000\t1001\t1000\t1000\nVmRSS:\t  2048 kB\nVmSwap:\tjunk kB\n"
        let status = ProcessStatus.parse(Array(text.utf8))
        #expect(status.name == "game server")
        #expect(status.state == "S")
        #expect(status.stateDescription == "sleeping")
        #expect(status.threads == 3)
        #expect(status.realUID == 1000 && status.effectiveUID == 1001)
        #expect(status.residentBytes == 2048 * 1024)
        #expect(status.swapBytes == nil)
        #expect(status.virtualBytes == nil)
    }
}
