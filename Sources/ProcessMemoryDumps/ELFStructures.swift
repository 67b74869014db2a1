import ProcessMemoryCore
import SystemPackage
/// Little-endian byte building for ELF structures.
struct ELFBytes {
    var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func i32(_ value: Int32) { u32(UInt32(bitPattern: value)) }
    mutating func zeros(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: max(0, count))) }
    /// `text` as a fixed-size, NUL-padded (and truncated) char array.
    mutating func chars(_ text: [UInt8], size: Int) {
        let kept = text.prefix(size - 1)
        bytes.append(contentsOf: kept)
        zeros(size - kept.count)
    }
    /// Pads to a multiple of `alignment`.
    mutating func align(_ alignment: Int) { zeros((alignment - bytes.count % alignment) % alignment) }
}

/// The machine a core file describes: `e_machine` and the size of `elf_prstatus`'s register set.
enum CoreArchitecture {
    case x86_64
    case aarch64

    /// This process's architecture, or `nil` where core files are not supported.
    static var current: CoreArchitecture? {
        #if arch(x86_64)
        return .x86_64
        #elseif arch(arm64)
        return .aarch64
        #else
        return nil
        #endif
    }

    /// `EM_X86_64` (62) or `EM_AARCH64` (183).
    var machine: UInt16 { self == .x86_64 ? 62 : 183 }
    /// `sizeof(elf_gregset_t)`: 27 registers on x86_64 (`struct user_regs_struct`), 34 on arm64
    /// (`struct user_pt_regs`: x0–x30, sp, pc, pstate).
    var registersSize: Int { self == .x86_64 ? 27 * 8 : 34 * 8 }
    /// The offset of `pr_reg` in `struct elf_prstatus`, the same on both (after siginfo, cursig,
    /// sigpend, sighold, four ids and four timevals).
    var registersOffset: Int { 112 }
    /// `sizeof(struct elf_prstatus)`: `pr_reg`, `int pr_fpvalid`, padded to 8 bytes.
    var prstatusSize: Int { (registersOffset + registersSize + 4 + 7) / 8 * 8 }
    /// The size of the `NT_PRFPREG` descriptor: `struct user_fpregs_struct` (512) on x86_64,
    /// `struct user_fpsimd_state` (32 × 16-byte V registers, fpsr, fpcr, 8 reserved: 528) on arm64.
    var floatingPointSize: Int { self == .x86_64 ? 512 : 528 }
}

/// ELF64 constants and headers of a core file (`<elf.h>`).
enum ELF {
    static let headerSize = 64
    static let programHeaderSize = 56
    static let sectionHeaderSize = 64
    static let typeCore: UInt16 = 4
    static let ptLoad: UInt32 = 1
    static let ptNote: UInt32 = 4
    static let pfX: UInt32 = 1
    static let pfW: UInt32 = 2
    static let pfR: UInt32 = 4
    /// `PN_XNUM`: more program headers than `e_phnum` holds; the count is in section 0's `sh_info`.
    static let pnXNum = 0xffff

    /// `Elf64_Phdr`.
    struct ProgramHeader {
        var type: UInt32
        var flags: UInt32
        var offset: UInt64
        var virtualAddress: UInt64
        var fileSize: UInt64
        var memorySize: UInt64
        var alignment: UInt64

        func write(into out: inout ELFBytes) {
            out.u32(type)
            out.u32(flags)
            out.u64(offset)
            out.u64(virtualAddress)
            out.u64(0)  // p_paddr
            out.u64(fileSize)
            out.u64(memorySize)
            out.u64(alignment)
        }
    }

    /// `Elf64_Ehdr` of an `ET_CORE` file; with more than 65534 program headers, `e_phnum` is
    /// `PN_XNUM` and `sectionHeaderOffset` points at the one section header holding the count.
    static func header(machine: UInt16, programHeaderOffset: UInt64, programHeaderCount: Int,
                       sectionHeaderOffset: UInt64) -> [UInt8] {
        var out = ELFBytes()
        out.bytes.append(contentsOf: [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0])  // magic, ELFCLASS64, LSB, EV_CURRENT, SYSV
        out.zeros(8)
        out.u16(typeCore)
        out.u16(machine)
        out.u32(1)  // e_version
        out.u64(0)  // e_entry
        out.u64(programHeaderOffset)
        let extended = programHeaderCount >= pnXNum
        out.u64(extended ? sectionHeaderOffset : 0)
        out.u32(0)  // e_flags
        out.u16(UInt16(headerSize))
        out.u16(UInt16(programHeaderSize))
        out.u16(extended ? UInt16(pnXNum) : UInt16(programHeaderCount))
        out.u16(extended ? UInt16(sectionHeaderSize) : 0)
        out.u16(extended ? 1 : 0)  // e_shnum
        out.u16(0)  // e_shstrndx
        return out.bytes
    }

    /// Section header 0 carrying the real program-header count in `sh_info` (for `PN_XNUM`).
    static func extendedCountSection(programHeaderCount: Int) -> [UInt8] {
        var out = ELFBytes()
        out.zeros(44)  // sh_name, sh_type (4 each), sh_flags, sh_addr, sh_offset, sh_size (8 each), sh_link
        out.u32(UInt32(programHeaderCount))   // sh_info
        out.zeros(16)                         // sh_addralign, sh_entsize
        return out.bytes
    }

    /// One note: `Elf64_Nhdr`, the name and the descriptor, each padded to 4 bytes.
    static func note(name: String, type: UInt32, descriptor: [UInt8]) -> [UInt8] {
        var out = ELFBytes()
        let nameBytes = Array(name.utf8) + [0]
        out.u32(UInt32(nameBytes.count))
        out.u32(UInt32(descriptor.count))
        out.u32(type)
        out.bytes.append(contentsOf: nameBytes)
        out.align(4)
        out.bytes.append(contentsOf: descriptor)
        out.align(4)
        return out.bytes
    }
}
