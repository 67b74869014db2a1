import Foundation
import Glibc
import Testing
import ProcessMemoryCore
import ProcessMemoryDumps

/// Helpers for the dump tests: raw reads of /proc/PID/mem (independent of the library), checksums,
/// the PT_LOADs of a core file, and scratch directories.
enum DumpSupport {
    /// FNV-1a 64 of `bytes`.
    static func checksum<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }

    /// `count` bytes at `address`, read with a plain pread(2) of /proc/PID/mem; nil if short.
    static func rawRead(pid: Int32, _ address: UInt64, _ count: Int) -> [UInt8]? {
        let fd = open("/proc/\(pid)/mem", O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(Int64(bitPattern: address + UInt64(done)))) }
            if n <= 0 { return nil }
            done += n
        }
        return bytes
    }

    /// `count` bytes of `path` at `offset`.
    static func fileBytes(_ path: String, at offset: UInt64, count: Int) throws -> [UInt8] {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        return [UInt8](try handle.read(upToCount: count) ?? Data())
    }

    /// One PT_LOAD of a core file.
    struct Load {
        var offset: UInt64
        var address: UInt64
        var fileSize: UInt64
        var memorySize: UInt64
        var flags: UInt32
    }

    /// The PT_LOADs and the PT_NOTE count of an ELF64 core file.
    static func loads(ofCore path: String) throws -> (loads: [Load], notes: Int, type: UInt16) {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped))
        func u16(_ at: Int) -> UInt16 { UInt16(data[at]) | UInt16(data[at + 1]) << 8 }
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(data[at + $1]) << (8 * UInt32($1)) } }
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(data[at + $1]) << (8 * UInt64($1)) } }
        #expect(Array(data[0..<4]) == [0x7f, 0x45, 0x4c, 0x46])
        let phoff = Int(u64(32))
        var count = Int(u16(56))
        if count == 0xffff { count = Int(u32(Int(u64(40)) + 44)) }
        var loads: [Load] = []
        var notes = 0
        for index in 0..<count {
            let at = phoff + index * 56
            switch u32(at) {
            case 1: loads.append(Load(offset: u64(at + 8), address: u64(at + 16), fileSize: u64(at + 32),
                                      memorySize: u64(at + 40), flags: u32(at + 4)))
            case 4: notes += 1
            default: break
            }
        }
        return (loads, notes, u16(16))
    }

    /// A fresh scratch path under the temporary directory.
    static func scratch(_ name: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-dump-\(name)-\(UUID().uuidString)").path
        return path
    }

    static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
        try? FileManager.default.removeItem(atPath: path + ".json")
    }

    /// Field 3 of /proc/PID/stat (R, S, T, t, Z, …).
    static func state(_ pid: Int32) -> Character? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(close, offsetBy: 2)]
    }

    /// Whether every thread of `pid` is running or sleeping (not stopped or traced-stopped).
    static func isRunning(_ pid: Int32) -> Bool {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return !tasks.isEmpty && tasks.allSatisfy { tid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return true }
            let state = stat[stat.index(close, offsetBy: 2)]
            return state != "T" && state != "t"
        }
    }

    /// The ranges the index lists as failed, and whether `range` lies inside one of them.
    static func isListedAsFailed(_ index: DumpIndex, _ range: Range<UInt64>) -> Bool {
        index.failedRanges.contains { $0.start <= range.lowerBound && range.upperBound <= $0.end }
    }

    /// Whether any readable segment of the index overlaps `range`.
    static func hasData(_ index: DumpIndex, _ range: Range<UInt64>) -> Bool {
        index.regions.flatMap(\.segments).contains { $0.start < range.upperBound && range.lowerBound < $0.end }
    }
}
