import Foundation
import Glibc
import ProcessMemoryCore
import ProcessMemoryDumps
import ProcessMemoryTestTraits
import Testing

/// Our core beside gcore's for python3, a program we did not write: a script with two threads that
/// holds a known string and four known integers and prints their addresses. gdb must show the same
/// register set, a readable `$_siginfo`, the same backtraces and the same bytes at those addresses
/// in both cores, and every byte gcore wrote must equal ours wherever both cores hold data.
///
/// Our core follows the target's coredump_filter, as gcore does (`procmem dump --core`'s default).
@Suite("python3 cores beside gcore", .serialized, .requiresTool("gdb"), .requiresTool("gcore"), .requiresTool("python3"))
struct CorePythonGcoreComparisonTests {
    static let script = #"""
    import ctypes, threading, time
    marker = bytearray(b"procmem-python-gcore-marker-5eed")
    numbers = (ctypes.c_uint64 * 4)(0x1122334455667788, 0x5EEDC0DE5EEDC0DE, 0, 0xFFFFFFFFFFFFFFFF)
    address = ctypes.addressof((ctypes.c_char * len(marker)).from_buffer(marker))
    done = threading.Event()
    threading.Thread(target=done.wait, name="waiter", daemon=True).start()
    print("ready %x %x" % (address, ctypes.addressof(numbers)), flush=True)
    time.sleep(3600)
    """#

    /// The general-purpose registers whose values must agree: the thread is blocked in the same
    /// system call during both dumps.
    static let generalRegisters = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12",
                                   "r13", "r14", "r15", "rip", "eflags", "cs", "ss", "fs_base", "gs_base"]

    @Test("gdb shows the same registers, $_siginfo, backtraces and memory; gcore's bytes equal ours")
    func pythonSameAsGcore() throws {
        let gdb = try #require(ToolLookup.path(of: "gdb"))
        let gcore = try #require(ToolLookup.path(of: "gcore"))
        let python = try #require(ToolLookup.path(of: "python3"))
        let directory = DumpSupport.scratch("python-gcore")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { DumpSupport.remove(directory) }

        let program = Process()
        program.executableURL = URL(fileURLWithPath: python)
        program.arguments = ["-c", Self.script]
        let stdout = Pipe()
        program.standardOutput = stdout
        try program.run()
        defer {
            // SIGKILL: the test runner may hand its children SIGTERM ignored.
            kill(program.processIdentifier, SIGKILL)
            program.waitUntilExit()
        }
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = stdout.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let fields = String(decoding: line, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        try #require(fields.count == 3 && fields[0] == "ready", "the script prints its addresses: \(fields)")
        let markerAddress = "0x" + fields[1], numbersAddress = "0x" + fields[2]
        usleep(100_000)  // let both threads block
        let pid = program.processIdentifier
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")

        let ours = directory + "/ours.core"
        let handle = try ProcessHandle(pid: pid)
        var options = DumpOptions(stopMethod: .ptrace)
        options.selection = .coredumpFilter(nil)
        let index = try handle.dumpCore(to: ours, options: options)
        handle.close()
        #expect(index.complete)
        #expect(index.registers?.threads.count == 2, "both threads have registers: \(String(describing: index.registers))")
        let theirsPrefix = directory + "/gcore"
        let result = try GcoreTools.run(gcore, ["-o", theirsPrefix, String(pid)])
        #expect(result.status == 0, "gcore: \(result.output)")
        let theirs = theirsPrefix + ".\(pid)"

        let commands = ["info all-registers", "p $_siginfo.si_signo", "thread apply all bt",
                        "x/s \(markerAddress)", "x/4gx \(numbersAddress)"]
        let ourOutput = try GcoreTools.gdb(gdb, binary: executable, core: ours, commands)
        let theirOutput = try GcoreTools.gdb(gdb, binary: executable, core: theirs, commands)

        // The same register set; the same values in the general-purpose registers. (Not in k0-7 and
        // zmm16-31 on CPUs whose XSAVE layout is not Intel's, such as AMD Zen 4: gdb 13 reads the
        // live area at Intel's offsets, so gcore's core shows other bytes there; ours moves each
        // component to the offset gdb reads, see XSaveLayout.swift.)
        let ourRegisters = Self.registerNames(ourOutput), theirRegisters = Self.registerNames(theirOutput)
        #expect(ourRegisters.contains("rip") && (ourRegisters.contains("ymm0") || ourRegisters.contains("zmm0")), "\(ourRegisters.sorted())")
        #expect(ourRegisters == theirRegisters,
                "only gcore's: \(theirRegisters.subtracting(ourRegisters).sorted()); only ours: \(ourRegisters.subtracting(theirRegisters).sorted())")
        for name in Self.generalRegisters {
            #expect(Self.registerLine(ourOutput, name) == Self.registerLine(theirOutput, name), "register \(name)")
        }
        // $_siginfo reads in both.
        for output in [ourOutput, theirOutput] {
            #expect(!output.contains("Unable to read siginfo"))
            #expect(GcoreTools.lines(output, starting: "$1 = ").count == 1, "p $_siginfo.si_signo prints a value")
        }
        // The same frames in every thread (addresses left out; threads compared as a set).
        let ourThreads = Self.threadFrames(ourOutput), theirThreads = Self.threadFrames(theirOutput)
        #expect(ourThreads.count == 2, "\(ourOutput)")
        #expect(ourThreads == theirThreads)
        #expect(ourThreads.contains { $0.contains { $0.contains("clock_nanosleep") } }, "the main thread sleeps: \(ourThreads)")
        // The known values, at the addresses the script printed.
        let memory = { (text: String) in GcoreTools.lines(text, starting: "0x") }
        #expect(memory(ourOutput).contains { $0.contains("\"procmem-python-gcore-marker-5eed\"") }, "\(memory(ourOutput))")
        #expect(memory(ourOutput).contains { $0.contains("0x1122334455667788\t0x5eedc0de5eedc0de") }, "\(memory(ourOutput))")
        #expect(memory(ourOutput) == memory(theirOutput))

        // Byte for byte, wherever both cores hold data (holes in ours read as zeros).
        let comparison = try Self.compareLoads(ours, theirs)
        #expect(comparison.compared > 1 << 20, "the cores share more than a megabyte: \(comparison.compared)")
        for run in comparison.differences {
            let region = index.regions.first { $0.start <= run.address && run.address < $0.end }
            // Two cases are known, neither a fault of ours: gcore writes zeros for a whole section
            // when one read of it fails on an unreadable part (ours holds the readable bytes and
            // lists the rest as failed); and a live field of a few bytes (the kernel's rseq
            // cpu_id) changes when a thread moves between CPUs between the two dumps.
            let gcoreZeroFill = run.theirsAllZero && region.map { !$0.failed.isEmpty } == true
            #expect(gcoreZeroFill || run.length <= 4,
                    "0x\(String(run.address, radix: 16)) +\(run.length) differs in \(region?.path ?? "an anonymous region")")
        }
    }

    /// The names `info all-registers` shows: the first word of each line whose second is a value
    /// (hex, decimal, or a `{…}` vector). Lines of the core's command line, which gdb prints first
    /// and which here hold the script, have no such shape.
    static func registerNames(_ output: String) -> Set<String> {
        Set(output.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let first = fields.first, first.first?.isLetter == true,
                  first.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }),
                  let value = fields[1].first, value == "{" || value == "-" || value.isNumber else { return nil }
            return String(first)
        })
    }

    /// The line of `info all-registers` for `name`, whitespace collapsed.
    static func registerLine(_ output: String, _ name: String) -> String? {
        output.split(separator: "\n").first { $0.split(separator: " ").first.map(String.init) == name }
            .map { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ") }
    }

    /// Each thread's frames from `thread apply all bt`, addresses left out, as a set.
    static func threadFrames(_ output: String) -> Set<[String]> {
        var threads: [[String]] = []
        for line in output.split(separator: "\n") {
            if line.hasPrefix("Thread ") {
                threads.append([])
            } else if line.hasPrefix("#"), !threads.isEmpty {
                threads[threads.count - 1].append(line.split(separator: " ").filter { !$0.hasPrefix("0x") }.joined(separator: " "))
            }
        }
        return Set(threads)
    }

    struct Difference {
        var address: UInt64
        var length: Int
        var theirsAllZero: Bool
    }

    /// Compares the file bytes of every pair of PT_LOADs that overlap (both with data); returns the
    /// bytes compared and the runs that differ.
    static func compareLoads(_ first: String, _ second: String) throws -> (compared: UInt64, differences: [Difference]) {
        let a = [UInt8](try Data(contentsOf: URL(fileURLWithPath: first), options: .alwaysMapped))
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: second), options: .alwaysMapped))
        let loadsA = try DumpSupport.loads(ofCore: first).loads.filter { $0.fileSize > 0 }
        let loadsB = try DumpSupport.loads(ofCore: second).loads.filter { $0.fileSize > 0 }
        var compared: UInt64 = 0
        var differences: [Difference] = []
        for loadA in loadsA {
            for loadB in loadsB {
                let start = max(loadA.address, loadB.address)
                let end = min(loadA.address + loadA.fileSize, loadB.address + loadB.fileSize)
                guard start < end else { continue }
                let offsetA = Int(loadA.offset + (start - loadA.address)), offsetB = Int(loadB.offset + (start - loadB.address))
                let length = Int(end - start)
                guard offsetA + length <= a.count, offsetB + length <= b.count else {
                    differences.append(Difference(address: start, length: length, theirsAllZero: false))
                    continue
                }
                compared += UInt64(length)
                a.withUnsafeBytes { rawA in
                    b.withUnsafeBytes { rawB in
                        guard let baseA = rawA.baseAddress, let baseB = rawB.baseAddress else { return }
                        var position = 0
                        while position < length {
                            // Whole pages at a time; byte by byte only inside a page that differs.
                            let block = min(4096, length - position)
                            if memcmp(baseA + offsetA + position, baseB + offsetB + position, block) == 0 {
                                position += block
                                continue
                            }
                            let blockEnd = position + block
                            while position < blockEnd {
                                guard rawA[offsetA + position] != rawB[offsetB + position] else {
                                    position += 1
                                    continue
                                }
                                var runEnd = position
                                var zero = true
                                while runEnd < length && rawA[offsetA + runEnd] != rawB[offsetB + runEnd] {
                                    zero = zero && rawB[offsetB + runEnd] == 0
                                    runEnd += 1
                                }
                                differences.append(Difference(address: start + UInt64(position), length: runEnd - position,
                                                              theirsAllZero: zero))
                                position = runEnd
                            }
                        }
                    }
                }
            }
        }
        return (compared, differences)
    }
}
