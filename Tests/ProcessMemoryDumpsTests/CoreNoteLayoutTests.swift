import Foundation
import Glibc
import ProcessMemoryTestTraits
import SystemPackage
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryDumps

/// The byte layout of core-file notes for both supported machines, checked against the sizes and
/// offsets of the kernel's and glibc's headers. This machine is x86_64, so the arm64 layout is
/// checked here only, against constants copied from the aarch64 headers:
///
/// - `include/uapi/linux/elfcore.h`: `struct elf_prstatus` = `elf_prstatus_common` (siginfo 12,
///   cursig 2 + 2 padding, sigpend 8, sighold 8, pid/ppid/pgrp/sid 4 each, utime/stime/cutime/cstime
///   16 each = 112 bytes), `elf_gregset_t pr_reg`, `int pr_fpvalid`, padded to 8;
///   `struct elf_prpsinfo` = 136 bytes on 64-bit machines.
/// - `arch/arm64/include/uapi/asm/ptrace.h`: `struct user_pt_regs { __u64 regs[31]; __u64 sp;
///   __u64 pc; __u64 pstate; }` = 272 bytes, so glibc's `ELF_NGREG` (sysdeps/unix/sysv/linux/aarch64/
///   sys/procfs.h, `sizeof (struct user_regs_struct) / sizeof (elf_greg_t)`) is 34;
///   `struct user_fpsimd_state { __uint128_t vregs[32]; __u32 fpsr; __u32 fpcr; __u32 __reserved[2]; }`
///   = 528 bytes, the `NT_PRFPREG` descriptor.
/// - `arch/x86/include/asm/user_64.h`: `struct user_regs_struct` = 27 × 8 = 216 bytes,
///   `struct user_i387_struct` = 512 bytes.
/// - `<elf.h>`: `EM_X86_64` = 62, `EM_AARCH64` = 183, `ET_CORE` = 4, `NT_PRSTATUS` = 1,
///   `NT_PRFPREG` = 2, `NT_PRPSINFO` = 3, `NT_AUXV` = 6, `NT_FILE` = 0x46494c45.
@Suite("Core note layout")
struct CoreNoteLayoutTests {
    /// aarch64: `sizeof(struct elf_prstatus)` = 112 + 272 + 4 = 388, padded to 392.
    static let aarch64PRStatusSize = 392
    static let aarch64RegistersOffset = 112
    static let aarch64RegistersSize = 272
    static let aarch64FPValidOffset = 384
    static let aarch64FPSIMDSize = 528
    static let aarch64Machine: UInt16 = 183
    /// x86_64: 112 + 216 + 4 = 332, padded to 336 (also what gdb's own cores use).
    static let x86_64PRStatusSize = 336
    static let x86_64FPValidOffset = 328
    static let prpsinfoSize = 136

