import Foundation
import Glibc
import ProcessMemoryTestSupport
import ProcessMemoryTestTraits
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryScanning

/// Parsers and the match-file reader: bad input gives clear errors, never a trap.
@Suite("Scan input")
struct ScanInputTests {
    @Test("values: ranges, signs, hex, floats, tolerance")
    func values() throws {
        #expect(try ScanValue("255", as: .u8).integerBytes(width: 1) == [0xFF])
        #expect(try ScanValue("-1", as: .i16).integerBytes(width: 2) == [0xFF, 0xFF])
        #expect(try ScanValue("0x1234", as: .u16, byteOrder: .big).integerBytes(width: 2) == [0x12, 0x34])
        #expect(try ScanValue("1_000", as: .u32).number == .integer(1000))
        #expect(try ScanValue("300", as: .anyInt).widths == [2, 4, 8])
        #expect(try ScanValue("-5", as: .anyInt).widths == [1, 2, 4, 8])
        #expect(try ScanValue("3.25", as: .f32).tolerance == 0.005)
        #expect(try ScanValue("7", as: .f64).tolerance == 0.5)
        #expect(try ScanValue("1e3", as: .f64).tolerance == 0)
        for (text, type) in [("256", ScanValueType.u8), ("-1", .u32), ("abc", .i32), ("", .u8), ("nan", .f32),
                             ("1e39", .f32), ("99999999999999999999", .u64), ("--5", .i8), ("0x", .u16)] {
            #expect(throws: ProcessMemoryError.self, "\(text) as \(type)") { try ScanValue(text, as: type) }
        }
        #expect { try ScanValue("1", as: .u32, tolerance: 0.1) } throws: { error in
            (error as? ProcessMemoryError)?.message.contains("f32 and f64") ?? false
        }
    }

    @Test("patterns: wildcards, nibbles, errors")
    func patterns() throws {
        let pattern = try BytePattern(hex: "48 8b ?? 4? ?5")
        #expect(pattern.mask == [0xFF, 0xFF, 0x00, 0xF0, 0x0F])
        #expect(pattern.bytes == [0x48, 0x8B, 0x00, 0x40, 0x05])
        #expect(try BytePattern(hex: "488b??05").count == 4)
        for text in ["", "?? ??", "4", "zz", "48 8", "4g"] {
            #expect(throws: ProcessMemoryError.self, "'\(text)'") { try BytePattern(hex: text) }
        }
        let bytes: [UInt8] = [0x00, 0x48, 0x8B, 0x11, 0x42, 0x35, 0x48, 0x8B]
        var hits: [Int] = []
        bytes.withUnsafeBytes { raw in
            pattern.forEachMatch(in: raw, starts: raw.count - pattern.count + 1, address: 0, alignment: 1) { hits.append($0); return true }
        }
        #expect(hits == [1])
        let folded = BytePattern(string: "Ab", utf16: true, ignoreCase: true)
        #expect(folded.bytes == [0x61, 0, 0x62, 0])
    }

    func sampleSet() -> MatchSet {
        var set = MatchSet(pid: 4242, processStartTime: 777, content: .values(.u32, .little))
        let region = MatchSet.Region(start: 0x1000, end: 0x3000, permissions: [.read, .write], path: "[heap]")
        let other = MatchSet.Region(start: 0x10000, end: 0x11000, permissions: [.read], path: nil)
        set.append(address: 0x1004, width: 4, bits: 7, region: region)
        set.append(address: 0x2ffc, width: 4, bits: 0xFFFF_FFFF, region: region)
        set.append(address: 0x10000, width: 4, bits: 1, region: other)
        return set
    }

    @Test("match files round-trip and reject corrupt, truncated and foreign input")
    func matchFiles() throws {
        let set = sampleSet()
        let bytes = MatchFileFormat.encode(set)
        #expect(try MatchFileFormat.decode(bytes).get() == set)
        func message(_ data: [UInt8]) -> String? {
            if case .failure(let failure) = MatchFileFormat.decode(data) { return failure.message }
            return nil
        }
        #expect(message([])?.contains("bad magic") == true)
        #expect(message(Array(bytes.prefix(20)))?.contains("truncated") == true)
        #expect(message(Array(bytes.dropLast(3)))?.contains("checksum") == true)
        var flipped = bytes
        flipped[flipped.count - 12] ^= 0x40
        #expect(message(flipped)?.contains("checksum") == true)
        var header = bytes
        header[20] ^= 1
        #expect(message(header)?.contains("header checksum") == true)
        var version = bytes
        version[8] = 9
        #expect(message(version)?.contains("version") == true)
        // Every prefix and every single-byte change is rejected or decodes, never traps.
        for length in 0..<bytes.count { _ = MatchFileFormat.decode(Array(bytes.prefix(length))) }
        for index in bytes.indices {
            var changed = bytes
            changed[index] &+= 1
            if case .success = MatchFileFormat.decode(changed) { Issue.record("a changed byte at \(index) was accepted") }
        }

        // Through the file API: a file from another process is refused when rescanned.
        let path = NSTemporaryDirectory() + "set-\(UUID().uuidString).pmm"
        defer { unlink(path) }
        try set.save(to: path)
        #expect(try MatchSet(contentsOf: path) == set)
        let handle = try ProcessHandle(pid: getpid())
        defer { handle.close() }
        var foreign = set
        foreign.pid = getpid()
        #expect { try Scanner(handle: handle).rescan(foreign, where: .changed) } throws: { error in
            (error as? ProcessMemoryError)?.message.contains("earlier process") ?? false
        }
        #expect { try Scanner(handle: handle).rescan(set, where: .changed) } throws: { error in
            (error as? ProcessMemoryError)?.message.contains("belongs to pid 4242") ?? false
        }
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        #expect { try MatchSet(contentsOf: path) } throws: { error in
            (error as? ProcessMemoryError)?.code == .invalidArguments && String(describing: error).contains("bad magic")
        }
        #expect(throws: ProcessMemoryError.self) { try MatchSet(contentsOf: "/nonexistent/file") }
    }

    @Test("match files of strings and patterns keep the pattern, the digests and the partial mark")
    func byteMatchFiles() throws {
        let region = MatchSet.Region(start: 0x1000, end: 0x3000, permissions: [.read, .write], path: nil)
        for pattern in [BytePattern(string: "Grüße, Welt", utf16: true, ignoreCase: true), try BytePattern(hex: "48 8b ?? 4?")] {
            var set = MatchSet(pid: 7, processStartTime: 9, content: .bytes(length: pattern.count))
            set.pattern = pattern
            set.isPartial = true
            set.append(address: 0x1010, width: min(pattern.count, 8), bits: 0x4142, region: region, digest: 0xDEAD_BEEF)
            set.append(address: 0x2000, width: min(pattern.count, 8), bits: 0x4344, region: region, digest: 17)
            let bytes = MatchFileFormat.encode(set)
            let decoded = try MatchFileFormat.decode(bytes).get()
            #expect(decoded == set)
            #expect(decoded.pattern == pattern)
            #expect(decoded.isPartial)
            #expect(decoded[0].digest == 0xDEAD_BEEF)
            for length in 0..<bytes.count { _ = MatchFileFormat.decode(Array(bytes.prefix(length))) }
        }
        var version1 = MatchFileFormat.encode(sampleSet())
        version1[8] = 1
        if case .failure(let failure) = MatchFileFormat.decode(version1) {
            #expect(failure.message.contains("version 1 is not supported"))
        } else {
            Issue.record("a version 1 file was accepted")
        }
    }

    @Test("snapshot headers: any-int and unaligned round-trip; version 1, bad flags and corruption are refused")
    func snapshotHeaders() throws {
        let regions = [MatchSet.Region(start: 0x1000, end: 0x3000, permissions: [.read, .write], path: "[heap]")]
        let header = SnapshotFileFormat.Header(type: .anyInt, byteOrder: .big, unaligned: true, pid: 99,
                                               processStartTime: 5, pageSize: 4096, regions: regions)
        let bytes = SnapshotFileFormat.encode(header)
        let (decoded, length) = try SnapshotFileFormat.decodeHeader(bytes + [1, 2, 3]).get()
        #expect(decoded == header)
        #expect(length == bytes.count)
        func message(_ data: [UInt8]) -> String? {
            if case .failure(let failure) = SnapshotFileFormat.decodeHeader(data) { return failure.message }
            return nil
        }
        var version1 = bytes
        version1[8] = 1
        #expect(message(version1)?.contains("version 1 is not supported") == true)
        var flags = bytes
        flags[12] = 2
        #expect(message(flags)?.contains("flags") == true)
        var corrupt = bytes
        corrupt[30] ^= 1
        #expect(message(corrupt) != nil)
        for length in 0..<bytes.count { #expect(message(Array(bytes.prefix(length))) != nil) }
    }

    @Test("bounded memory: a 1 GiB region is scanned with under 64 MiB of growth",
          .disabled(if: Sanitizers.active != nil,
                    "a sanitizer's allocator (quarantine, shadow memory) grows the resident set on its own; the bound is for normal builds"))
    func boundedMemory() async throws {
        let fixture = try Fixture()
        let reply = try fixture.ok("map 1073741824")
        let base = UInt64(try #require(reply["address"] as? Int))
        try fixture.ok("write \(base + 123_456_788) 3412ed5e")
        try fixture.ok("write \(base + 1_073_741_820) 3412ed5e")
        let pid = fixture.pid
        await #expect(processExitsWith: .success) { [pid = pid as Int32, base = base as UInt64] in
            func peak() -> Int {
                guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
                      let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
                      let kib = Int(line.split(separator: " ").dropFirst().first ?? "") else { return Int.max }
                return kib * 1024
            }
            guard let handle = try? ProcessHandle(pid: pid), let value = try? ScanValue("0x5EED1234", as: .u32) else { exit(10) }
            var options = ScanOptions()
            options.regions.addressRange = base..<(base + (1 << 30))
            let before = peak()
            guard let result = try? Scanner(handle: handle, options: options).scan(.value(value)) else { exit(11) }
            let growth = peak() - before
            guard result.bytesScanned == 1 << 30 else { exit(12) }
            guard result.matches.matches.map(\.address) == [base + 123_456_788, base + 1_073_741_820] else { exit(13) }
            guard growth < 64 << 20 else { exit(14) }
            exit(0)
        }
    }
}
