import Foundation
import Glibc
import SystemPackage
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore

@Suite("Reads") struct ReadTests {
    @Test("Exact reads return the pattern", arguments: ReadMode.allCases)
    func exactPattern(mode: ReadMode) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        let bytes = try handle.readExactly(from: pattern.address, count: Int(pattern.size), mode: mode)
        #expect(bytes == (0..<Int(pattern.size)).map(patternByte))
        // Unaligned, crossing page boundaries.
        let slice = try handle.readExactly(from: pattern.address + 4095, count: 4099, mode: mode)
        #expect(slice == (4095..<8194).map(patternByte))
    }

    @Test("A read across a hole returns exactly the bytes before it", arguments: ReadMode.allCases)
    func partialAcrossHole(mode: ReadMode) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let hole = try fixture.layout.region("hole")
        let holeOffset = Int(try #require(hole.holeOffset))
        let bytes = try handle.read(from: hole.address, count: Int(hole.size), mode: mode)
        #expect(bytes == [UInt8](repeating: 0x10, count: holeOffset))
        for start in [1, 100, holeOffset - 1] {
            let part = try handle.read(from: hole.address + UInt64(start), count: Int(hole.size), mode: mode)
            #expect(part.count == holeOffset - start)
        }
        let transfer = try [UInt8](repeating: 0, count: Int(hole.size)).withUnsafeBufferPointer { _ in
            var buffer = [UInt8](repeating: 0, count: Int(hole.size))
            return try buffer.withUnsafeMutableBytes { try handle.readTransfer(from: hole.address, into: $0, mode: mode) }
        }
        #expect(transfer.bytesTransferred == holeOffset)
        let stop = try #require(transfer.stop)
        #expect(stop.code == .notFound)
        #expect(stop.address == hole.address + UInt64(holeOffset))
    }

    @Test("An exact read across a hole fails at the hole, counting the readable bytes", arguments: ReadMode.allCases)
    func exactAcrossHole(mode: ReadMode) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let hole = try fixture.layout.region("hole")
        let holeOffset = try #require(hole.holeOffset)
        let error = try #require(throws: ProcessMemoryError.self) {
            try handle.readExactly(from: hole.address + 10, count: Int(hole.size) - 10, mode: mode)
        }
        #expect(error.code == .notFound)
        #expect(error.address == hole.address + holeOffset)
        #expect(error.bytesTransferred == Int(holeOffset) - 10)
        #expect(error.pid == fixture.pid)
        #expect(error.systemCall != nil)
    }

    @Test("A read that starts in a hole throws notFound", arguments: ReadMode.allCases)
    func startsInHole(mode: ReadMode) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let hole = try fixture.layout.region("hole")
        let start = hole.address + (try #require(hole.holeOffset)) + 8
        let error = try #require(throws: ProcessMemoryError.self) { try handle.read(from: start, count: 16, mode: mode) }
        #expect(error.code == .notFound)
        #expect(error.bytesTransferred == 0)
        #expect(error.address == start)
    }

    @Test func protNoneDependsOnTheMode() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let region = try fixture.layout.region("protNone")
        let offset = Int(try #require(region.protNoneOffset))
        // A debugger sees the PROT_NONE page's contents.
        let seen = try handle.readExactly(from: region.address, count: Int(region.size), mode: .debugger)
        #expect(seen == [UInt8](repeating: 0x15, count: offset) + [UInt8](repeating: 0x16, count: Int(region.size) - offset))
        // Respecting protections stops exactly at it, with a protection failure.
        let partial = try handle.read(from: region.address, count: Int(region.size), mode: .respectingProtections)
        #expect(partial.count == offset)
        let error = try #require(throws: ProcessMemoryError.self) {
            try handle.read(from: region.address + UInt64(offset), count: 8, mode: .respectingProtections)
        }
        #expect(error.code == .protectionFailure)
        #expect(error.systemCall?.name == .processVMReadv)
        #expect(error.errno == .badAddress)
    }

    @Test("Read-only pages and the vDSO are readable", arguments: ReadMode.allCases)
    func readOnlyAndVDSO(mode: ReadMode) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let readOnly = try fixture.layout.region("readOnly")
        #expect(try handle.readExactly(from: readOnly.address, count: 4096, mode: mode) == [UInt8](repeating: 0x18, count: 4096))
        let vdso = try #require(try handle.memoryMap().first { $0.kind == .vdso })
        let elf = try handle.readExactly(from: vdso.start, count: 4, mode: mode)
        #expect(elf == [0x7f, 0x45, 0x4c, 0x46])
    }

    @Test("Pages past the end of a file or memfd are out of range", arguments: ["truncatedFile", "memfd"], ReadMode.allCases)
    func pastEndOfFile(regionName: String, mode: ReadMode) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let region = try fixture.layout.region(regionName)
        let fileSize = Int(try #require(region.fileSize))
        // The page holding EOF is readable; bytes after EOF read as zero.
        let eofPage = try handle.readExactly(from: region.address + 4096, count: 4096, mode: mode)
        let fill: UInt8 = regionName == "memfd" ? 0xC1 : 0xB1
        #expect(eofPage == [UInt8](repeating: fill, count: fileSize - 4096) + [UInt8](repeating: 0, count: 8192 - fileSize))
        let whole = try handle.read(from: region.address, count: Int(region.size), mode: mode)
        #expect(whole.count == 8192)
        let error = try #require(throws: ProcessMemoryError.self) {
            try handle.readExactly(from: region.address, count: Int(region.size), mode: mode)
        }
        #expect(error.code == .outOfRange)
        #expect(error.address == region.address + 8192)
        #expect(error.bytesTransferred == 8192)
    }

    @Test("Guard pages, [vvar] and secret memory are protection failures", arguments: ReadMode.allCases)
    func unreadableKernelAreas(mode: ReadMode) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        if let guardRegion = fixture.layout.regions["guard"], let offset = guardRegion.guardOffset {
            let partial = try handle.read(from: guardRegion.address, count: Int(guardRegion.size), mode: mode)
            #expect(partial == [UInt8](repeating: 0x1A, count: Int(offset)))
            let error = try #require(throws: ProcessMemoryError.self) {
                try handle.read(from: guardRegion.address + offset, count: 8, mode: mode)
            }
            #expect(error.code == .protectionFailure)
            #expect(error.message.contains("guard"))
        }
        if let secret = fixture.layout.regions["secret"] {
            let error = try #require(throws: ProcessMemoryError.self) { try handle.read(from: secret.address, count: 8, mode: mode) }
            #expect(error.code == .protectionFailure)
        }
        let vvar = try #require(try handle.memoryMap().first { $0.kind == .vvar })
        let error = try #require(throws: ProcessMemoryError.self) { try handle.read(from: vvar.start, count: 8, mode: mode) }
        #expect(error.code == .protectionFailure)
    }

    @Test func typedValues() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let layout = fixture.layout
        #expect(try handle.read(UInt8.self, from: layout.value("u8")) == 0xAB)
        #expect(try handle.read(UInt16.self, from: layout.value("u16")) == 0xBEEF)
        #expect(try handle.read(UInt32.self, from: layout.value("u32")) == 0xDEADBEEF)
        #expect(try handle.read(UInt64.self, from: layout.value("u64")) == 0x0123456789ABCDEF)
        #expect(try handle.read(Int8.self, from: layout.value("i8")) == -5)
        #expect(try handle.read(Int16.self, from: layout.value("i16")) == -1234)
        #expect(try handle.read(Int32.self, from: layout.value("i32")) == -123456789)
        #expect(try handle.read(Int64.self, from: layout.value("i64")) == -1234567890123)
        #expect(try handle.read(Float.self, from: layout.value("f32")) == 3.25)
        #expect(try handle.read(Double.self, from: layout.value("f64")) == -2.5e10)
        struct Pair { var a: UInt32; var b: UInt32; var c: UInt64 }
        let pair = try handle.read(Pair.self, from: layout.value("struct"))
        #expect(pair.a == 7 && pair.b == 9 && pair.c == 0x1122334455667788)
        #expect(try handle.read(UInt64.self, from: layout.stack.address) == 0xFEEDFACECAFEBEEF)
    }

    @Test func cStrings() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let address = try fixture.layout.value("cstring")
        #expect(try handle.readCString(from: address) == "procmem fixture says hello")
        #expect(try handle.readCString(from: address, maxLength: 7) == "procmem")
        // A string that runs into a hole without a terminator fails, counting what was read.
        let hole = try fixture.layout.region("hole")
        let error = try #require(throws: ProcessMemoryError.self) {
            try handle.readCString(from: hole.address + (try #require(hole.holeOffset)) - 10, maxLength: 100)
        }
        #expect(error.code == .notFound)
        #expect(error.bytesTransferred == 10)
    }

    @Test func invalidArguments() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        let pattern = try fixture.layout.region("pattern")
        func expectInvalid(_ body: () throws -> Void) {
            #expect { try body() } throws: { ($0 as? ProcessMemoryError)?.code == .invalidArguments }
        }
        expectInvalid { _ = try handle.read(from: pattern.address, count: 0) }
        expectInvalid { _ = try handle.read(from: pattern.address, into: UnsafeMutableRawBufferPointer(start: nil, count: 0)) }
        var buffer = [UInt8](repeating: 0, count: 64)
        expectInvalid { _ = try buffer.withUnsafeMutableBytes { try handle.read(from: UInt64.max - 10, into: $0) } }
        expectInvalid { _ = try handle.read(from: 1 << 47, count: 8) }
        expectInvalid { _ = try handle.read(from: 0xffff_8000_0000_0000, count: 8) }
        expectInvalid { _ = try handle.readCString(from: pattern.address, maxLength: 0) }
    }

    @Test("Reads above the kernel's 2 GiB per-call limit are split and exact")
    func hugeRead() throws {
        let fixture = try Fixture()
        let size = (2 << 30) + (1 << 20)
        let reply = try fixture.ok("map \(size)")
        let address = UInt64(try #require(reply["address"] as? Int))
        let handle = try ProcessHandle(pid: fixture.pid)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size + 4096, alignment: 4096)
        defer { buffer.deallocate() }
        for mode in ReadMode.allCases {
            memset(try #require(buffer.baseAddress), 0, buffer.count)
            // The mapping is followed by an unmapped gap: one ideal call would stop exactly at its end.
            let got = try handle.read(from: address, into: buffer, mode: mode)
            #expect(got == size)
            #expect(buffer[0] == 0x33 && buffer[size / 2] == 0x33 && buffer[size - 1] == 0x33)
            #expect(buffer[size] == 0)
        }
    }
}

@Suite("Reads when this process is short of memory") struct LowMemoryReadTests {
    /// Regression: an array read larger than the address space left trapped in the allocation.
    @Test("A result array that cannot be allocated is noMemory, not a crash")
    func arrayReadUnderAddressSpaceLimit() async {
        await #expect(processExitsWith: .success) {
            guard let fixture = try? Fixture(), let reply = try? fixture.command("map 67108864"),
                  let address = (reply["address"] as? Int).map(UInt64.init),
                  let handle = try? ProcessHandle(pid: fixture.pid) else { exit(2) }
            guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
                  let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmSize:") }),
                  let kilobytes = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap({ Int($0) })
            else { exit(3) }
            var limit = rlimit(rlim_cur: rlim_t(kilobytes * 1024 + (96 << 20)), rlim_max: rlim_t.max)
            guard setrlimit(Int32(RLIMIT_AS.rawValue), &limit) == 0 else { exit(4) }
            do {
                _ = try handle.read(from: address, count: 1 << 30)
                exit(5)
            } catch let error as ProcessMemoryError {
                exit(error.code == .noMemory ? 0 : 6)
            } catch {
                exit(7)
            }
        }
    }
}
