import Glibc
import ProcessMemoryCore
import SystemPackage

/// The PT_NOTE segment of a core file, as the kernel writes it (`fs/binfmt_elf.c`): for the main
/// thread `NT_PRSTATUS`, `NT_PRPSINFO`, `NT_AUXV`, `NT_FILE`, `NT_SIGINFO`, `NT_PRFPREG`,
/// `NT_X86_XSTATE`; then `NT_PRSTATUS`, `NT_SIGINFO` and the register sets for every other thread. gdb takes the first `NT_PRSTATUS` as the current thread.
enum CoreNotes {
    static let ntPRStatus: UInt32 = 1
    static let ntPRFPReg: UInt32 = 2
    static let ntPRPSInfo: UInt32 = 3
    static let ntAuxv: UInt32 = 6
    static let ntFile: UInt32 = 0x4649_4c45  // "FILE"
    static let ntSigInfo: UInt32 = 0x5349_4749  // "SIGI"
    static let ntX86XState: UInt32 = 0x202

    /// The fields of `/proc/PID/task/TID/stat` a core needs.
    struct TaskStat {
        var state: Character = "R"
        var ppid: Int32 = 0
        var pgrp: Int32 = 0
        var session: Int32 = 0
        var flags: UInt64 = 0
        var utimeTicks: UInt64 = 0
        var stimeTicks: UInt64 = 0
        var nice: Int8 = 0

        static func read(_ procDir: FileDescriptor, _ path: String) -> TaskStat {
            var stat = TaskStat()
            guard case .success(let bytes) = procDir.readFile(relative: path),
                  let close = bytes.lastIndex(of: UInt8(ascii: ")")), close + 2 < bytes.count else { return stat }
            let fields = bytes[(close + 2)...].split(separator: UInt8(ascii: " ")).map { String(decoding: $0, as: UTF8.self) }
            guard fields.count > 16 else { return stat }
            stat.state = fields[0].first ?? "R"
            stat.ppid = Int32(fields[1]) ?? 0
            stat.pgrp = Int32(fields[2]) ?? 0
            stat.session = Int32(fields[3]) ?? 0
            stat.flags = UInt64(fields[6]) ?? 0
            stat.utimeTicks = UInt64(fields[11]) ?? 0
            stat.stimeTicks = UInt64(fields[12]) ?? 0
            stat.nice = Int8(clamping: Int(fields[16]) ?? 0)
            return stat
        }
    }

    /// The owner name of procmem's own note, which says which threads have no registers.
    static let procmemNoteName = "PROCMEM"
    /// The type of that note; its descriptor is one `TID reason` line per such thread.
    static let ntRegistersAbsent: UInt32 = 1

    /// The whole note segment.
    ///
    /// Only threads in `registers` get `NT_PRSTATUS` (and `NT_PRFPREG`): a thread whose registers
    /// could not be read is left out rather than given zeros that a debugger would show as real
    /// registers, and is listed, with the reason, in one `PROCMEM` note at the end (readers that do
    /// not know the name skip it). `NT_PRPSINFO`, `NT_AUXV` and `NT_FILE` follow the first
    /// `NT_PRSTATUS`, or open the segment when no thread has registers.
    static func build(architecture: CoreArchitecture, pid: Int32, procDir: FileDescriptor, threads: [Int32],
                      registers: [ThreadRegisters], absent: [RegisterCapture.Absent] = [], map: MemoryMap) -> [UInt8] {
        var notes: [UInt8] = []
        let byTid = Dictionary(registers.map { ($0.tid, $0) }, uniquingKeysWith: { first, _ in first })
        let reasons = Dictionary(absent.map { ($0.tid, $0.reason) }, uniquingKeysWith: { first, _ in first })
        var processNotesWritten = false
        func processNotes() {
            guard !processNotesWritten else { return }
            processNotesWritten = true
            notes += ELF.note(name: "CORE", type: ntPRPSInfo, descriptor: prpsinfo(pid: pid, procDir: procDir))
            if case .success(let auxv) = procDir.readFile(relative: "auxv") {
                notes += ELF.note(name: "CORE", type: ntAuxv, descriptor: auxv)
            }
            notes += ELF.note(name: "CORE", type: ntFile, descriptor: fileNote(map))
        }
        if !threads.contains(where: { byTid[$0] != nil }) { processNotes() }
        var missing: [UInt8] = []
        for tid in threads {
            guard let regs = byTid[tid] else {
                missing += Array("\(tid) \(reasons[tid] ?? "registers not read")\n".utf8)
                continue
            }
            let stat = TaskStat.read(procDir, "task/\(tid)/stat")
            notes += ELF.note(name: "CORE", type: ntPRStatus,
                              descriptor: prstatus(architecture: architecture, tid: tid, stat: stat, registers: regs))
            processNotes()
            // As the kernel's dumper: siginfo (what `p $_siginfo` shows: the kernel's, or zeros,
            // si_signo 0, for a thread stopped without a signal), then the register sets.
            notes += ELF.note(name: "CORE", type: ntSigInfo, descriptor: regs.signalInfo ?? [UInt8](repeating: 0, count: 128))
            if let float = regs.floatingPoint {
                notes += ELF.note(name: "CORE", type: ntPRFPReg, descriptor: float)
            }
            if let extended = regs.extendedState, architecture == .x86_64 {
                notes += ELF.note(name: "LINUX", type: ntX86XState, descriptor: extended)
            }
        }
        if !missing.isEmpty {
            notes += ELF.note(name: procmemNoteName, type: ntRegistersAbsent, descriptor: missing)
        }
        return notes
    }

