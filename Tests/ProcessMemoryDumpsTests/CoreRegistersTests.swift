import Foundation
import Glibc
import ProcessMemoryTestSupport
import ProcessMemoryTestTraits
import Testing
import ProcessMemoryCore
import ProcessMemoryDumps

/// Registers in core files taken with every stop method: real registers (gdb shows `$rip` inside a
/// mapped executable range) with `SIGSTOP` and the cgroup freezer, and registers recorded as absent
/// (no `NT_PRSTATUS`, a `PROCMEM` note, the sidecar's `registers.absent`) when none can be read.
@Suite("Core registers")
struct CoreRegistersTests {
    static let gdb = ToolLookup.path(of: "gdb")

    /// One ELF note: owner name, type, descriptor.
    struct Note {
        var name: String
        var type: UInt32
        var descriptor: [UInt8]
    }

    /// The notes of the core's PT_NOTE segments.
    static func notes(ofCore path: String) throws -> [Note] {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped))
        func u16(_ at: Int) -> Int { Int(data[at]) | Int(data[at + 1]) << 8 }
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(data[at + $1]) << (8 * UInt32($1)) } }
        func u64(_ at: Int) -> Int { Int((0..<8).reduce(UInt64(0)) { $0 | UInt64(data[at + $1]) << (8 * UInt64($1)) }) }
        let phoff = u64(32)
        var count = u16(56)
        if count == 0xffff { count = Int(u32(u64(40) + 44)) }
        var notes: [Note] = []
        for index in 0..<count where u32(phoff + index * 56) == 4 {
            var at = u64(phoff + index * 56 + 8)
            let end = at + u64(phoff + index * 56 + 32)
            while at + 12 <= end {
                let nameSize = Int(u32(at))
                let descriptorSize = Int(u32(at + 4))
                let type = u32(at + 8)
                let name = String(decoding: data[(at + 12)..<(at + 12 + max(0, nameSize - 1))], as: UTF8.self)
                let descriptorStart = at + 12 + (nameSize + 3) / 4 * 4
                notes.append(Note(name: name, type: type, descriptor: Array(data[descriptorStart..<(descriptorStart + descriptorSize)])))
                at = descriptorStart + (descriptorSize + 3) / 4 * 4
            }
        }
        return notes
    }

    /// Runs gdb in batch mode on the fixture executable and `core`; returns its output.
    static func gdbOutput(_ gdb: String, core: String, commands: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: gdb)
        process.arguments = ["-batch", "-nx"] + commands.flatMap { ["-ex", $0] } + [try Fixture.executablePath(), core]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// The `rip` value in gdb's `info registers rip` output (`rip 0x7f… 0x7f… <…>`).
    static func rip(in output: String) -> UInt64? {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("rip") }) else { return nil }
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard fields.count >= 2, fields[1].hasPrefix("0x") else { return nil }
        return UInt64(fields[1].dropFirst(2), radix: 16)
    }

    @Test("a core taken with SIGSTOP holds real registers: gdb's $rip lies in an executable mapping")
    func signalCoreHasRegisters() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let core = DumpSupport.scratch("signal-core")
        defer { DumpSupport.remove(core) }
        let index = try handle.dumpCore(to: core, options: DumpOptions(stopMethod: .signal))
        #expect(DumpSupport.isRunning(fixture.pid), "resumed at the end as before")
        try fixture.ok("ping")
        let registers = try #require(index.registers)
        #expect(registers.threads.first == fixture.pid)
        #expect(registers.absent.isEmpty, "\(registers.absent)")
        let notes = try Self.notes(ofCore: core)
        let prstatus = try #require(notes.first { $0.name == "CORE" && $0.type == 1 })
        #if arch(x86_64)
        #expect(prstatus.descriptor.count == 336)
        // pr_reg starts at 112; rip is user_regs_struct's 17th register.
        let rip = prstatus.descriptor[(112 + 16 * 8)..<(112 + 17 * 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        #expect(rip != 0)
        let executable = try handle.memoryMap().regions.filter { $0.permissions.contains(.execute) }
        #expect(executable.contains { $0.contains(rip) }, "rip 0x\(String(rip, radix: 16)) is not in an executable mapping")
        #endif
        #expect(!notes.contains { $0.name == "PROCMEM" })
    }

    #if arch(x86_64)
    @Test("gdb shows the rip that a SIGSTOP core's NT_PRSTATUS holds", .requiresTool("gdb"))
    func signalCoreRegistersInGDB() throws {
        let gdb = try #require(Self.gdb)
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let core = DumpSupport.scratch("signal-core-gdb")
        defer { DumpSupport.remove(core) }
        _ = try handle.dumpCore(to: core, options: DumpOptions(stopMethod: .signal))
        let notes = try Self.notes(ofCore: core)
        let prstatus = try #require(notes.first { $0.name == "CORE" && $0.type == 1 })
        let rip = prstatus.descriptor[(112 + 16 * 8)..<(112 + 17 * 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let output = try Self.gdbOutput(gdb, core: core, commands: ["info registers rip"])
        let shown = try #require(Self.rip(in: output), "gdb output: \(output)")
        #expect(shown == rip, "gdb output: \(output)")
    }
    #endif

    @Test("registers read from a SIGSTOP-stopped process leave it stopped until resume")
    func signalStopStaysStopped() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let stopped = try handle.stop(.signal)
        let first = try stopped.registers()
        #expect(first.map(\.tid) == stopped.threads)
        // Detached back into the group stop: still T, not t (traced) nor running.
        #expect(DumpSupport.state(fixture.pid) == "T")
        let second = try stopped.registers()
        #expect(second.first?.general == first.first?.general, "a stopped thread's registers do not change")
        #expect(DumpSupport.state(fixture.pid) == "T")
        stopped.resume()
        try waitUntil { DumpSupport.isRunning(fixture.pid) }
        try fixture.ok("ping")
    }

    @Test("with stop method none the core has no NT_PRSTATUS and says why, in a note and the sidecar")
    func unstoppedCoreRecordsAbsentRegisters() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let core = DumpSupport.scratch("none-core")
        defer { DumpSupport.remove(core) }
        let index = try handle.dumpCore(to: core, options: DumpOptions(stopMethod: .none))
        let registers = try #require(index.registers)
        #expect(registers.threads.isEmpty)
        #expect(registers.absent.map(\.tid) == [fixture.pid])
        #expect(registers.absent.first?.reason.contains("not stopped") == true)
        let notes = try Self.notes(ofCore: core)
        #expect(!notes.contains { $0.name == "CORE" && $0.type == 1 }, "no zero-filled NT_PRSTATUS")
        #expect(notes.contains { $0.name == "CORE" && $0.type == 3 }, "NT_PRPSINFO is still written")
        let absent = try #require(notes.first { $0.name == "PROCMEM" && $0.type == 1 })
        #expect(String(decoding: absent.descriptor, as: UTF8.self).hasPrefix("\(fixture.pid) "))
        let sidecar = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: core + ".json"))) as? [String: Any]
        let entry = try #require(sidecar?["registers"] as? [String: Any])
        #expect((entry["absent"] as? [[String: Any]])?.first?["tid"] as? Int == Int(fixture.pid))
    }

    @Test("gdb shows the registers of a core taken with stop method none as unavailable, not as zeros",
          .requiresTool("gdb"))
    func unstoppedCoreRegistersInGDB() throws {
        let gdb = try #require(Self.gdb)
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let core = DumpSupport.scratch("none-core-gdb")
        defer { DumpSupport.remove(core) }
        _ = try handle.dumpCore(to: core, options: DumpOptions(stopMethod: .none))
        let output = try Self.gdbOutput(gdb, core: core, commands: ["info registers rip"])
        #expect(Self.rip(in: output) == nil, "\(output)")
        #expect(output.contains("<unavailable>"), "\(output)")
    }
}
