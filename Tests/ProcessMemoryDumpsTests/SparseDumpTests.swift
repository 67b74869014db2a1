import Foundation
import Glibc
import Testing
import ProcessMemoryCore
import ProcessMemoryDumps

/// Sparse cores and dumps: a python3 process maps 1 GiB with MAP_NORESERVE and touches 16 pages.
/// The never-populated pages are not read, are holes in the output (a few MiB on disk, not a GiB),
/// read back as zeros, and the index lists them; the touched pages hold their values.
@Suite("Sparse dumps", .serialized)
struct SparseDumpTests {
    /// A python3 process holding a 1 GiB MAP_NORESERVE mapping with byte 0x5E + i at i × 64 MiB.
    final class SparseHolder {
        let process = Process()
        let address: UInt64

        init() throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", """
                import ctypes, mmap, time
                NORESERVE = 0x4000  # MAP_NORESERVE on Linux; this python's mmap module lacks the name
                m = mmap.mmap(-1, 1 << 30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | NORESERVE)
                for i in range(16):
                    m[i * (64 << 20)] = 0x5E + i
                address = ctypes.addressof(ctypes.c_char.from_buffer(m))
                print(hex(address), flush=True)
                time.sleep(600)
                """]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
            address = try #require(UInt64(line.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst(2), radix: 16))
        }

        deinit {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    static func diskBytes(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_blocks) * 512 : -1
    }

    @Test("a core of a sparse process leaves never-populated pages as holes that read as zeros")
    func sparseCore() throws {
        let holder = try SparseHolder()
        let handle = try ProcessHandle(pid: holder.process.processIdentifier)
        defer { handle.close() }
        let core = DumpSupport.scratch("sparse-core")
        defer { DumpSupport.remove(core) }
        let index = try handle.dumpCore(to: core)
        let region = try #require(index.regions.first { $0.start <= holder.address && holder.address < $0.end })
        let holes = try #require(region.neverPopulated, "the index lists the never-populated ranges")
        let holeBytes = holes.reduce(UInt64(0)) { $0 + ($1.end - $1.start) }
        #expect(holeBytes >= (1 << 30) - (16 << 12) - (1 << 20), "all but the touched pages are holes: \(holeBytes)")
        #expect(Self.diskBytes(core) < 64 << 20, "the core takes \(Self.diskBytes(core)) bytes on disk")
        let loads = try DumpSupport.loads(ofCore: core).loads
        for page in 0..<16 {
            let address = holder.address + UInt64(page) * (64 << 20)
            let load = try #require(loads.first { $0.address <= address && address < $0.address + $0.fileSize })
            let bytes = try DumpSupport.fileBytes(core, at: load.offset + (address - load.address), count: 2)
            #expect(bytes == [UInt8(0x5E + page), 0], "the touched byte of page \(page), then a zero")
            // Halfway to the next touched page: a hole in the file, read back as zero.
            let hole = address + (32 << 20)
            let holeLoad = try #require(loads.first { $0.address <= hole && hole < $0.address + $0.fileSize })
            #expect(try DumpSupport.fileBytes(core, at: holeLoad.offset + (hole - holeLoad.address), count: 8) == [UInt8](repeating: 0, count: 8))
        }
    }

    @Test("a directory dump's region file has the mapping's size, holes inside, and the touched bytes")
    func sparseDirectory() throws {
        let holder = try SparseHolder()
        let handle = try ProcessHandle(pid: holder.process.processIdentifier)
        defer { handle.close() }
        let directory = DumpSupport.scratch("sparse-dir")
        defer { DumpSupport.remove(directory) }
        let index = try handle.dump(toDirectory: directory)
        let region = try #require(index.regions.first { $0.start <= holder.address && holder.address < $0.end })
        let segment = try #require(region.segments.first { $0.start <= holder.address && holder.address < $0.end })
        let file = directory + "/" + (try #require(segment.file))
        var info = stat()
        #expect(stat(file, &info) == 0)
        #expect(UInt64(info.st_size) == segment.end - segment.start, "trailing holes still belong to the file")
        #expect(Self.diskBytes(file) < 16 << 20)
        let last = holder.address + 15 * (64 << 20)
        #expect(try DumpSupport.fileBytes(file, at: last - segment.start + segment.fileOffset, count: 1) == [0x5E + 15])
    }

    @Test("with sparse off, every byte is written")
    func denseWhenAsked() throws {
        let holder = try SparseHolder()
        let handle = try ProcessHandle(pid: holder.process.processIdentifier)
        defer { handle.close() }
        let core = DumpSupport.scratch("dense-core")
        defer { DumpSupport.remove(core) }
        var options = DumpOptions()
        options.sparse = false
        let index = try handle.dumpCore(to: core, options: options)
        #expect(index.regions.allSatisfy { $0.neverPopulated == nil })
        #expect(Self.diskBytes(core) > 1 << 30)
    }
}
