// A bounds-checked ELF reader, written by hand: no ELF library is among the Swift packages this
// project can depend on (swift-system and swift-argument-parser are all it has), and the C ones
// (libelf, libbfd) would add a system dependency and parse untrusted files without Swift's checks.
//
// Every read goes through `ELFBytes`, which checks the offset and size against the image first and
// returns an `ELFError` instead of trapping. This file imports nothing, so the fuzzer
// (Fuzz/ElfReaderFuzz.swift) compiles it on its own.

/// The bytes of an ELF image with the byte order of its header, read only through checked accessors.
///
/// Either the whole file, or only some parts of it (``Part``s, the first at file offset 0): then
/// `bytes` holds the parts one after another and ``range(_:_:_:)`` turns a file range into the
/// range of `bytes` that holds it, or fails for bytes that were not read.
struct ELFBytes: Sendable {
    /// A range of the file held in `bytes`.
    struct Part: Sendable, Hashable {
        var fileOffset: Int
        var count: Int
        /// Where its first byte is in `bytes`.
        var position: Int
    }

    let bytes: [UInt8]
    let bigEndian: Bool
    /// The file's size (`bytes.count` for a whole file).
    let count: Int
    /// The parts read, by file offset; empty for a whole file.
    let parts: [Part]

    init(bytes: [UInt8], bigEndian: Bool) {
        self.bytes = bytes
        self.bigEndian = bigEndian
        count = bytes.count
        parts = []
    }

    init(parts: [Part], bytes: [UInt8], fileSize: Int, bigEndian: Bool) {
        self.bytes = bytes
        self.bigEndian = bigEndian
        count = fileSize
        self.parts = parts
    }

    /// `offset ..< offset + size` checked against the file's size, in file offsets.
    func fileRange(_ offset: UInt64, _ size: UInt64, _ what: @autoclosure () -> String) throws(ELFError) -> Range<Int> {
        let (end, overflow) = offset.addingReportingOverflow(size)
        guard !overflow, end <= UInt64(count) else {
            throw ELFError(.outOfBounds, "\(what()) at offset \(offset) with size \(size) ends past the image's \(count) bytes")
        }
        return Int(offset)..<Int(end)
    }

    /// `offset ..< offset + size` as the `Int` range of `bytes` that holds it, or `outOfBounds`
    /// naming `what` (past the file's end, or in a part of the file that was not read).
    func range(_ offset: UInt64, _ size: UInt64, _ what: @autoclosure () -> String) throws(ELFError) -> Range<Int> {
        let range = try fileRange(offset, size, what())
        guard !parts.isEmpty, !range.isEmpty else { return parts.isEmpty ? range : 0..<0 }
        for part in parts where part.fileOffset <= range.lowerBound && range.upperBound <= part.fileOffset + part.count {
            let start = part.position + (range.lowerBound - part.fileOffset)
            return start..<(start + range.count)
        }
        throw ELFError(.outOfBounds, "\(what()) at offset \(offset) with size \(size) lies in a part of the file that was not read")
    }

    /// An unsigned integer of `width` bytes (1, 2, 4 or 8) at `offset`, which the caller has checked.
    @inline(__always)
    func uncheckedUInt(_ offset: Int, _ width: Int) -> UInt64 {
        var value: UInt64 = 0
        if bigEndian {
            for index in 0..<width { value = value << 8 | UInt64(bytes[offset + index]) }
        } else {
            for index in stride(from: width - 1, through: 0, by: -1) { value = value << 8 | UInt64(bytes[offset + index]) }
        }
        return value
    }


    /// The NUL-terminated string at `offset` inside `table` (a string table's byte range).
    func string(at offset: UInt64, in table: Range<Int>, _ what: @autoclosure () -> String) throws(ELFError) -> String {
        guard offset < UInt64(table.count) else {
            throw ELFError(.outOfBounds, "\(what()): name offset \(offset) is past the string table's \(table.count) bytes")
        }
        let start = table.lowerBound + Int(offset)
        let end = bytes.withUnsafeBufferPointer { buffer -> Int in
            var end = start
            while end < table.upperBound && buffer[end] != 0 { end += 1 }
            return end
        }
        guard end < table.upperBound else {
            throw ELFError(.badField, "\(what()): the name at offset \(offset) has no terminating NUL inside its string table")
        }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }
}

