// Reading only the parts of an ELF file that symbols need, so that a 10 MB library costs its
// headers and symbol tables rather than its code and data. Imports nothing: the fuzzer compiles it
// with the reader.

extension ELFImage {
    /// The image of a file of `fileSize` bytes from the parts that symbol lookups use, read with
    /// `readInto`: the ELF header and program headers (the file's first page), the
    /// section headers, the section names, every `.symtab` and `.dynsym` with its string table, the
    /// note sections (or `PT_NOTE` segments) for the build ID, `.gnu_debuglink` and
    /// `.gnu_debugdata`. Nearby parts are read together. `readInto(offset, buffer)` fills `buffer`
    /// from `offset` and returns the bytes read, or `nil` on an error.
    ///
    /// Returns `nil` when the file is better read whole: it has no section headers, uses extended
    /// counts, has headers or wanted sections outside the file (the whole-file parser then says
    /// what is wrong), the parts would be half the file or more, or a read comes back short.
    public static func readingSymbolParts(fileSize: Int, readInto: (_ offset: Int, _ buffer: UnsafeMutableRawBufferPointer) -> Int?) -> ELFImage? {
        func read(_ offset: Int, _ count: Int) -> [UInt8]? {
            var complete = false
            let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                initialized = min(count, max(0, readInto(offset, UnsafeMutableRawBufferPointer(buffer)) ?? 0))
                complete = initialized == count
            }
            return complete ? bytes : nil
        }
        let page = 4096
        let headCount = min(fileSize, page)
        guard headCount >= 64, let head = read(0, headCount), head.count == headCount,
              head[0] == 0x7f, head[1] == 0x45, head[2] == 0x4c, head[3] == 0x46,
              head[4] == 1 || head[4] == 2, head[5] == 1 || head[5] == 2 else { return nil }
        let is64 = head[4] == 2
        let big = head[5] == 2
        func field(_ bytes: [UInt8], _ offset: Int, _ width: Int) -> UInt64 {
            var value: UInt64 = 0
            for index in 0..<width {
                let byte = UInt64(bytes[offset + (big ? index : width - 1 - index)])
                value = value << 8 | byte
            }
            return value
        }
        let word = is64 ? 8 : 4
        let phoff = field(head, 24 + word, word)
        let shoff = field(head, 24 + 2 * word, word)
        let fieldBase = 24 + 3 * word + 4
        let phentsize = Int(field(head, fieldBase + 2, 2))
        let phnum = Int(field(head, fieldBase + 4, 2))
        let shentsize = Int(field(head, fieldBase + 6, 2))
        let shnum = Int(field(head, fieldBase + 8, 2))
        let shstrndx = Int(field(head, fieldBase + 10, 2))
        let sectionEntry = is64 ? 64 : 40
        let programEntry = is64 ? 56 : 32
        guard shoff != 0, shnum > 0, phnum != 0xffff, shstrndx < shnum, shentsize >= sectionEntry,
              phnum == 0 || phentsize >= programEntry else { return nil }
        func inFile(_ offset: UInt64, _ size: UInt64) -> Bool {
            let (end, overflow) = offset.addingReportingOverflow(size)
            return !overflow && end <= UInt64(fileSize)
        }
        let phSize = UInt64(phnum * phentsize)
        let shSize = UInt64(shnum * shentsize)
        guard inFile(phoff, phSize), inFile(shoff, shSize) else { return nil }
        guard let table = read(Int(shoff), Int(shSize)), table.count == Int(shSize) else { return nil }

