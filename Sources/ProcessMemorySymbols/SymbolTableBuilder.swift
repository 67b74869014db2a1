// Collecting a module's symbols straight from its ELF symbol tables: pure data, no system calls, so
// the fuzzer compiles it with the ELF reader and the table.

extension SymbolTable {
    /// Collects entries for a ``SymbolTable`` from ELF symbol tables without decoding a name: each
    /// table's string table is copied once and the entries point into it.
    struct Builder {
        private(set) var entries: [Entry] = []
        /// Starts with the empty name; every name added ends with a NUL, so the buffer does too.
        private(set) var nameBytes: [UInt8] = [0]

        /// Adds a symbol given with its name (taken whole: never cut at an `@`).
        mutating func add(_ symbol: Symbol) {
            let start = nameBytes.count
            nameBytes += symbol.name.utf8
            nameBytes.append(0)
            entries.append(Entry(value: symbol.value, size: symbol.size, name: UInt32(truncatingIfNeeded: start),
                                 kind: symbol.kind, binding: symbol.binding, source: symbol.source, endsAtVersion: false))
        }

        /// Adds `image`'s `.symtab` (as `symtabSource`) and then its `.dynsym`, or only tables of
        /// `SHT_SYMTAB` when `symtabOnly` (a debug file's `.dynsym` repeats the module's).
        mutating func add(_ image: ELFImage, symtabSource: Symbol.Source = .symtab, symtabOnly: Bool = false) throws(ELFError) {
            let tables = image.symbolTableSections.filter { !symtabOnly || $0.type == ELFConstants.SHT_SYMTAB }
                .sorted { $0.type == ELFConstants.SHT_SYMTAB && $1.type != ELFConstants.SHT_SYMTAB }
            for section in tables {
                try add(image, table: section, source: section.type == ELFConstants.SHT_SYMTAB ? symtabSource : .dynsym)
            }
        }

        /// Adds the defined symbols of the symbol table `section` with the rules of
        /// ``Symbol/init(_:source:)``, leaving out symbols of sections that are not loaded
        /// (no `SHF_ALLOC`), and checking what ``ELFImage/forEachSymbol(in:_:)`` checks; the
        /// string table must also end with a NUL (every name in it then does).
        mutating func add(_ image: ELFImage, table section: ELFSection, source: Symbol.Source) throws(ELFError) {
            guard section.type == ELFConstants.SHT_SYMTAB || section.type == ELFConstants.SHT_DYNSYM else {
                throw ELFError(.badField, "section \(section.index) (\(section.name)) is not a symbol table")
            }
            guard section.hasFileContents, section.size > 0 else { return }
            let data = image.data
            let is64 = image.header.is64Bit
            let entrySize = is64 ? 24 : 16
            guard section.entrySize >= UInt64(entrySize), section.entrySize <= 1 << 16 else {
                throw ELFError(.badField, "\(section.name): sh_entsize \(section.entrySize) is not a symbol entry size (\(entrySize) bytes)")
            }
            let count = section.size / section.entrySize
            guard count <= UInt64(ELFImage.maximumSymbols) else {
                throw ELFError(.hugeCount, "\(section.name) holds \(count) symbols, more than \(ELFImage.maximumSymbols)")
            }
            guard Int(section.link) < image.sections.count, section.link != 0 else {
                throw ELFError(.badField, "\(section.name): sh_link \(section.link) names no section (there are \(image.sections.count))")
            }
            let strings = image.sections[Int(section.link)]
            guard strings.type == ELFConstants.SHT_STRTAB else {
                throw ELFError(.badField, "\(section.name): its sh_link \(section.link) is not a string table")
            }
            let table = try data.range(section.offset, section.size, section.name)
            let names = strings.size == 0 || !strings.hasFileContents ? 0..<0 : try data.range(strings.offset, strings.size, strings.name)
            let bytes = data.bytes
            if let last = names.last, bytes[last] != 0 {
                throw ELFError(.badField, "\(strings.name): the string table does not end with a NUL, so its last name is unterminated")
            }
            let base = nameBytes.count
            guard UInt64(base) + UInt64(names.count) <= UInt64(UInt32.max) else {
                throw ELFError(.hugeCount, "\(strings.name): the names of this module's tables exceed 4 GiB")
            }
            nameBytes += bytes[names]
            let stride = Int(section.entrySize)
            let big = data.bigEndian
            let nameLimit = UInt64(names.count)
            entries.reserveCapacity(entries.count + Int(count))
            // Symbols in sections the program never loads (`.gnu.warning.*`, nm's type `n`) are no
            // addresses: their values are offsets in a section that is not in memory.
            let notLoaded = image.sections.map { $0.flags & 0x2 == 0 } // SHF_ALLOC
            var failure: ELFError?
            bytes.withUnsafeBytes { raw in
                // Fields loaded unaligned and swapped to the host's order when the file's differs.
                func load<T: FixedWidthInteger>(_ offset: Int, as _: T.Type) -> T {
                    let value = raw.loadUnaligned(fromByteOffset: offset, as: T.self)
                    return big ? T(bigEndian: value) : T(littleEndian: value)
                }
                for index in 1..<max(1, Int(count)) {
                    let at = table.lowerBound + index * stride
                    let nameOffset = UInt64(load(at, as: UInt32.self))
                    let info: UInt8
                    let shndx: UInt16
                    let value: UInt64
                    let size: UInt64
                    if is64 {
                        info = raw[at + 4]
                        shndx = load(at + 6, as: UInt16.self)
                        value = load(at + 8, as: UInt64.self)
                        size = load(at + 16, as: UInt64.self)
                    } else {
                        value = UInt64(load(at + 4, as: UInt32.self))
                        size = UInt64(load(at + 8, as: UInt32.self))
                        info = raw[at + 12]
                        shndx = load(at + 14, as: UInt16.self)
                    }
                    guard nameOffset < nameLimit || nameOffset == 0 else {
                        failure = ELFError(.outOfBounds, "\(section.name) entry \(index): name offset \(nameOffset) is past the string table's \(names.count) bytes")
                        return
                    }
                    // Undefined (imported), unnamed, section and file symbols name no address here.
                    guard shndx != ELFConstants.SHN_UNDEF, nameOffset != 0 else { continue }
                    let first = raw[names.lowerBound + Int(nameOffset)]
                    guard first != 0 else { continue }
                    let kind: Symbol.Kind
                    switch info & 0xf {
                    case 0: kind = .label
                    case 1: kind = .object
                    case 2: kind = .function
                    case 5: kind = .common
                    case 6: kind = .threadLocal
                    case 10: kind = .indirectFunction
                    default: continue
                    }
                    let binding: Symbol.Binding
                    switch info >> 4 {
                    case 0: binding = .local
                    case 1: binding = .global
                    case 2: binding = .weak
                    case 10: binding = .unique
                    default: continue
                    }
                    if shndx == ELFConstants.SHN_ABS && size == 0 { continue }
                    if shndx < 0xff00 && Int(shndx) < notLoaded.count && notLoaded[Int(shndx)] { continue }
                    entries.append(Entry(value: value, size: size, name: UInt32(base + Int(nameOffset)), kind: kind, binding: binding,
                                         source: source, endsAtVersion: first != UInt8(ascii: "@")))
                }
            }
            if let failure { throw failure }
        }

        /// The table: sorted, duplicates removed.
        func build() -> SymbolTable { SymbolTable(entries: entries, nameBytes: nameBytes) }
    }
}