/// The ELF header fields the reader uses (`Elf32_Ehdr` / `Elf64_Ehdr`, elf(5)).
public struct ELFHeader: Sendable, Hashable {
    /// `ELFCLASS64` rather than `ELFCLASS32`.
    public var is64Bit: Bool
    /// `ELFDATA2MSB` rather than `ELFDATA2LSB`.
    public var isBigEndian: Bool
    /// `e_type`: 2 `ET_EXEC`, 3 `ET_DYN` (shared objects and PIE executables), 4 `ET_CORE`, 1 `ET_REL`.
    public var type: UInt16
    /// `e_machine` (62 is x86-64, 183 AArch64).
    public var machine: UInt16
    /// `e_entry`.
    public var entry: UInt64
    /// `e_phoff`, `e_phentsize`, `e_phnum` (after `PN_XNUM` extension).
    public var programHeaderOffset: UInt64
    public var programHeaderEntrySize: UInt16
    public var programHeaderCount: Int
    /// `e_shoff`, `e_shentsize`, `e_shnum` (after extension through section 0's `sh_size`).
    public var sectionHeaderOffset: UInt64
    public var sectionHeaderEntrySize: UInt16
    public var sectionHeaderCount: Int
    /// `e_shstrndx` (after extension through section 0's `sh_link`).
    public var sectionNameTableIndex: Int
}

/// One section header (`Elf32_Shdr` / `Elf64_Shdr`).
public struct ELFSection: Sendable, Hashable {
    /// Index in the section header table.
    public var index: Int
    /// The name from the section-name string table (empty when the table is missing).
    public var name: String
    /// `sh_type`: 2 `SHT_SYMTAB`, 11 `SHT_DYNSYM`, 3 `SHT_STRTAB`, 7 `SHT_NOTE`, 8 `SHT_NOBITS`.
    public var type: UInt32
    /// `sh_flags`.
    public var flags: UInt64
    /// `sh_addr`.
    public var address: UInt64
    /// `sh_offset`.
    public var offset: UInt64
    /// `sh_size`.
    public var size: UInt64
    /// `sh_link`.
    public var link: UInt32
    /// `sh_info`.
    public var info: UInt32
    /// `sh_addralign`.
    public var alignment: UInt64
    /// `sh_entsize`.
    public var entrySize: UInt64

    /// `SHT_NOBITS` (`.bss`, and every section of a debug file made by `objcopy --only-keep-debug`
    /// that kept no contents): occupies no bytes of the file.
    public var hasFileContents: Bool { type != ELFConstants.SHT_NOBITS && type != ELFConstants.SHT_NULL }
}

/// One program header (`Elf32_Phdr` / `Elf64_Phdr`).
public struct ELFProgramHeader: Sendable, Hashable {
    /// `p_type`: 1 `PT_LOAD`, 2 `PT_DYNAMIC`, 4 `PT_NOTE`.
    public var type: UInt32
    /// `p_flags`: 1 execute, 2 write, 4 read.
    public var flags: UInt32
    /// `p_offset`.
    public var offset: UInt64
    /// `p_vaddr`.
    public var virtualAddress: UInt64
    /// `p_filesz`.
    public var fileSize: UInt64
    /// `p_memsz`.
    public var memorySize: UInt64
    /// `p_align`.
    public var alignment: UInt64
}

/// The numbers from elf.h that the reader uses.
public enum ELFConstants {
    public static let SHT_NULL: UInt32 = 0
    public static let SHT_SYMTAB: UInt32 = 2
    public static let SHT_STRTAB: UInt32 = 3
    public static let SHT_NOTE: UInt32 = 7
    public static let SHT_NOBITS: UInt32 = 8
    public static let SHT_DYNSYM: UInt32 = 11
    public static let PT_LOAD: UInt32 = 1
    public static let PT_NOTE: UInt32 = 4
    public static let ET_EXEC: UInt16 = 2
    public static let ET_DYN: UInt16 = 3
    public static let NT_GNU_BUILD_ID: UInt32 = 3
    public static let SHN_UNDEF: UInt16 = 0
    public static let SHN_LORESERVE: UInt16 = 0xff00
    public static let SHN_ABS: UInt16 = 0xfff1
    public static let SHN_COMMON: UInt16 = 0xfff2
    public static let SHN_XINDEX: UInt16 = 0xffff
}