    static func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) } }
    static func u16(_ bytes: [UInt8], _ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }

    /// One note per entry: (name, type, descriptor size, descriptor offset in `notes`).
    static func parse(_ notes: [UInt8]) -> [(name: String, type: UInt32, size: Int, offset: Int)] {
        var result: [(String, UInt32, Int, Int)] = []
        var at = 0
        while at + 12 <= notes.count {
            let nameSize = Int(u32(notes, at))
            let size = Int(u32(notes, at + 4))
            let name = String(decoding: notes[(at + 12)..<(at + 12 + nameSize - 1)], as: UTF8.self)
            let descriptor = at + 12 + (nameSize + 3) / 4 * 4
            result.append((name, u32(notes, at + 8), size, descriptor))
            at = descriptor + (size + 3) / 4 * 4
        }
        return result
    }

    @Test("arm64 elf_prstatus: 392 bytes, pr_pid at 32, pr_reg (272 bytes) at 112, pr_fpvalid at 384")
    func aarch64PRStatus() {
        let architecture = CoreArchitecture.aarch64
        #expect(architecture.machine == Self.aarch64Machine)
        #expect(architecture.registersSize == Self.aarch64RegistersSize)
        #expect(architecture.registersOffset == Self.aarch64RegistersOffset)
        #expect(architecture.prstatusSize == Self.aarch64PRStatusSize)
        #expect(architecture.floatingPointSize == Self.aarch64FPSIMDSize)
        let general = (0..<Self.aarch64RegistersSize).map { UInt8(truncatingIfNeeded: $0 &+ 1) }
        var stat = CoreNotes.TaskStat()
        stat.ppid = 77
        for float in [nil, [UInt8](repeating: 0xAB, count: Self.aarch64FPSIMDSize)] as [[UInt8]?] {
            let registers = ThreadRegisters(tid: 4242, general: general, floatingPoint: float)
            let bytes = CoreNotes.prstatus(architecture: architecture, tid: 4242, stat: stat, registers: registers)
            #expect(bytes.count == Self.aarch64PRStatusSize)
            #expect(Self.u32(bytes, 32) == 4242)   // pr_pid
            #expect(Self.u32(bytes, 36) == 77)     // pr_ppid
            #expect(Array(bytes[Self.aarch64RegistersOffset..<(Self.aarch64RegistersOffset + Self.aarch64RegistersSize)]) == general)
            #expect(Self.u32(bytes, Self.aarch64FPValidOffset) == (float == nil ? 0 : 1))
        }
    }

    @Test("x86_64 elf_prstatus: 336 bytes, pr_reg (216 bytes) at 112, pr_fpvalid at 328")
    func x86_64PRStatus() {
        let architecture = CoreArchitecture.x86_64
        #expect(architecture.machine == 62)
        #expect(architecture.prstatusSize == Self.x86_64PRStatusSize)
        let general = [UInt8](repeating: 0x5A, count: 216)
        let bytes = CoreNotes.prstatus(architecture: architecture, tid: 1, stat: CoreNotes.TaskStat(),
                                       registers: ThreadRegisters(tid: 1, general: general, floatingPoint: [0]))
        #expect(bytes.count == Self.x86_64PRStatusSize)
        #expect(Array(bytes[112..<328]) == general)
        #expect(Self.u32(bytes, Self.x86_64FPValidOffset) == 1)
    }

    @Test("an arm64 note segment: NT_PRSTATUS, NT_PRPSINFO, NT_AUXV, NT_FILE, then NT_PRFPREG only where given")
    func aarch64NoteSegment() throws {
        let handle = try ProcessHandle(pid: getpid())
        defer { handle.close() }
        let map = try handle.memoryMap()
        let procDir = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try #require(procDir >= 0)
        defer { close(procDir) }
        let me = getpid()
        let general = [UInt8](repeating: 1, count: Self.aarch64RegistersSize)
        let registers = [ThreadRegisters(tid: me, general: general, floatingPoint: [UInt8](repeating: 2, count: Self.aarch64FPSIMDSize)),
                         ThreadRegisters(tid: me + 1, general: general, floatingPoint: nil)]
        let notes = CoreNotes.build(architecture: .aarch64, pid: me, procDir: FileDescriptor(rawValue: procDir), threads: [me, me + 1, me + 2],
                                    registers: registers, absent: [.init(tid: me + 2, reason: "test")], map: map)
        let parsed = Self.parse(notes)
        // NT_SIGINFO ("SIGI", 128 bytes) follows each thread's NT_PRSTATUS and the process notes.
        #expect(parsed.map(\.type) == [1, 3, 6, 0x4649_4c45, 0x5349_4749, 2, 1, 0x5349_4749, 1])
        #expect(parsed.map(\.name) == ["CORE", "CORE", "CORE", "CORE", "CORE", "CORE", "CORE", "CORE", "PROCMEM"])
        #expect(parsed[0].size == Self.aarch64PRStatusSize)
        #expect(parsed[1].size == Self.prpsinfoSize)
        #expect(parsed[4].size == 128)
        #expect(parsed[5].size == Self.aarch64FPSIMDSize)
        #expect(parsed[6].size == Self.aarch64PRStatusSize)
        #expect(Self.u32(notes, parsed[6].offset + 32) == UInt32(me + 1))
        // The second thread has no NT_PRFPREG, and its pr_fpvalid says so.
        #expect(Self.u32(notes, parsed[6].offset + Self.aarch64FPValidOffset) == 0)
        #expect(String(decoding: notes[parsed[8].offset..<(parsed[8].offset + parsed[8].size)], as: UTF8.self) == "\(me + 2) test\n")
    }

    @Test("the ELF header of an arm64 core: ELFCLASS64, little endian, ET_CORE, EM_AARCH64")
    func aarch64Header() {
        let header = ELF.header(machine: CoreArchitecture.aarch64.machine, programHeaderOffset: 64, programHeaderCount: 3,
                                sectionHeaderOffset: 0)
        #expect(header.count == 64)
        #expect(Array(header[0..<7]) == [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1])
        #expect(Self.u16(header, 16) == 4)                   // e_type
        #expect(Self.u16(header, 18) == Self.aarch64Machine) // e_machine
        #expect(Self.u16(header, 54) == 56)                  // e_phentsize
        #expect(Self.u16(header, 56) == 3)                   // e_phnum
    }

    @Test("gdb-multiarch reads pc, sp, x0 and memory from a synthetic arm64 core", .requiresGdbMultiarch)
    func aarch64CoreLoadsInGDB() throws {
        let gdb = try #require(ToolLookup.path(of: "gdb-multiarch"))
        let handle = try ProcessHandle(pid: getpid())
        defer { handle.close() }
        let procDir = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try #require(procDir >= 0)
        defer { close(procDir) }
        // user_pt_regs: x0...x30, sp, pc, pstate.
        let loadAddress: UInt64 = 0x40_0000
        var words = (0..<31).map { UInt64(0x1111_0000 + $0) }
        words += [0x7fff_f000, loadAddress + 0x10, 0x6000_0000]
        var general = ELFBytes()
        words.forEach { general.u64($0) }
        let me = getpid()
        let notes = CoreNotes.build(architecture: .aarch64, pid: me, procDir: FileDescriptor(rawValue: procDir), threads: [me],
                                    registers: [ThreadRegisters(tid: me, general: general.bytes, floatingPoint: nil)],
                                    map: MemoryMap(regions: []))
        let page: UInt64 = 4096
        let notesOffset = UInt64(ELF.headerSize + 2 * ELF.programHeaderSize)
        let dataOffset = (notesOffset + UInt64(notes.count) + page - 1) / page * page
        let memory = (0..<Int(page)).map { UInt8(truncatingIfNeeded: $0 ^ 0x5A) }
        var file = ELFBytes()
        file.bytes += ELF.header(machine: CoreArchitecture.aarch64.machine, programHeaderOffset: UInt64(ELF.headerSize),
                                 programHeaderCount: 2, sectionHeaderOffset: 0)
        ELF.ProgramHeader(type: ELF.ptNote, flags: ELF.pfR, offset: notesOffset, virtualAddress: 0,
                          fileSize: UInt64(notes.count), memorySize: 0, alignment: 4).write(into: &file)
        ELF.ProgramHeader(type: ELF.ptLoad, flags: ELF.pfR | ELF.pfX, offset: dataOffset, virtualAddress: loadAddress,
                          fileSize: page, memorySize: page, alignment: page).write(into: &file)
        file.bytes += notes
        file.zeros(Int(dataOffset) - file.bytes.count)
        file.bytes += memory
        let path = DumpSupport.scratch("arm64-core")
        defer { DumpSupport.remove(path) }
        try Data(file.bytes).write(to: URL(fileURLWithPath: path))

        let process = Process()
        process.executableURL = URL(fileURLWithPath: gdb)
        process.arguments = ["-batch", "-nx", "-ex", "set architecture aarch64", "-ex", "core-file \(path)",
                             "-ex", "info registers pc sp x0 x30", "-ex", "x/2xb 0x400010"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        func register(_ name: String) -> String? {
            output.split(separator: "\n").first { $0.hasPrefix(name + " ") }?.split(separator: " ").dropFirst().first.map(String.init)
        }
        #expect(register("pc") == "0x400010", "\(output)")
        #expect(register("sp") == "0x7ffff000", "\(output)")
        #expect(register("x0") == "0x11110000", "\(output)")
        #expect(register("x30") == "0x1111001e", "\(output)")
        #expect(output.contains("0x4a\t0x4b"), "memory at 0x400010 is 0x10^0x5a, 0x11^0x5a: \(output)")
    }
}
