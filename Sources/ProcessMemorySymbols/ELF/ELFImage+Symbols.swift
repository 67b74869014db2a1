/// One entry of a symbol table (`Elf32_Sym` / `Elf64_Sym`), with its name resolved.
public struct ELFSymbol: Sendable, Hashable {
    /// The name from the table's linked string table.
    public var name: String
    /// `st_value`: the link-time address (add the module's load bias for the run-time address).
    public var value: UInt64
    /// `st_size` (0 when unknown).
    public var size: UInt64
    /// `st_info`'s low nibble: 0 `STT_NOTYPE`, 1 `STT_OBJECT`, 2 `STT_FUNC`, 3 `STT_SECTION`,
    /// 4 `STT_FILE`, 5 `STT_COMMON`, 6 `STT_TLS`, 10 `STT_GNU_IFUNC`.
    public var type: UInt8
    /// `st_info`'s high nibble: 0 `STB_LOCAL`, 1 `STB_GLOBAL`, 2 `STB_WEAK`, 10 `STB_GNU_UNIQUE`.
    public var binding: UInt8
    /// `st_other`'s low two bits: the visibility.
    public var visibility: UInt8
    /// `st_shndx`: 0 `SHN_UNDEF` (imported), 0xfff1 `SHN_ABS`, else the defining section.
    public var sectionIndex: UInt16

    /// Defined in this module (not `SHN_UNDEF`).
    public var isDefined: Bool { sectionIndex != ELFConstants.SHN_UNDEF }
}

extension ELFImage {
    /// The most symbols one table may hold (a large debug build has a few million).
    public static let maximumSymbols = 1 << 25

    /// The symbol tables: `.symtab` (`SHT_SYMTAB`) and `.dynsym` (`SHT_DYNSYM`) sections.
    public var symbolTableSections: [ELFSection] {
        sections.filter { $0.type == ELFConstants.SHT_SYMTAB || $0.type == ELFConstants.SHT_DYNSYM }
    }

    /// The entries of the symbol table `section` (`SHT_SYMTAB` or `SHT_DYNSYM`), entry 0 (the null
    /// symbol) left out; names come from the string table its `sh_link` names.
    ///
    /// - Throws: ``ELFError`` when the entry size is smaller than a symbol, the link names no string
    ///   table, a name lies outside the string table, or the count exceeds ``maximumSymbols``.
    public func symbols(in section: ELFSection) throws(ELFError) -> [ELFSymbol] {
        var symbols: [ELFSymbol] = []
        try forEachSymbol(in: section) { symbols.append($0) }
        return symbols
    }

    /// Calls `body` with each entry of the symbol table `section` (see ``symbols(in:)``).
    public func forEachSymbol(in section: ELFSection, _ body: (ELFSymbol) -> Void) throws(ELFError) {
        guard section.type == ELFConstants.SHT_SYMTAB || section.type == ELFConstants.SHT_DYNSYM else {
            throw ELFError(.badField, "section \(section.index) (\(section.name)) is not a symbol table")
        }
        guard section.hasFileContents, section.size > 0 else { return }
        let is64 = header.is64Bit
        let entry = is64 ? 24 : 16
        guard section.entrySize >= UInt64(entry), section.entrySize <= 1 << 16 else {
            throw ELFError(.badField, "\(section.name): sh_entsize \(section.entrySize) is not a symbol entry size (\(entry) bytes)")
        }
        let count = section.size / section.entrySize
        guard count <= UInt64(Self.maximumSymbols) else {
            throw ELFError(.hugeCount, "\(section.name) holds \(count) symbols, more than \(Self.maximumSymbols)")
        }
        guard Int(section.link) < sections.count, section.link != 0 else {
            throw ELFError(.badField, "\(section.name): sh_link \(section.link) names no section (there are \(sections.count))")
        }
        let strings = sections[Int(section.link)]
        guard strings.type == ELFConstants.SHT_STRTAB else {
            throw ELFError(.badField, "\(section.name): its sh_link \(section.link) is not a string table")
        }
        let table = try data.range(section.offset, section.size, section.name)
        let names = strings.size == 0 ? 0..<0 : try data.range(strings.offset, strings.size, strings.name)
        let stride = Int(section.entrySize)
        let bytes = data.bytes
        for index in 1..<max(1, Int(count)) {
            let base = table.lowerBound + index * stride
            let nameOffset = data.uncheckedUInt(base, 4)
            let info: UInt8
            let other: UInt8
            let shndx: UInt16
            let value: UInt64
            let size: UInt64
            if is64 {
                info = bytes[base + 4]
                other = bytes[base + 5]
                shndx = UInt16(truncatingIfNeeded: data.uncheckedUInt(base + 6, 2))
                value = data.uncheckedUInt(base + 8, 8)
                size = data.uncheckedUInt(base + 16, 8)
            } else {
                value = data.uncheckedUInt(base + 4, 4)
                size = data.uncheckedUInt(base + 8, 4)
                info = bytes[base + 12]
                other = bytes[base + 13]
                shndx = UInt16(truncatingIfNeeded: data.uncheckedUInt(base + 14, 2))
            }
            let name = nameOffset == 0 ? "" : try data.string(at: nameOffset, in: names, "\(section.name) entry \(index)")
            body(ELFSymbol(name: name, value: value, size: size, type: info & 0xf, binding: info >> 4,
                           visibility: other & 3, sectionIndex: shndx))
        }
    }
}