        // Each section's type, file range and link.
        struct Header { var type: UInt32; var offset: UInt64; var size: UInt64; var link: Int; var name: UInt64 }
        let o = is64 ? [0, 4, 8, 16, 24, 32, 40, 44, 48, 56] : [0, 4, 8, 12, 16, 20, 24, 28, 32, 36]
        let headers = (0..<shnum).map { index in
            let base = index * shentsize
            return Header(type: UInt32(field(table, base + o[1], 4)), offset: field(table, base + o[4], word),
                          size: field(table, base + o[5], word), link: Int(field(table, base + o[6], 4)),
                          name: field(table, base + o[0], 4))
        }
        func hasBytes(_ header: Header) -> Bool {
            header.type != ELFConstants.SHT_NOBITS && header.type != ELFConstants.SHT_NULL && header.size > 0
        }
        var wanted: [(offset: UInt64, size: UInt64)] = [(0, UInt64(headCount)), (phoff, phSize), (shoff, shSize)]
        func want(_ index: Int) -> Bool {
            guard index < headers.count else { return true } // a bad link: the parser reports it
            let header = headers[index]
            guard hasBytes(header) else { return true }
            guard inFile(header.offset, header.size) else { return false }
            wanted.append((header.offset, header.size))
            return true
        }
        // Section names: to find .gnu_debuglink and .gnu_debugdata.
        let names = headers[shstrndx]
        var nameBytes: [UInt8] = []
        if names.type == ELFConstants.SHT_STRTAB && hasBytes(names) {
            guard want(shstrndx), let read = read(Int(names.offset), Int(names.size)), read.count == Int(names.size) else { return nil }
            nameBytes = read
        }
        func name(_ header: Header) -> [UInt8] {
            guard header.name < UInt64(nameBytes.count) else { return [] }
            let start = Int(header.name)
            let end = nameBytes[start...].firstIndex(of: 0) ?? nameBytes.count
            return Array(nameBytes[start..<end])
        }
        var notes = false
        for (index, header) in headers.enumerated() {
            switch header.type {
            case ELFConstants.SHT_SYMTAB, ELFConstants.SHT_DYNSYM:
                guard want(index), want(header.link) else { return nil }
            case ELFConstants.SHT_NOTE:
                notes = true
                guard want(index) else { return nil }
            default:
                let label = name(header)
                if label.elementsEqual(".gnu_debuglink".utf8) || label.elementsEqual(".gnu_debugdata".utf8) {
                    guard want(index) else { return nil }
                }
            }
        }
        // Without note sections, the build ID is looked for in the PT_NOTE segments.
        if !notes && phnum > 0 {
            guard let programs = read(Int(phoff), Int(phSize)), programs.count == Int(phSize) else { return nil }
            for index in 0..<phnum {
                let base = index * phentsize
                guard UInt32(field(programs, base, 4)) == ELFConstants.PT_NOTE else { continue }
                let offset = field(programs, base + (is64 ? 8 : 4), word)
                let size = field(programs, base + (is64 ? 32 : 16), word)
                guard inFile(offset, size) else { return nil }
                if size > 0 { wanted.append((offset, size)) }
            }
        }

        // Merged where they touch or lie within a page of each other: fewer, larger reads.
        wanted.sort { $0.offset < $1.offset }
        var merged: [(start: Int, end: Int)] = []
        for part in wanted where part.size > 0 {
            let start = Int(part.offset), end = Int(part.offset + part.size)
            if let last = merged.last, start <= last.end + page {
                merged[merged.count - 1].end = max(last.end, end)
            } else {
                merged.append((start, end))
            }
        }
        let total = merged.reduce(0) { $0 + ($1.end - $1.start) }
        guard total < fileSize / 2 else { return nil }
        // Each part read straight into its place in one buffer.
        var parts: [ELFBytes.Part] = []
        var complete = true
        let bytes = [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            var position = 0
            for part in merged where complete {
                let count = part.end - part.start
                let target = UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[position..<(position + count)])
                guard readInto(part.start, target) == count else {
                    complete = false
                    break
                }
                parts.append(ELFBytes.Part(fileOffset: part.start, count: count, position: position))
                position += count
            }
            initialized = complete ? total : 0
        }
        guard complete else { return nil }
        return try? ELFImage(bytes: bytes, fileSize: fileSize, parts: parts)
    }
}
