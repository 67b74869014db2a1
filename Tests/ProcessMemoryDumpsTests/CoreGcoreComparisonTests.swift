import Foundation
import Glibc
import Testing
import ProcessMemoryCore
import ProcessMemoryDumps

/// Our core beside gcore's for the same process, read by gdb: a C program with a known AVX value
/// in `ymm0` and a second thread. Both cores must show the same registers (`info all-registers`),
/// a readable `$_siginfo`, the same `ymm0`, the same backtraces and the same memory.
@Suite("Cores beside gcore", .serialized,
       .enabled(if: GcoreTools.tools != nil, "needs gdb and gcore (apt-get install gdb) and cc"),
       .enabled(if: GcoreTools.hasAVX, "needs a CPU with AVX (ymm registers)"))
struct CoreGcoreComparisonTests {}

/// What the comparison needs from the machine.
enum GcoreTools {
    static let tools: (gdb: String, gcore: String, cc: String)? = {
        func find(_ name: String) -> String? {
            ["/usr/bin/", "/usr/local/bin/", "/bin/"].map { $0 + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
        }
        guard let gdb = find("gdb"), let gcore = find("gcore"), let cc = find("cc") ?? find("gcc") else { return nil }
        return (gdb, gcore, cc)
    }()

    static let hasAVX: Bool = {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return false }
        return info.split(separator: "\n").contains { $0.hasPrefix("flags") && $0.split(separator: " ").contains("avx") }
    }()

    /// Loads a pattern into ymm0 and blocks in pause(2) straight from the same asm block, so the
    /// value is in the registers the kernel saved; a second thread blocks in pause() too.
    static let source = #"""
    #include <pthread.h>
    #include <stdio.h>
    #include <stdint.h>
    #include <unistd.h>
    #include <sys/syscall.h>
    uint32_t pattern[8] __attribute__((aligned(32))) = {0x11111111, 0x22222222, 0x33333333, 0x44444444,
                                                         0x55555555, 0x66666666, 0x77777777, 0x88888888};
    uint64_t planted = 0x5EEDC0DE5EEDC0DEULL;
    static void *worker(void *arg) { (void)arg; for (;;) pause(); return NULL; }
    int main(void) {
        pthread_t thread;
        pthread_create(&thread, NULL, worker, NULL);
        printf("ready\n");
        fflush(stdout);
        for (;;) {
            __asm__ volatile("vmovdqu %0, %%ymm0\n\tmov %1, %%eax\n\tsyscall"
                             : : "m"(pattern), "i"(SYS_pause) : "rax", "rcx", "r11", "memory");
        }
    }
    """#

    /// The program, built once into the scratch directory.
    static func build(in directory: String, cc: String) throws -> String {
        let sourcePath = directory + "/avx.c"
        let binary = directory + "/avx"
        try source.write(toFile: sourcePath, atomically: true, encoding: .utf8)
        let status = try run(cc, ["-O0", "-g", "-mavx", "-pthread", "-o", binary, sourcePath]).status
        #expect(status == 0, "cc builds the AVX program")
        return binary
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func gdb(_ gdb: String, binary: String, core: String, _ commands: [String]) throws -> String {
        try run(gdb, ["-batch", "-nx"] + commands.flatMap { ["-ex", $0] } + [binary, core]).output
    }

    /// The first word of every line of `info all-registers` that names a register.
    static func registerNames(_ output: String) -> Set<String> {
        Set(output.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let first = fields.first, first.first?.isLetter == true,
                  first.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { return nil }
            return String(first)
        })
    }

    /// The lines of `output` that start with `prefix`, with addresses of frames kept.
    static func lines(_ output: String, starting prefix: String) -> [String] {
        output.split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) }
    }
}

extension CoreGcoreComparisonTests {
    @Test("gdb shows the same registers, $_siginfo, ymm0, backtraces and memory in our core and gcore's")
    func sameAsGcore() throws {
        let tools = try #require(GcoreTools.tools)
        let directory = DumpSupport.scratch("gcore-compare")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { DumpSupport.remove(directory) }
        let binary = try GcoreTools.build(in: directory, cc: tools.cc)

        let program = Process()
        program.executableURL = URL(fileURLWithPath: binary)
        let stdout = Pipe()
        program.standardOutput = stdout
        try program.run()
        defer {
            // SIGKILL: the test runner may hand its children SIGTERM ignored.
            kill(program.processIdentifier, SIGKILL)
            program.waitUntilExit()
        }
        _ = stdout.fileHandleForReading.availableData  // "ready"
        usleep(100_000)  // let the main thread reach its pause(2) with ymm0 loaded
        let pid = program.processIdentifier

        let ours = directory + "/ours.core"
        let handle = try ProcessHandle(pid: pid)
        try handle.dumpCore(to: ours, options: DumpOptions(stopMethod: .ptrace))
        handle.close()
        let theirsPrefix = directory + "/gcore"
        let gcore = try GcoreTools.run(tools.gcore, ["-o", theirsPrefix, String(pid)])
        #expect(gcore.status == 0, "gcore: \(gcore.output)")
        let theirs = theirsPrefix + ".\(pid)"

        let commands = ["info all-registers", "p $_siginfo.si_signo", "p/x $ymm0.v8_int32", "thread apply all bt",
                        "x/2gx &planted", "x/8wx &pattern"]
        let ourOutput = try GcoreTools.gdb(tools.gdb, binary: binary, core: ours, commands)
        let theirOutput = try GcoreTools.gdb(tools.gdb, binary: binary, core: theirs, commands)

        let ourRegisters = GcoreTools.registerNames(ourOutput), theirRegisters = GcoreTools.registerNames(theirOutput)
        #expect(theirRegisters.subtracting(ourRegisters).isEmpty,
                "registers gcore's core has and ours lacks: \(theirRegisters.subtracting(ourRegisters).sorted())")
        // gdb lists zmm0 on AVX-512 machines and ymm0 on AVX ones.
        #expect(ourRegisters.contains("rip") && (ourRegisters.contains("ymm0") || ourRegisters.contains("zmm0")),
                "registers: \(ourRegisters.sorted())")
        #expect(!ourOutput.contains("Unable to read siginfo"), "p $_siginfo works on our core")
        let ymm = GcoreTools.lines(ourOutput, starting: "$2")
        #expect(ymm == GcoreTools.lines(theirOutput, starting: "$2"))
        #expect(ymm.first?.contains("0x11111111, 0x22222222, 0x33333333, 0x44444444, 0x55555555, 0x66666666, 0x77777777, 0x88888888") == true,
                "ymm0 holds the pattern: \(ymm)")
        // Backtraces: the same frames (functions) for every thread.
        let frames = { (text: String) in GcoreTools.lines(text, starting: "#").map { line in
            line.split(separator: " ").filter { !$0.hasPrefix("0x") }.joined(separator: " ")
        } }
        #expect(!frames(ourOutput).isEmpty)
        #expect(frames(ourOutput) == frames(theirOutput))
        // Memory: the planted word and the pattern.
        let memory = { (text: String) in GcoreTools.lines(text, starting: "0x").filter { $0.contains("<planted") || $0.contains("<pattern") } }
        #expect(memory(ourOutput).count >= 2)
        #expect(memory(ourOutput) == memory(theirOutput))
    }
}