/// A parsed ELF image: its header, section headers and program headers, all checked.
///
/// Accepts ELF32 and ELF64, little- and big-endian. Refuses, with an ``ELFError``: an image shorter
/// than its headers, tables or sections that reach past the end, sections with contents that
/// overlap each other or the header tables, entry sizes smaller than the structure, and counts
/// above ``maximumSections`` / ``maximumProgramHeaders``. Nothing here traps on any input.
public struct ELFImage: Sendable {
    /// The most section headers accepted (real files have well under a thousand).
    public static let maximumSections = 1 << 16
    /// The most program headers accepted.
    public static let maximumProgramHeaders = 1 << 12

    let data: ELFBytes
    /// The ELF header.
    public let header: ELFHeader
    /// The section headers, in table order (empty for an image without them, such as a core file).
    public let sections: [ELFSection]
    /// The program headers, in table order.
    public let programHeaders: [ELFProgramHeader]

    /// The image's size in bytes.
    public var size: Int { data.count }

    /// Parses and checks the headers of `bytes`.
    public init(bytes: [UInt8]) throws(ELFError) {
        try self.init(bytes: bytes, fileSize: bytes.count, parts: nil)
    }

    /// Parses and checks the headers of a file of `fileSize` bytes of which only `parts` were
    /// read, into `bytes` one after another (the first part at file offset 0, holding the ELF
    /// header); `nil` parts: `bytes` is the whole file.
    init(bytes: [UInt8], fileSize: Int, parts: [ELFBytes.Part]?) throws(ELFError) {
        let headBytes = parts?.first.map { $0.fileOffset == 0 ? $0.count : 0 } ?? bytes.count
        guard fileSize >= 16, headBytes >= min(fileSize, 64) else {
            throw ELFError(bytes.count >= 4 && bytes[0..<4].elementsEqual([0x7f, 0x45, 0x4c, 0x46]) ? .truncatedHeader : .notELF,
                           "the image has \(fileSize) bytes, fewer than e_ident's 16")
        }
        guard bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46 else {
            throw ELFError(.notELF, "the image does not start with \\x7fELF")
        }
        let is64: Bool
        switch bytes[4] {
        case 1: is64 = false
        case 2: is64 = true
        default: throw ELFError(.unsupported, "EI_CLASS \(bytes[4]) is neither ELFCLASS32 (1) nor ELFCLASS64 (2)")
        }
        let big: Bool
        switch bytes[5] {
        case 1: big = false
        case 2: big = true
        default: throw ELFError(.unsupported, "EI_DATA \(bytes[5]) is neither ELFDATA2LSB (1) nor ELFDATA2MSB (2)")
        }
        guard bytes[6] == 1 else { throw ELFError(.unsupported, "EI_VERSION \(bytes[6]) is not EV_CURRENT (1)") }
        let headerSize = is64 ? 64 : 52
        guard fileSize >= headerSize else {
            throw ELFError(.truncatedHeader, "the image has \(fileSize) bytes, fewer than the \(headerSize)-byte ELF header")
        }
        let data = parts.map { ELFBytes(parts: $0, bytes: bytes, fileSize: fileSize, bigEndian: big) }
            ?? ELFBytes(bytes: bytes, bigEndian: big)
        self.data = data
        let word = is64 ? 8 : 4
        let u16 = { (offset: Int) in UInt16(truncatingIfNeeded: data.uncheckedUInt(offset, 2)) }
        let type = u16(16)
        let machine = u16(18)
        let entry = data.uncheckedUInt(24, word)
        let phoff = data.uncheckedUInt(24 + word, word)
        let shoff = data.uncheckedUInt(24 + 2 * word, word)
        let fieldBase = 24 + 3 * word + 4 // after e_flags
        let phentsize = u16(fieldBase + 2)
        var phnum = Int(u16(fieldBase + 4))
        let shentsize = u16(fieldBase + 6)
        var shnum = Int(u16(fieldBase + 8))
        var shstrndx = Int(u16(fieldBase + 10))

        let sectionEntry = is64 ? 64 : 40
        let programEntry = is64 ? 56 : 32
        // Section 0 carries the real counts when they do not fit the header (elf(5), "PN_XNUM").
        if shoff != 0 {
            guard Int(shentsize) >= sectionEntry else {
                throw ELFError(.badField, "e_shentsize \(shentsize) is smaller than a section header (\(sectionEntry) bytes)")
            }
            guard let first = try? data.range(shoff, UInt64(sectionEntry), "section header 0") else {
                throw ELFError(.truncatedHeader, "section header 0 at offset \(shoff) ends past the image's \(fileSize) bytes")
            }
            let sizeField = data.uncheckedUInt(first.lowerBound + (is64 ? 32 : 20), word)
            let linkField = data.uncheckedUInt(first.lowerBound + (is64 ? 40 : 24), 4)
            let infoField = data.uncheckedUInt(first.lowerBound + (is64 ? 44 : 28), 4)
            if shnum == 0 {
                guard sizeField <= UInt64(Self.maximumSections) else {
                    throw ELFError(.hugeCount, "section 0's sh_size says \(sizeField) sections, more than \(Self.maximumSections)")
                }
                shnum = Int(sizeField)
            }
            if shstrndx == Int(ELFConstants.SHN_XINDEX) { shstrndx = Int(truncatingIfNeeded: min(linkField, UInt64(Int32.max))) }
            if phnum == 0xffff {
                guard infoField <= UInt64(Self.maximumProgramHeaders) else {
                    throw ELFError(.hugeCount, "section 0's sh_info says \(infoField) program headers, more than \(Self.maximumProgramHeaders)")
                }
                phnum = Int(infoField)
            }
        } else {
            shnum = 0
        }
        guard shnum <= Self.maximumSections else {
            throw ELFError(.hugeCount, "\(shnum) sections, more than \(Self.maximumSections)")
        }
        guard phnum <= Self.maximumProgramHeaders else {
            throw ELFError(.hugeCount, "\(phnum) program headers, more than \(Self.maximumProgramHeaders)")
        }
        if phnum > 0 {
            guard Int(phentsize) >= programEntry else {
                throw ELFError(.badField, "e_phentsize \(phentsize) is smaller than a program header (\(programEntry) bytes)")
            }
        }
        let phTable = try Self.table(data, phoff, count: phnum, entrySize: Int(phentsize), "the program header table")
        let shTable = try Self.table(data, shoff, count: shnum, entrySize: Int(shentsize), "the section header table")

        var programHeaders: [ELFProgramHeader] = []
        programHeaders.reserveCapacity(phnum)
        for index in 0..<phnum {
            let base = phTable.lowerBound + index * Int(phentsize)
            let rd = { (offset: Int, width: Int) in data.uncheckedUInt(base + offset, width) }
            if is64 {
                programHeaders.append(ELFProgramHeader(type: UInt32(rd(0, 4)), flags: UInt32(rd(4, 4)), offset: rd(8, 8),
                                                       virtualAddress: rd(16, 8), fileSize: rd(32, 8), memorySize: rd(40, 8),
                                                       alignment: rd(48, 8)))
            } else {
                programHeaders.append(ELFProgramHeader(type: UInt32(rd(0, 4)), flags: UInt32(rd(24, 4)), offset: rd(4, 4),
                                                       virtualAddress: rd(8, 4), fileSize: rd(16, 4), memorySize: rd(20, 4),
                                                       alignment: rd(28, 4)))
            }
        }

        var sections: [ELFSection] = []
        var nameOffsets: [UInt64] = []
        sections.reserveCapacity(shnum)
        let o = is64 ? [0, 4, 8, 16, 24, 32, 40, 44, 48, 56] : [0, 4, 8, 12, 16, 20, 24, 28, 32, 36]
        for index in 0..<shnum {
            let base = shTable.lowerBound + index * Int(shentsize)
            let rd = { (offset: Int, width: Int) in data.uncheckedUInt(base + offset, width) }
            sections.append(ELFSection(index: index, name: "", type: UInt32(rd(o[1], 4)), flags: rd(o[2], word),
                                       address: rd(o[3], word), offset: rd(o[4], word), size: rd(o[5], word),
                                       link: UInt32(rd(o[6], 4)), info: UInt32(rd(o[7], 4)), alignment: rd(o[8], word),
                                       entrySize: rd(o[9], word)))
            nameOffsets.append(rd(o[0], 4))
        }
        // Contents in bounds, and no two sections (nor a section and a header table) share bytes.
        // Owners: -1 the ELF header, -2 the program header table, -3 the section header table.
        var occupied: [(range: Range<Int>, owner: Int)] = [(0..<headerSize, -1)]
        // In file offsets (the tables were read, so they lie inside the file).
        if !phTable.isEmpty { occupied.append((Int(phoff)..<(Int(phoff) + phTable.count), -2)) }
        if !shTable.isEmpty { occupied.append((Int(shoff)..<(Int(shoff) + shTable.count), -3)) }
        for section in sections where section.hasFileContents && section.size > 0 {
            let range = try data.fileRange(section.offset, section.size, "section \(section.index)")
            occupied.append((range, section.index))
        }
        occupied.sort { $0.range.lowerBound < $1.range.lowerBound }
        func describe(_ owner: Int) -> String {
            switch owner {
            case -1: return "the ELF header"
            case -2: return "the program header table"
            case -3: return "the section header table"
            default: return "section \(owner)"
            }
        }
        for index in occupied.indices.dropFirst() where occupied[index].range.lowerBound < occupied[index - 1].range.upperBound {
            throw ELFError(.overlappingSections, "\(describe(occupied[index].owner)) (bytes \(occupied[index].range)) overlaps \(describe(occupied[index - 1].owner)) (bytes \(occupied[index - 1].range))")
        }
        // Names, from the section-name string table when there is a valid one.
        if shnum > 0 {
            guard shstrndx < shnum || shstrndx == 0 else {
                throw ELFError(.badField, "e_shstrndx \(shstrndx) names no section (there are \(shnum))")
            }
            let names = sections[shstrndx]
            if shstrndx != 0, names.type == ELFConstants.SHT_STRTAB, names.size > 0 {
                let table = try data.range(names.offset, names.size, "the section-name table")
                for index in sections.indices {
                    sections[index].name = try data.string(at: nameOffsets[index], in: table, "the name of section \(index)")
                }
            }
        }
        self.header = ELFHeader(is64Bit: is64, isBigEndian: big, type: type, machine: machine, entry: entry,
                                programHeaderOffset: phoff, programHeaderEntrySize: phentsize, programHeaderCount: phnum,
                                sectionHeaderOffset: shoff, sectionHeaderEntrySize: shentsize, sectionHeaderCount: shnum,
                                sectionNameTableIndex: shstrndx)
        self.sections = sections
        self.programHeaders = programHeaders
    }

