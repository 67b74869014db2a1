import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore

@Suite("Writes") struct WriteTests {
    @Test("Writes land where asked and nowhere else", arguments: WriteMode.allCases)
    func writeAndReadBack(mode: WriteMode) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let address = try fixture.layout.value("u32")
        let before = try fixture.selfRead(address - 8, 24)
        try handle.write(UInt32(0x01020304), to: address, mode: mode)
        let after = try fixture.selfRead(address - 8, 24)
        #expect(after[8..<12] == [0x04, 0x03, 0x02, 0x01])
        #expect(after[0..<8] == before[0..<8])
        #expect(after[12...] == before[12...])
    }

    @Test func readOnlyPrivatePagesDependOnTheMode() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let readOnly = try fixture.layout.region("readOnly")
        let error = try #require(throws: ProcessMemoryError.self) {
            try handle.write([1, 2, 3, 4], to: readOnly.address, mode: .respectingProtections)
        }
        #expect(error.code == .protectionFailure)
        #expect(error.bytesTransferred == 0)
        #expect(try fixture.selfRead(readOnly.address, 4) == [0x18, 0x18, 0x18, 0x18])
        // A debugger may write there (copy-on-write), as it does to set a breakpoint.
        try handle.writeExactly([1, 2, 3, 4], to: readOnly.address)
        #expect(try fixture.selfRead(readOnly.address, 5) == [1, 2, 3, 4, 0x18])
        // PROT_NONE likewise.
        let protNone = try fixture.layout.region("protNone")
        let offset = try #require(protNone.protNoneOffset)
        try handle.writeExactly([9, 9], to: protNone.address + offset)
        #expect(try handle.readExactly(from: protNone.address + offset, count: 3) == [9, 9, 0x16])
    }

    @Test("Debugger writes into code change the process, never the file on disk")
    func codeWritesAreCopyOnWrite() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let code = fixture.layout.code.address
        let region = try #require(try handle.region(containing: code))
        #expect(region.permissions.contains(.execute))
        let path = try #require(region.path)
        let fileBefore = try Data(contentsOf: URL(fileURLWithPath: path))
        let original = try handle.readExactly(from: code, count: 4)
        #expect(original == Array(hexBytes(fixture.layout.code.bytes).prefix(4)))
        let patched = original.map { ~$0 }
        try handle.writeExactly(patched, to: code)
        #expect(try handle.readExactly(from: code, count: 4) == patched)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == fileBefore)
        try handle.writeExactly(original, to: code)
        #expect(try handle.readExactly(from: code, count: 4) == original)
    }

    @Test("[vdso], [vvar], [vsyscall] and secret memory are refused before any byte is written")
    func protectedAreasAreRefused() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let map = try handle.memoryMap()
        let vdso = try #require(map.first { $0.kind == .vdso })
        let before = try handle.readExactly(from: vdso.start, count: 64)
        for mode in WriteMode.allCases {
            let error = try #require(throws: ProcessMemoryError.self) { try handle.write(before, to: vdso.start, mode: mode) }
            #expect(error.code == .accessDenied)
            #expect(error.accessDenial == .protectedMemory("[vdso]"))
        }
        #expect(try handle.readExactly(from: vdso.start, count: 64) == before)
        let vvar = try #require(map.first { $0.kind == .vvar })
        #expect { try handle.write([0], to: vvar.start) } throws: { ($0 as? ProcessMemoryError)?.code == .accessDenied }
        #expect { try handle.write([0], to: 0xffff_ffff_ff60_0000) } throws: { ($0 as? ProcessMemoryError)?.code == .accessDenied }
        if let secret = fixture.layout.regions["secret"] {
            #expect { try handle.write([0], to: secret.address) } throws: { ($0 as? ProcessMemoryError)?.code == .accessDenied }
        }
    }

    @Test func sharedReadOnlyMappingIsAccessDenied() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let shared = try fixture.layout.region("readOnlySharedFile")
        let before = try handle.readExactly(from: shared.address, count: 8)
        let error = try #require(throws: ProcessMemoryError.self) { try handle.write([1, 2], to: shared.address) }
        #expect(error.code == .accessDenied)
        #expect(try handle.readExactly(from: shared.address, count: 8) == before)
    }

    @Test("A write across a hole stops exactly at it; nothing after it changes", arguments: WriteMode.allCases)
    func partialWriteAcrossHole(mode: WriteMode) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let hole = try fixture.layout.region("hole")
        let holeOffset = Int(try #require(hole.holeOffset))
        let payload = [UInt8](repeating: 0xEE, count: Int(hole.size) - 100)
        let transfer = try payload.withUnsafeBytes { try handle.writeTransfer($0, to: hole.address + 100, mode: mode) }
        #expect(transfer.bytesTransferred == holeOffset - 100)
        #expect(transfer.stop?.code == .notFound)
        #expect(transfer.stop?.address == hole.address + UInt64(holeOffset))
        #expect(try fixture.selfRead(hole.address + 98, 4) == [0x10, 0x10, 0xEE, 0xEE])
        let tail = try fixture.selfRead(hole.address + UInt64(holeOffset) * 2, 4096)
        #expect(tail == [UInt8](repeating: 0x12, count: 4096))
        // Starting in the hole: nothing mapped.
        let error = try #require(throws: ProcessMemoryError.self) {
            try handle.write([1], to: hole.address + UInt64(holeOffset), mode: mode)
        }
        #expect(error.code == .notFound)
    }

    @Test("An exact write that cannot complete writes nothing", arguments: WriteMode.allCases)
    func exactWriteIsAllOrNothing(mode: WriteMode) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let hole = try fixture.layout.region("hole")
        let holeOffset = try #require(hole.holeOffset)
        let error = try #require(throws: ProcessMemoryError.self) {
            try handle.writeExactly([UInt8](repeating: 0xEE, count: 200), to: hole.address + holeOffset - 100, mode: mode)
        }
        #expect(error.code == .notFound)
        #expect(error.bytesTransferred == 0)
        #expect(error.address == hole.address + holeOffset)
        #expect(try fixture.selfRead(hole.address + holeOffset - 100, 100) == [UInt8](repeating: 0x10, count: 100))
    }

    @Test("Writes past the end of a shared file are out of range; inside the EOF page they land")
    func pastEndOfSharedFile() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let file = try fixture.layout.region("truncatedFile")
        let error = try #require(throws: ProcessMemoryError.self) { try handle.write([1], to: file.address + 8192) }
        #expect(error.code == .outOfRange)
        try handle.writeExactly([7, 7], to: file.address + 7000)
        #expect(try fixture.selfRead(file.address + 7000, 2) == [7, 7])
        let transfer = try [UInt8](repeating: 5, count: 8192).withUnsafeBytes { try handle.writeTransfer($0, to: file.address + 4096) }
        #expect(transfer.bytesTransferred == 4096)
        #expect(transfer.stop?.code == .outOfRange)
        // The file on disk keeps its size: bytes after EOF are never persisted.
        let path = try #require(file.path)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.size] as? NSNumber)?.intValue == 6144)
    }

    @Test func invalidArguments() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
        let address = try fixture.layout.value("u32")
        func expectInvalid(_ body: () throws -> Void) {
            #expect { try body() } throws: { ($0 as? ProcessMemoryError)?.code == .invalidArguments }
        }
        expectInvalid { try handle.write([], to: address) }
        expectInvalid { _ = try handle.write(UnsafeRawBufferPointer(start: nil, count: 0), to: address) }
        expectInvalid { try handle.write([1, 2, 3], to: UInt64.max - 1) }
        expectInvalid { try handle.write([1], to: 1 << 47) }
    }
}
