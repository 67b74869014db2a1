import Foundation
import Glibc
import ProcessMemoryTestSupport
import ProcessMemoryTestTraits
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryObjects

/// The fallbacks when `/proc/PID/map_files` is closed to the caller (no `CAP_SYS_ADMIN` or
/// `CAP_CHECKPOINT_RESTORE`): the reader is a child that became uid 65534, reading a fixture that
/// dropped to the same uid after laying out its memory as root.
@Suite("Objects behind mappings, without map_files", .requiresRoot("dropping to nobody"))
struct BackingObjectPrivilegeTests {
    @Test("A memfd is reached through the target's descriptor (pidfd_getfd)")
    func memfdThroughTheTargetsDescriptor() async throws {
        let fixture = try Fixture(arguments: ["--user", "65534", "--dumpable", "1"])
        let pid = fixture.pid
        let memfd = try fixture.layout.region("memfd").address
        await #expect(processExitsWith: .success) { [pid = pid as Int32, memfd = memfd as UInt64] in
            Unprivileged.dropToNobody()
            guard let handle = try? ProcessHandle(pid: pid) else { exit(10) }
            // map_files itself is refused.
            do {
                _ = try handle.memoryObject(containing: memfd, rights: .read, sources: [.mapFiles])
                exit(11)
            } catch let error as ProcessMemoryError {
                guard error.code == .accessDenied, error.message.contains("CAP_CHECKPOINT_RESTORE") else { exit(12) }
            } catch { exit(17) }
            guard let backing = try? handle.memoryObject(containing: memfd) else { exit(13) }
            guard backing.source == .targetDescriptor, backing.object.rights == .read else { exit(14) }
            guard (try? backing.object.read(count: 2, at: 4095)) == [0xC0, 0xC1] else { exit(15) }
            guard (try? backing.object.read(count: 1, at: 6144)) == nil else { exit(16) }
            exit(0)
        }
    }

    @Test("A file is reached through the target's descriptor, or through its path")
    func fileThroughTheTargetsDescriptorOrPath() async throws {
        let fixture = try Fixture(arguments: ["--user", "65534", "--dumpable", "1"])
        let pid = fixture.pid
        let file = try fixture.layout.region("truncatedFile").address
        await #expect(processExitsWith: .success) { [pid = pid as Int32, file = file as UInt64] in
            Unprivileged.dropToNobody()
            guard let handle = try? ProcessHandle(pid: pid) else { exit(10) }
            // The fixture holds the file open read-write; the object is reopened read-only.
            guard let backing = try? handle.memoryObject(containing: file + 4096) else { exit(11) }
            guard backing.source == .targetDescriptor, backing.object.rights == .read, backing.offset == 4096 else { exit(12) }
            guard (try? backing.object.read(count: 2, at: 6142)) == [0xB1, 0xB1] else { exit(13) }
            guard let byPath = try? handle.memoryObject(containing: file, rights: .read, sources: [.mapFiles, .path]) else { exit(14) }
            guard byPath.source == .path, (try? byPath.object.size()) == 6144 else { exit(15) }
            // With map_files closed and no other way, access is denied and the error says why.
            do {
                _ = try handle.memoryObject(containing: file, rights: .read, sources: [.mapFiles])
                exit(16)
            } catch let error as ProcessMemoryError {
                guard error.code == .accessDenied, error.address == file, error.pid == pid else { exit(17) }
                guard error.message.contains("map_files") else { exit(18) }
            } catch { exit(19) }
            exit(0)
        }
    }
}
