import Foundation
import Glibc
import ProcessMemoryTestTraits
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryScanning

/// 4-byte and big-endian pointers, in a real python3 process that maps a file (a "module": a
/// file-backed private writable mapping) and an anonymous "heap" below 4 GiB with ctypes and
/// stores 32-bit pointers there, as a 32-bit process would.
@Suite("Pointer formats")
struct PointerFormatTests {
    /// python3 holding the low mappings; stopped (SIGKILL, then reaped) by `stop()`.
    final class LowMemoryPython {
        let process = Process()
        let stdin = Pipe()
        let file: String
        let staticStart: UInt64
        let heapStart: UInt64

        static let script = """
            import ctypes, json, os, sys
            libc = ctypes.CDLL(None, use_errno=True)
            libc.mmap.restype = ctypes.c_void_p
            libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
            RW, PRIVATE, ANONYMOUS, FIXED_NOREPLACE = 3, 2, 0x20, 0x100000
            def place(candidates, flags, fd):
                for address in candidates:
                    p = libc.mmap(address, 4096, RW, flags | FIXED_NOREPLACE, fd, 0)
                    if p == address:
                        return p
                sys.exit("no free low address")
            fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
            os.ftruncate(fd, 4096)
            static = place([0x10000000 + i * 0x100000 for i in range(64)], PRIVATE, fd)
            heap = place([0x30000000 + i * 0x100000 for i in range(64)], PRIVATE | ANONYMOUS, -1)
            def put(address, value, order):
                ctypes.memmove(address, value.to_bytes(4, order), 4)
            put(static + 0x40, heap, "little")
            put(static + 0x44, 0xffffffff, "little")  # another 32-bit field: no 64-bit pointer here
            put(heap + 0x10, heap + 0x800 - 4, "little")
            put(heap + 0x14, 0xffffffff, "little")
            put(static + 0x80, heap + 0x100, "big")
            put(heap + 0x120, heap + 0x900 - 8, "big")
            print(json.dumps({"static": static, "heap": heap}), flush=True)
            sys.stdin.readline()
            """

        init() throws {
            file = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-lowmod-\(UUID().uuidString)").path
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", Self.script, file]
            process.standardInput = stdin
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            var line = Data()
            while !line.contains(UInt8(ascii: "\n")) {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                line.append(chunk)
            }
            let object = try JSONSerialization.jsonObject(with: line) as? [String: Any]
            guard let s = (object?["static"] as? NSNumber)?.uint64Value, let h = (object?["heap"] as? NSNumber)?.uint64Value else {
                process.terminate()
                throw CocoaError(.fileReadCorruptFile)
            }
            staticStart = s
            heapStart = h
        }

        var pid: Int32 { process.processIdentifier }
        var moduleName: String { URL(fileURLWithPath: file).lastPathComponent }

        func stop() {
            try? stdin.fileHandleForWriting.write(contentsOf: Data("\n".utf8))
            process.waitUntilExit()
            try? FileManager.default.removeItem(atPath: file)
        }
    }

    @Test("32-bit little- and big-endian pointers: each format finds its own chain, which resolves", .requiresTool("python3"))
    func thirtyTwoBitChains() throws {
        let python = try LowMemoryPython()
        defer { python.stop() }
        let handle = try ProcessHandle(pid: python.pid)
        defer { handle.close() }
        let statics = StaticRegion.all(in: try handle.memoryMap())
        #expect(statics.contains { $0.region.start == python.staticStart && $0.moduleName == python.moduleName })

        var options = PointerScanOptions()
        options.maxDepth = 2
        options.maxOffset = 0x100
        let little = PointerFormat(width: .bits32, byteOrder: .little)
        let big = PointerFormat(width: .bits32, byteOrder: .big)
        let littleChain = PointerChain(base: .region(python.moduleName, offset: 0x40), offsets: [0x10, 0x4], format: little)
        let bigChain = PointerChain(base: .region(python.moduleName, offset: 0x80), offsets: [0x20, 0x8], format: big)
        let littleTarget = python.heapStart + 0x800
        let bigTarget = python.heapStart + 0x900

        options.format = little
        let littleScan = try handle.scanPointers(to: littleTarget, options: options)
        #expect(littleScan.chains.contains(littleChain), "\(littleScan.chains.map(\.description))")
        #expect(littleScan.chains.allSatisfy { $0.format == little })
        #expect(try handle.resolve(littleChain) == littleTarget)
        #expect(!(try handle.scanPointers(to: bigTarget, options: options).chains.contains { $0.base == bigChain.base }))

        options.format = big
        let bigScan = try handle.scanPointers(to: bigTarget, options: options)
        #expect(bigScan.chains.contains(bigChain), "\(bigScan.chains.map(\.description))")
        #expect(try handle.resolve(bigChain) == bigTarget)

        // The 64-bit default reads 8 bytes there (the pointer and the field after it): no chain.
        options.format = .native
        #expect(!(try handle.scanPointers(to: littleTarget, options: options).chains.contains { $0.base == littleChain.base }))

        // A saved list keeps the format.
        let text = PointerChainList(format: big, target: bigTarget, chains: bigScan.chains).text
        #expect(text.contains("# format: 32-bit big endian"))
        let list = try PointerChainList(parsing: text)
        #expect(list.format == big)
        #expect(try handle.recheck(list.chains, expecting: .address(bigTarget)).kept.contains(bigChain))
    }

    @Test("chain lists: header, plain lines, and errors that name the line")
    func chainListParsing() throws {
        let plain = try PointerChainList(parsing: "\nlibfoo.so+0x10 -> +0x8\n  # a comment\n0x1000 -> -8\n",
                                         defaultFormat: PointerFormat(width: .bits32))
        #expect(plain.chains.count == 2)
        #expect(plain.chains.allSatisfy { $0.format.width == .bits32 })
        #expect(plain.target == nil)
        let error = try #require(throws: ProcessMemoryError.self) { try PointerChainList(parsing: "libfoo.so -> +0x8\nlibfoo.so -> zz\n") }
        #expect(error.message.hasPrefix("line 2:"))
        #expect(throws: ProcessMemoryError.self) { try PointerChainList(parsing: "# format: 16-bit little endian\n") }
    }
}
