import ProcessMemoryCore
import ProcessMemorySymbols
/// Writes small ELF relocatable images by hand, in either class and byte order, for the reader's
/// unit tests: a null section, .text (16 bytes), .data (8 bytes), .symtab, .strtab, .shstrtab, an
/// optional .note.gnu.build-id and .gnu_debuglink, the section header table last.
struct ELFBuilder {
    struct Sym {
        var name: String
        var value: UInt64
        var size: UInt64
        var info: UInt8      // (binding << 4) | type
        var shndx: UInt16
    }

    var is64 = true
    var bigEndian = false
    var symbols: [Sym] = [
        Sym(name: "compute", value: 0x1000, size: 16, info: 0x12, shndx: 1),
        Sym(name: "g_world", value: 0x2000, size: 8, info: 0x11, shndx: 2),
        Sym(name: "s_local", value: 0x2004, size: 4, info: 0x01, shndx: 2),
    ]
    var buildID: [UInt8]? = [0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04]
    var debugLink: (String, UInt32)? = ("prog.debug", 0x1234_5678)

    /// Section layout of the last `build()`: name → (header offset in the file, contents offset).
    private(set) var sectionHeaderOffset = 0
    private(set) var sectionIndex: [String: Int] = [:]

    var sectionEntrySize: Int { is64 ? 64 : 40 }
    var symbolEntrySize: Int { is64 ? 24 : 16 }

    private func put(_ value: UInt64, _ width: Int, into bytes: inout [UInt8]) {
        for index in 0..<width {
            let shift = bigEndian ? (width - 1 - index) * 8 : index * 8
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
        }
    }

    private func align(_ bytes: inout [UInt8], _ alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }

    mutating func build() -> [UInt8] {
        let word = is64 ? 8 : 4
        let headerSize = is64 ? 64 : 52
        var file = [UInt8](repeating: 0, count: headerSize)
        struct Section { var name: String; var type: UInt32; var offset: Int; var size: Int; var link: UInt32; var info: UInt32; var align: UInt64; var entsize: UInt64; var flags: UInt64 }
        var sections: [Section] = [Section(name: "", type: 0, offset: 0, size: 0, link: 0, info: 0, align: 0, entsize: 0, flags: 0)]
        func add(_ name: String, _ type: UInt32, _ contents: [UInt8], link: UInt32 = 0, info: UInt32 = 0, align: Int = 1, entsize: Int = 0, flags: UInt64 = 0) {
            self.align(&file, max(align, 1))
            sections.append(Section(name: name, type: type, offset: file.count, size: contents.count, link: link, info: info,
                                    align: UInt64(align), entsize: UInt64(entsize), flags: flags))
            file += contents
        }
        add(".text", 1, [UInt8](repeating: 0xc3, count: 16), align: 16, flags: 6)
        add(".data", 1, [UInt8](repeating: 0, count: 8), align: 8, flags: 3)
        // .strtab
        var strtab: [UInt8] = [0]
        var nameOffsets: [Int] = []
        for symbol in symbols {
            nameOffsets.append(strtab.count)
            strtab += Array(symbol.name.utf8) + [0]
        }
        // .symtab
        var symtab = [UInt8](repeating: 0, count: symbolEntrySize) // the null symbol
        for (index, symbol) in symbols.enumerated() {
            var entry: [UInt8] = []
            put(UInt64(nameOffsets[index]), 4, into: &entry)
            if is64 {
                entry.append(symbol.info); entry.append(0); put(UInt64(symbol.shndx), 2, into: &entry)
                put(symbol.value, 8, into: &entry); put(symbol.size, 8, into: &entry)
            } else {
                put(symbol.value, 4, into: &entry); put(symbol.size, 4, into: &entry)
                entry.append(symbol.info); entry.append(0); put(UInt64(symbol.shndx), 2, into: &entry)
            }
            symtab += entry
        }
        let symtabIndex = sections.count
        add(".symtab", 2, symtab, link: UInt32(symtabIndex + 1), info: 1, align: word, entsize: symbolEntrySize)
        add(".strtab", 3, strtab)
        if let buildID {
            var note: [UInt8] = []
            put(4, 4, into: &note); put(UInt64(buildID.count), 4, into: &note); put(3, 4, into: &note)
            note += Array("GNU".utf8) + [0] + buildID
            add(".note.gnu.build-id", 7, note, align: 4)
        }
        if let (name, crc) = debugLink {
            var link = Array(name.utf8) + [0]
            while link.count % 4 != 0 { link.append(0) }
            put(UInt64(crc), 4, into: &link)
            add(".gnu_debuglink", 1, link, align: 4)
        }
        var shstrtab: [UInt8] = [0]
        var shNames: [Int] = [0]
        for section in sections.dropFirst() {
            shNames.append(shstrtab.count)
            shstrtab += Array(section.name.utf8) + [0]
        }
        shNames.append(shstrtab.count)
        shstrtab += Array(".shstrtab".utf8) + [0]
        let shstrndx = sections.count
        add(".shstrtab", 3, shstrtab)
        align(&file, 8)
        sectionHeaderOffset = file.count
        sectionIndex = [:]
        for (index, section) in sections.enumerated() {
            sectionIndex[section.name] = index
            var header: [UInt8] = []
            put(UInt64(shNames[index]), 4, into: &header)
            put(UInt64(section.type), 4, into: &header)
            put(section.flags, word, into: &header)
            put(0, word, into: &header) // sh_addr
            put(UInt64(section.offset), word, into: &header)
            put(UInt64(section.size), word, into: &header)
            put(UInt64(section.link), 4, into: &header)
            put(UInt64(section.info), 4, into: &header)
            put(section.align, word, into: &header)
            put(section.entsize, word, into: &header)
            file += header
        }
        // The ELF header.
        var header: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, bigEndian ? 2 : 1, 1, 0]
        header += [UInt8](repeating: 0, count: 8)
        put(1, 2, into: &header)                       // e_type ET_REL
        put(is64 ? 62 : 3, 2, into: &header)           // e_machine
        put(1, 4, into: &header)                       // e_version
        put(0, word, into: &header)                    // e_entry
        put(0, word, into: &header)                    // e_phoff
        put(UInt64(sectionHeaderOffset), word, into: &header)
        put(0, 4, into: &header)                       // e_flags
        put(UInt64(headerSize), 2, into: &header)
        put(0, 2, into: &header)                       // e_phentsize
        put(0, 2, into: &header)                       // e_phnum
        put(UInt64(sectionEntrySize), 2, into: &header)
        put(UInt64(sections.count), 2, into: &header)
        put(UInt64(shstrndx), 2, into: &header)
        file.replaceSubrange(0..<headerSize, with: header)
        return file
    }

    /// Overwrites `width` bytes at `offset` with `value` in this builder's byte order.
    func patch(_ bytes: inout [UInt8], at offset: Int, _ value: UInt64, width: Int) {
        var encoded: [UInt8] = []
        put(value, width, into: &encoded)
        bytes.replaceSubrange(offset..<(offset + width), with: encoded)
    }

    /// The file offset of field `field` (byte offset within the header) of section `name`'s header.
    func sectionField(_ name: String, _ field: Int) -> Int {
        sectionHeaderOffset + (sectionIndex[name] ?? 0) * sectionEntrySize + field
    }

    /// Byte offsets of section header fields: (sh_offset, sh_size, sh_link, sh_entsize).
    var fieldOffsets: (offset: Int, size: Int, link: Int, entsize: Int) {
        is64 ? (24, 32, 40, 56) : (16, 20, 24, 36)
    }
}
