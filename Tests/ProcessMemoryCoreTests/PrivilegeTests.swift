import Foundation
import Glibc
import ProcessMemoryTestSupport
import ProcessMemoryTestTraits
import Testing
@testable import ProcessMemoryCore

/// An unprivileged reader is a child of the test process that became uid/gid 65534 (nobody);
/// switching uid from root clears every capability. Each case runs in an exit test's own process and
/// reports its verdict through its exit code.
@Suite("Privilege boundaries", .requiresRoot("dropping to nobody"))
struct PrivilegeTests {
    static let nobody: UInt32 = 65534

    /// Exit codes of the unprivileged child: 0 = as expected, 10+ = which check failed.

    @Test("Another user's process is refused, and the error says why")
    func otherUser() async throws {
        let fixture = try Fixture()
        let pid = fixture.pid
        await #expect(processExitsWith: .success) { [pid = pid as Int32] in
            Unprivileged.dropToNobody()
            do {
                _ = try ProcessHandle(pid: pid)
                exit(10)
            } catch let error as ProcessMemoryError {
                guard error.code == .accessDenied else { exit(11) }
                guard error.accessDenial == .otherUser(targetUID: 0, callerUID: PrivilegeTests.nobody) else { exit(12) }
                guard error.message.contains("CAP_SYS_PTRACE") else { exit(13) }
            } catch { exit(14) }
            exit(0)
        }
    }

    @Test("A dumpable process of the same user can be read and written")
    func sameUser() async throws {
        let fixture = try Fixture(arguments: ["--user", "65534", "--dumpable", "1"])
        let pid = fixture.pid
        let address = try fixture.layout.value("u32")
        await #expect(processExitsWith: .success) { [pid = pid as Int32, address = address as UInt64] in
            Unprivileged.dropToNobody()
            guard let handle = try? ProcessHandle(pid: pid, rights: .readWrite) else { exit(10) }
            guard (try? handle.read(UInt32.self, from: address)) == 0xDEADBEEF else { exit(11) }
            guard (try? handle.read(UInt32.self, from: address, mode: .respectingProtections)) == 0xDEADBEEF else { exit(12) }
            guard (try? handle.write(UInt32(5), to: address)) != nil else { exit(13) }
            exit(0)
        }
        #expect(try fixture.selfRead(address, 4) == [5, 0, 0, 0])
    }

    @Test("A non-dumpable process of the same user is refused as not dumpable")
    func notDumpable() async throws {
        // A process that changed its uid from root is non-dumpable until it says otherwise.
        let fixture = try Fixture(arguments: ["--user", "65534"])
        let pid = fixture.pid
        await #expect(processExitsWith: .success) { [pid = pid as Int32] in
            Unprivileged.dropToNobody()
            do {
                _ = try ProcessHandle(pid: pid)
                exit(10)
            } catch let error as ProcessMemoryError {
                guard error.code == .accessDenied else { exit(11) }
                guard error.accessDenial == .notDumpable else { exit(12) }
            } catch { exit(14) }
            exit(0)
        }
    }

    @Test("After PR_SET_DUMPABLE 0 an unprivileged open is refused as not dumpable; root still reads")
    func dumpableDroppedLater() async throws {
        let fixture = try Fixture(arguments: ["--user", "65534", "--dumpable", "1"])
        let pid = fixture.pid
        let address = try fixture.layout.value("u32")
        // Root is not refused: it holds CAP_SYS_PTRACE.
        try fixture.ok("dumpable 0")
        #expect(try ProcessHandle(pid: pid).read(UInt32.self, from: address) == 0xDEADBEEF)
        await #expect(processExitsWith: .success) { [pid = pid as Int32] in
            Unprivileged.dropToNobody()
            do {
                _ = try ProcessHandle(pid: pid)
                exit(10)
            } catch let error as ProcessMemoryError {
                guard error.code == .accessDenied, error.accessDenial == .notDumpable else { exit(11) }
            } catch { exit(14) }
            exit(0)
        }
    }
}
