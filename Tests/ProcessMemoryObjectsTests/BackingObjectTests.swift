import Foundation
import Glibc
import SystemPackage
import ProcessMemoryTestSupport
import ProcessMemoryTestTraits
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryObjects

/// The fixture's memfd and truncated file: 4 pages mapped, page k filled with `first + k`, then
/// truncated to 6144 bytes.
private func truncatedContents(first: UInt8) -> [UInt8] {
    [UInt8](repeating: first, count: 4096) + [UInt8](repeating: first + 1, count: 2048)
}

@Suite("Objects behind mappings") struct BackingObjectTests {
    @Test("The fixture's memfd region, through each source", arguments: [
        [BackingObject.Source.mapFiles], [.targetDescriptor], BackingObject.Source.allCases,
    ])
    func memfdRegion(sources: [BackingObject.Source]) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let memfd = try fixture.layout.region("memfd")
        let fileSize = try #require(memfd.fileSize)
        let backing = try handle.memoryObject(containing: memfd.address + 5000, rights: .read, sources: sources)
        #expect(backing.source == sources[0])
        #expect(backing.offset == 5000)
        #expect(backing.region.start == memfd.address)
        #expect(backing.region.end == memfd.address + memfd.size)
        let object = backing.object
        #expect(object.kind == .memfd)
        #expect(object.name == "procmem-fixture")
        #expect(object.rights == .read)
        #expect(object.inode == backing.region.inode)
        #expect(try object.size() == fileSize)
        // Created without MFD_ALLOW_SEALING: sealed against seals.
        #expect(try object.seals() == .seal)
        #expect(try object.read(count: Int(fileSize), at: 0) == truncatedContents(first: 0xC0))
        // The last byte, and the range ending exactly at the size.
        #expect(try object.read(count: 1, at: fileSize - 1) == [0xC1])
        #expect(try object.read(count: 100, at: fileSize - 100) == [UInt8](repeating: 0xC1, count: 100))
        // Past the end: inside the mapping's EOF page, in the whole pages after it, and straddling.
        for (offset, count) in [(fileSize, 1), (fileSize - 1, 2), (6000, 200), (8192, 1), (memfd.size - 1, 1)] {
            let error = try #require(throws: ProcessMemoryError.self) { try object.read(count: Int(count), at: offset) }
            #expect(error.code == .outOfRange)
            #expect(error.address == offset)
            #expect(error.bytesTransferred == 0)
        }
        // A read-only object refuses writes.
        let write = try #require(throws: ProcessMemoryError.self) { try object.write([1], at: 0) }
        #expect(write.code == .accessDenied)
    }

    @Test("Reading the object does not touch the target's pages")
    func untouchedPages() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let memfd = try fixture.layout.region("memfd")
        func rss() throws -> UInt64? {
            try handle.regionDetails().first { $0.region.start == memfd.address }?.rss
        }
        // The fixture filled the memfd with write(2) and never touched its mapping.
        try #require(try rss() == 0, "the fixture touched its memfd mapping")
        let object = try handle.memoryObject(containing: memfd.address).object
        #expect(try object.read(count: 6144, at: 0) == truncatedContents(first: 0xC0))
        #expect(try rss() == 0)
    }

    @Test("The object behind a PROT_NONE mapping is still readable", arguments: [
        [BackingObject.Source.mapFiles], [.targetDescriptor],
    ])
    func protNoneRegion(sources: [BackingObject.Source]) throws {
        let fixture = try Fixture()
        let memfd = try fixture.layout.region("memfd")
        try fixture.ok("protect \(memfd.address) \(memfd.size) ---")
        let handle = try ProcessHandle(pid: fixture.pid)
        let region = try #require(try handle.region(containing: memfd.address))
        try #require(region.permissions == [])
        // A protection-respecting process read cannot see it.
        #expect(throws: ProcessMemoryError.self) { try handle.read(from: memfd.address, count: 16, mode: .respectingProtections) }
        let backing = try handle.memoryObject(containing: memfd.address + 4096, rights: .read, sources: sources)
        #expect(backing.offset == 4096)
        #expect(try backing.object.read(count: 2048, at: 4096) == [UInt8](repeating: 0xC1, count: 2048))
        #expect(try backing.object.read(count: 6144, at: 0) == truncatedContents(first: 0xC0))
        let error = try #require(throws: ProcessMemoryError.self) { try backing.object.read(count: 1, at: 6144) }
        #expect(error.code == .outOfRange)
    }

    @Test("The fixture's truncated file, through map_files and through its path", arguments: [
        [BackingObject.Source.mapFiles], [.path],
    ])
    func truncatedFile(sources: [BackingObject.Source]) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let file = try fixture.layout.region("truncatedFile")
        let path = try #require(file.path)
        let backing = try handle.memoryObject(containing: file.address + file.size - 1, rights: .read, sources: sources)
        #expect(backing.source == sources[0])
        #expect(backing.offset == file.size - 1)
        #expect(backing.object.kind == .file)
        #expect(backing.object.name == path)
        #expect(try backing.object.size() == 6144)
        #expect(try backing.object.read(count: 6144, at: 0) == truncatedContents(first: 0xB0))
        for (offset, count) in [(UInt64(6144), 1), (6143, 2), (8192, 4096), (backing.offset, 1)] {
            let error = try #require(throws: ProcessMemoryError.self) { try backing.object.read(count: count, at: offset) }
            #expect(error.code == .outOfRange)
            #expect(error.address == offset)
        }
    }

    @Test("A memfd cannot be reached through its path")
    func memfdHasNoPath() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let memfd = try fixture.layout.region("memfd")
        let error = try #require(throws: ProcessMemoryError.self) {
            try handle.memoryObject(containing: memfd.address, rights: .read, sources: [.path])
        }
        #expect(error.code == .notFound)
        #expect(error.address == memfd.address)
    }

    @Test func sharedAnonymousMemoryIsAnObject() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let shared = try fixture.layout.region("sharedAnon")
        let backing = try handle.memoryObject(containing: shared.address)
        #expect(backing.object.kind == .sharedMemory)
        #expect(try backing.object.size() == shared.size)
        #expect(try backing.object.read(count: Int(shared.size), at: 0) == [UInt8](repeating: 0x5A, count: Int(shared.size)))
    }

    @Test("Mappings without a backing object are the wrong type", arguments: ["pattern", "values", "heap", "protNone"])
    func noBackingObject(name: String) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let region = try fixture.layout.region(name)
        let error = try #require(throws: ProcessMemoryError.self) { try handle.memoryObject(containing: region.address) }
        #expect(error.code == .wrongType)
        #expect(error.pid == fixture.pid)
        #expect(error.address == region.address)
        #expect(error.message.contains("no backing object"))
        let stack = try #require(throws: ProcessMemoryError.self) { try handle.memoryObject(containing: fixture.layout.stack.address) }
        #expect(stack.code == .wrongType)
        #expect(stack.message.contains("stack"))
    }

    @Test func nothingMappedIsNotFound() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let hole = try fixture.layout.region("hole")
        let address = hole.address + (try #require(hole.holeOffset))
        let error = try #require(throws: ProcessMemoryError.self) { try handle.memoryObject(containing: address) }
        #expect(error.code == .notFound)
        #expect(error.address == address)
        let high = try #require(throws: ProcessMemoryError.self) { try handle.memoryObject(containing: 1 << 62) }
        #expect(high.code == .notFound)
    }

    @Test(.requiresSecretMemory)
    func secretMemoryIsAProtectionFailure() throws {
        let fixture = try Fixture()
        let secret = try fixture.layout.region("secret")
        let handle = try ProcessHandle(pid: fixture.pid)
        let error = try #require(throws: ProcessMemoryError.self) { try handle.memoryObject(containing: secret.address) }
        #expect(error.code == .protectionFailure)
    }

    @Test("Writing the object needs a handle with the write right, and changes the target's memory")
    func writableObject() throws {
        let fixture = try Fixture()
        let memfd = try fixture.layout.region("memfd")
        let reader = try ProcessHandle(pid: fixture.pid)
        let denied = try #require(throws: ProcessMemoryError.self) { try reader.memoryObject(containing: memfd.address, rights: .readWrite) }
        #expect(denied.code == .accessDenied)
        #expect(denied.accessDenial == .handleLacksRight)

        let writer = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        // Asking for read only gives a read-only object even on a writable handle.
        #expect(try writer.memoryObject(containing: memfd.address).object.rights == .read)
        for sources in [[BackingObject.Source.mapFiles], [.targetDescriptor]] {
            let object = try writer.memoryObject(containing: memfd.address, rights: .readWrite, sources: sources).object
            #expect(object.rights == .readWrite)
            try object.write([0x5E, 0xED], at: 100)
            #expect(try fixture.selfRead(memfd.address + 100, 2) == [0x5E, 0xED])
            // Exact: never grows the object, even inside the mapping's EOF page.
            let error = try #require(throws: ProcessMemoryError.self) { try object.write([1, 2], at: 6143) }
            #expect(error.code == .outOfRange)
            #expect(try object.size() == 6144)
            // The fixture's memfd was created without MFD_ALLOW_SEALING.
            let seal = try #require(throws: ProcessMemoryError.self) { try object.sealSize() }
            #expect(seal.code == .accessDenied)
            #expect(seal.message.contains("F_SEAL_SEAL"))
        }
    }

    @Test func forARegionOfTheMap() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let file = try fixture.layout.region("truncatedFile")
        let region = try #require(try handle.memoryMap().region(containing: file.address))
        let backing = try handle.memoryObject(for: region)
        #expect(backing.offset == region.offset)
        #expect(backing.region == region)
        #expect(try backing.object.read(count: 4, at: 4096) == [0xB1, 0xB1, 0xB1, 0xB1])
        var stale = region
        stale.end += 4096
        let error = try #require(throws: ProcessMemoryError.self) { try handle.memoryObject(for: stale) }
        #expect(error.code == .notFound)
    }

    @Test func anExitedTargetIsBadState() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let memfd = try fixture.layout.region("memfd")
        fixture.kill()
        fixture.waitForZombie()
        let error = try #require(throws: ProcessMemoryError.self) { try handle.memoryObject(containing: memfd.address) }
        #expect(error.code == .badState)
        fixture.reap()
    }

    @Test func theObjectOutlivesTheTargetAndTheHandle() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let memfd = try fixture.layout.region("memfd")
        let object = try handle.memoryObject(containing: memfd.address).object
        handle.close()
        fixture.stop()
        #expect(try object.read(count: 6144, at: 0) == truncatedContents(first: 0xC0))
        let closed = try #require(throws: ProcessMemoryError.self) { try handle.memoryObject(containing: memfd.address) }
        #expect(closed.code == .badHandle)
    }
}