    private static func table(_ data: ELFBytes, _ offset: UInt64, count: Int, entrySize: Int, _ what: String) throws(ELFError) -> Range<Int> {
        guard count > 0 else { return 0..<0 }
        let total = UInt64(count) * UInt64(entrySize) // both below 2^16: cannot overflow
        do {
            return try data.range(offset, total, what)
        } catch {
            throw ELFError(.truncatedHeader, "\(what) (\(count) entries of \(entrySize) bytes at offset \(offset)) ends past the image's \(data.count) bytes")
        }
    }

    /// The first section called `name`.
    public func section(named name: String) -> ELFSection? {
        sections.first { $0.name == name }
    }

    /// The bytes of `section` (empty for `SHT_NOBITS`); its bounds were checked when parsing.
    public func contents(of section: ELFSection) -> ArraySlice<UInt8> {
        guard section.hasFileContents, section.size > 0,
              let range = try? data.range(section.offset, section.size, "section") else { return [] }
        return data.bytes[range]
    }

    /// `ET_DYN`: a shared object or a position-independent executable, loaded at a bias chosen at run time.
    public var isPositionIndependent: Bool { header.type == ELFConstants.ET_DYN }

    /// The loadable segments (`PT_LOAD`), in table order.
    public var loadSegments: [ELFProgramHeader] { programHeaders.filter { $0.type == ELFConstants.PT_LOAD } }
}