/// A `.gnu_debuglink` section: the file name of the separate debug file and the CRC-32 of its bytes.
public struct DebugLink: Sendable, Hashable {
    /// The debug file's name (no directory), as `objcopy --add-gnu-debuglink` stored it.
    public var fileName: String
    /// The CRC-32 (the gdb/zlib polynomial) of the whole debug file.
    public var crc: UInt32
}

extension ELFImage {
    /// The GNU build ID (`NT_GNU_BUILD_ID` in `.note.gnu.build-id`, or in any note section or
    /// `PT_NOTE` segment), or `nil` when the image has none.
    public func buildID() throws(ELFError) -> [UInt8]? {
        var regions: [(UInt64, UInt64, UInt64)] = [] // offset, size, alignment
        for section in sections where section.type == ELFConstants.SHT_NOTE && section.hasFileContents {
            regions.append((section.offset, section.size, section.alignment))
        }
        if regions.isEmpty {
            for segment in programHeaders where segment.type == ELFConstants.PT_NOTE {
                regions.append((segment.offset, segment.fileSize, segment.alignment))
            }
        }
        for (offset, size, alignment) in regions {
            let range = try data.range(offset, size, "a note")
            if let id = try note(in: range, alignment: alignment == 8 ? 8 : 4, owner: "GNU", type: ELFConstants.NT_GNU_BUILD_ID) {
                return id
            }
        }
        return nil
    }

    /// The descriptor of the first note named `owner` with `type` in `range` (elf(5) `Elf_Nhdr`).
    func note(in range: Range<Int>, alignment: Int, owner: String, type: UInt32) throws(ELFError) -> [UInt8]? {
        var offset = range.lowerBound
        func align(_ value: Int) -> Int { (value + alignment - 1) / alignment * alignment }
        while offset + 12 <= range.upperBound {
            let nameSize = Int(data.uncheckedUInt(offset, 4))
            let descSize = Int(data.uncheckedUInt(offset + 4, 4))
            let noteType = UInt32(data.uncheckedUInt(offset + 8, 4))
            let nameStart = offset + 12
            guard nameSize <= range.upperBound - nameStart else {
                throw ELFError(.outOfBounds, "a note's name (\(nameSize) bytes) runs past its section")
            }
            let descStart = align(nameStart + nameSize)
            guard descStart <= range.upperBound, descSize <= range.upperBound - descStart else {
                throw ELFError(.outOfBounds, "a note's descriptor (\(descSize) bytes) runs past its section")
            }
            var name = Array(data.bytes[nameStart..<(nameStart + nameSize)])
            if name.last == 0 { name.removeLast() }
            if noteType == type && name.elementsEqual(owner.utf8) {
                return Array(data.bytes[descStart..<(descStart + descSize)])
            }
            offset = align(descStart + descSize)
        }
        return nil
    }

    /// The `.gnu_debuglink` section's file name and CRC, or `nil` when there is none.
    public func debugLink() throws(ELFError) -> DebugLink? {
        guard let section = section(named: ".gnu_debuglink"), section.hasFileContents else { return nil }
        let range = try data.range(section.offset, section.size, ".gnu_debuglink")
        guard let nul = data.bytes[range].firstIndex(of: 0) else {
            throw ELFError(.badField, ".gnu_debuglink: the file name has no terminating NUL")
        }
        let crcOffset = (nul + 1 - range.lowerBound + 3) / 4 * 4 + range.lowerBound
        guard crcOffset + 4 <= range.upperBound else {
            throw ELFError(.outOfBounds, ".gnu_debuglink: the CRC lies past the section's \(range.count) bytes")
        }
        let name = String(decoding: data.bytes[range.lowerBound..<nul], as: UTF8.self)
        guard !name.isEmpty, !name.contains("/") else {
            throw ELFError(.badField, ".gnu_debuglink: '\(name)' is not a file name")
        }
        return DebugLink(fileName: name, crc: UInt32(data.uncheckedUInt(crcOffset, 4)))
    }

    /// The load bias of the image when one of its bytes at file offset `fileOffset` is mapped at
    /// `address`: the run-time address minus the link-time address, from the `PT_LOAD` segment that
    /// holds that offset (0 for a non-PIE executable loaded where it was linked).
    public func loadBias(fileOffset: UInt64, mappedAt address: UInt64) -> UInt64? {
        for segment in loadSegments where segment.fileSize > 0
            && fileOffset >= segment.offset && fileOffset - segment.offset < segment.fileSize {
            return address &- (segment.virtualAddress &+ (fileOffset - segment.offset))
        }
        // A mapping that starts on the page below the segment (the page-aligned start of its file range).
        for segment in loadSegments where segment.fileSize > 0 && fileOffset < segment.offset
            && segment.offset - fileOffset < 1 << 16 {
            return address &+ (segment.offset - fileOffset) &- segment.virtualAddress
        }
        return nil
    }
}