    /// `struct elf_prstatus`: siginfo (12), cursig (2+2), sigpend, sighold, pid, ppid, pgrp, sid,
    /// four timevals, `pr_reg` at offset 112, `pr_fpvalid`, padded to 8.
    static func prstatus(architecture: CoreArchitecture, tid: Int32, stat: TaskStat, registers: ThreadRegisters?) -> [UInt8] {
        var out = ELFBytes()
        out.zeros(12)  // pr_info
        out.u16(0)     // pr_cursig
        out.zeros(2)
        out.u64(0)     // pr_sigpend
        out.u64(0)     // pr_sighold
        out.i32(tid)
        out.i32(stat.ppid)
        out.i32(stat.pgrp)
        out.i32(stat.session)
        let ticks = UInt64(max(1, sysconf(Int32(_SC_CLK_TCK))))
        for value in [stat.utimeTicks, stat.stimeTicks, 0, 0] {
            out.u64(value / ticks)
            out.u64((value % ticks) * 1_000_000 / ticks)
        }
        let size = architecture.registersSize
        if let general = registers?.general {
            out.bytes.append(contentsOf: general.prefix(size))
            out.zeros(size - min(size, general.count))
        } else {
            out.zeros(size)
        }
        out.u32(registers?.floatingPoint == nil ? 0 : 1)  // pr_fpvalid
        out.align(8)
        return out.bytes
    }

    /// `struct elf_prpsinfo`: state, sname, zomb, nice, flag, uid, gid, pid, ppid, pgrp, sid,
    /// fname[16], psargs[80] (136 bytes).
    static func prpsinfo(pid: Int32, procDir: FileDescriptor) -> [UInt8] {
        let stat = TaskStat.read(procDir, "stat")
        let states: [Character] = ["R", "S", "D", "T", "Z", "W"]
        let stateIndex = states.firstIndex(of: stat.state) ?? 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        if case .success(let bytes) = procDir.readFile(relative: "status") {
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
                let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                if fields.count >= 2, fields[0] == "Uid:" { uid = UInt32(fields[1]) ?? 0 }
                if fields.count >= 2, fields[0] == "Gid:" { gid = UInt32(fields[1]) ?? 0 }
            }
        }
        var comm: [UInt8] = []
        if case .success(let bytes) = procDir.readFile(relative: "comm") { comm = Array(bytes.prefix { $0 != UInt8(ascii: "\n") }) }
        var args: [UInt8] = []
        if case .success(let bytes) = procDir.readFile(relative: "cmdline", limit: 4096) {
            args = bytes.map { $0 == 0 ? UInt8(ascii: " ") : $0 }
            while args.last == UInt8(ascii: " ") { args.removeLast() }
        }
        var out = ELFBytes()
        out.u8(UInt8(stateIndex))
        out.u8(UInt8(stat.state.asciiValue ?? UInt8(ascii: "R")))
        out.u8(stat.state == "Z" ? 1 : 0)
        out.u8(UInt8(bitPattern: stat.nice))
        out.zeros(4)
        out.u64(stat.flags)
        out.u32(uid)
        out.u32(gid)
        out.i32(pid)
        out.i32(stat.ppid)
        out.i32(stat.pgrp)
        out.i32(stat.session)
        out.chars(comm, size: 16)
        out.chars(args, size: 80)
        return out.bytes
    }

    /// `NT_FILE`: count, page size, then (start, end, offset in pages) per file mapping, then the
    /// NUL-terminated names.
    static func fileNote(_ map: MemoryMap) -> [UInt8] {
        let files = map.regions.filter { region in
            guard let path = region.path, region.inode != 0 || region.kind == .memfd else { return false }
            return path.hasPrefix("/")
        }
        let page = AddressSpace.pageSize
        var out = ELFBytes()
        out.u64(UInt64(files.count))
        out.u64(page)
        for region in files {
            out.u64(region.start)
            out.u64(region.end)
            out.u64(region.offset / page)
        }
        for region in files {
            out.bytes.append(contentsOf: Array(((region.path ?? "") + (region.isDeleted ? " (deleted)" : "")).utf8))
            out.u8(0)
        }
        return out.bytes
    }
}
