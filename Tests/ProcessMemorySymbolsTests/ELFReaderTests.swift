import Foundation
import Testing
import ProcessMemoryCore
import ProcessMemorySymbols

/// The ELF reader on hand-built images: every class and byte order parses to the same symbols,
/// and each kind of damage is refused with its own error kind.
@Suite struct ELFReaderTests {
    static let variants: [(is64: Bool, bigEndian: Bool)] = [(true, false), (true, true), (false, false), (false, true)]

    @Test("ELF32 and ELF64, little and big endian, give the same symbols, build ID and debuglink", arguments: variants)
    func everyClassAndByteOrder(variant: (is64: Bool, bigEndian: Bool)) throws {
        var builder = ELFBuilder(is64: variant.is64, bigEndian: variant.bigEndian)
        let image = try ELFImage(bytes: builder.build())
        #expect(image.header.is64Bit == variant.is64)
        #expect(image.header.isBigEndian == variant.bigEndian)
        #expect(image.sections.map(\.name) == ["", ".text", ".data", ".symtab", ".strtab", ".note.gnu.build-id", ".gnu_debuglink", ".shstrtab"])
        let table = try SymbolTable(image: image)
        #expect(table.symbols.map(\.name) == ["compute", "g_world", "s_local"])
        #expect(table.symbols.map(\.value) == [0x1000, 0x2000, 0x2004])
        #expect(table.symbols.map(\.kind) == [.function, .object, .object])
        #expect(table.symbols.map(\.binding) == [.global, .global, .local])
        #expect(try image.buildID() == [0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4])
        let link = try #require(try image.debugLink())
        #expect(link.fileName == "prog.debug" && link.crc == 0x1234_5678)
        let hit = try #require(table.lookup(linkAddress: 0x1008))
        #expect(hit.symbol.name == "compute" && hit.offset == 8)
        // Inside g_world (0x2000, 8 bytes) the nearest start is s_local (0x2004, 4 bytes): it wins.
        #expect(table.lookup(linkAddress: 0x2005)?.symbol.name == "s_local")
        #expect(table.lookup(linkAddress: 0x2002)?.symbol.name == "g_world")
        #expect(table.lookup(linkAddress: 0xfff) == nil)
    }

    @Test("Bytes that are not ELF, or of an unknown class, byte order or version, are refused")
    func notELF() throws {
        #expect(throws: ELFError.self) { try ELFImage(bytes: []) }
        #expect(kind { try ELFImage(bytes: Array("#!/bin/sh\necho hello\n".utf8)) } == .notELF)
        var builder = ELFBuilder()
        let good = builder.build()
        for (offset, value, expected) in [(4, UInt8(3), ELFError.Kind.unsupported), (5, 0, .unsupported), (6, 2, .unsupported)] {
            var bytes = good
            bytes[offset] = value
            #expect(kind { try ELFImage(bytes: bytes) } == expected, "e_ident[\(offset)] = \(value)")
        }
    }

    @Test("Every truncation of a valid image is refused with a typed error, never a trap")
    func truncations() throws {
        for variant in Self.variants {
            var builder = ELFBuilder(is64: variant.is64, bigEndian: variant.bigEndian)
            let good = builder.build()
            for length in 0..<good.count {
                let prefix = Array(good[0..<length])
                let result = Result { try ELFImage(bytes: prefix) }
                // The section header table is last, so every shorter image lacks part of it.
                guard case .failure(let error) = result else {
                    Issue.record("a \(length)-byte prefix of a \(good.count)-byte image was accepted")
                    continue
                }
                let kind = (error as? ELFError)?.kind
                if length < 4 {
                    #expect(kind == .notELF)
                } else {
                    #expect(kind == .truncatedHeader, "prefix of \(length) bytes: \(error)")
                }
            }
        }
    }

    @Test("A section whose contents reach past the end is refused as out of bounds", arguments: variants)
    func sectionPastTheEnd(variant: (is64: Bool, bigEndian: Bool)) throws {
        var builder = ELFBuilder(is64: variant.is64, bigEndian: variant.bigEndian)
        var bytes = builder.build()
        let fields = builder.fieldOffsets
        builder.patch(&bytes, at: builder.sectionField(".symtab", fields.size), UInt64(bytes.count), width: variant.is64 ? 8 : 4)
        #expect(kind { try ELFImage(bytes: bytes) } == .outOfBounds)
        // An offset that overflows when the size is added.
        var overflow = builder.build()
        builder.patch(&overflow, at: builder.sectionField(".strtab", fields.offset), variant.is64 ? UInt64.max - 2 : UInt64(UInt32.max - 2),
                      width: variant.is64 ? 8 : 4)
        #expect(kind { try ELFImage(bytes: overflow) } == .outOfBounds)
    }

    @Test("Sections that share bytes, or overlap the section header table, are refused")
    func overlaps() throws {
        var builder = ELFBuilder()
        var bytes = builder.build()
        let fields = builder.fieldOffsets
        let dataOffset = try #require(try ELFImage(bytes: bytes).section(named: ".data")).offset
        builder.patch(&bytes, at: builder.sectionField(".strtab", fields.offset), dataOffset, width: 8)
        #expect(kind { try ELFImage(bytes: bytes) } == .overlappingSections)
        var intoHeaders = builder.build()
        builder.patch(&intoHeaders, at: builder.sectionField(".text", fields.offset), 8, width: 8)
        #expect(kind { try ELFImage(bytes: intoHeaders) } == .overlappingSections)
    }

    @Test("Huge counts are refused before anything is allocated for them")
    func hugeCounts() throws {
        var builder = ELFBuilder()
        var bytes = builder.build()
        // e_shnum = 0 with section 0's sh_size giving the real count (the extended numbering).
        builder.patch(&bytes, at: 60, 0, width: 2)
        builder.patch(&bytes, at: builder.sectionHeaderOffset + 32, UInt64(1) << 40, width: 8)
        #expect(kind { try ELFImage(bytes: bytes) } == .hugeCount)
        // e_shnum = 0xfff0: a table far longer than the file.
        var long = builder.build()
        builder.patch(&long, at: 60, 0xfff0, width: 2)
        #expect(kind { try ELFImage(bytes: long) } == .truncatedHeader)
    }

    @Test("Bad fields: a symbol entry size below the structure's, a link to no string table, a name past its table")
    func badFields() throws {
        var builder = ELFBuilder()
        let fields = builder.fieldOffsets
        var entsize = builder.build()
        builder.patch(&entsize, at: builder.sectionField(".symtab", fields.entsize), 0, width: 8)
        let image = try ELFImage(bytes: entsize)
        #expect(kind { try SymbolTable(image: image) } == .badField)

        var link = builder.build()
        builder.patch(&link, at: builder.sectionField(".symtab", fields.link), 99, width: 4)
        #expect(kind { try SymbolTable(image: try ELFImage(bytes: link)) } == .badField)

        var name = builder.build()
        let symtabOffset = Int(try ELFImage(bytes: name).section(named: ".symtab")?.offset ?? 0)
        builder.patch(&name, at: symtabOffset + 24, 0xffff, width: 4) // entry 1's st_name
        #expect(kind { try SymbolTable(image: try ELFImage(bytes: name)) } == .outOfBounds)

        var shstrndx = builder.build()
        builder.patch(&shstrndx, at: 62, 200, width: 2)
        #expect(kind { try ELFImage(bytes: shstrndx) } == .badField)
    }

    @Test("A note whose descriptor runs past its section is refused")
    func badNote() throws {
        var builder = ELFBuilder()
        var bytes = builder.build()
        let note = try #require(try ELFImage(bytes: bytes).section(named: ".note.gnu.build-id"))
        builder.patch(&bytes, at: Int(note.offset) + 4, 0x1000, width: 4) // descsz
        #expect(kind { try ELFImage(bytes: bytes).buildID() } == .outOfBounds)
    }

    @Test("CRC-32 is the one .gnu_debuglink uses (the check value of the IEEE polynomial)")
    func crc() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum(Array("6789".utf8), continuing: CRC32.checksum(Array("12345".utf8))) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
        // Lengths around the 8-byte step agree with the byte-at-a-time definition.
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(CRC32.checksum(bytes) == bitwise(bytes), "length \(length)")
        }
    }

    /// CRC-32 one bit at a time, straight from the definition.
    func bitwise(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    /// The ELFError kind `body` throws, or nil when it does not throw one.
    func kind<T>(_ body: () throws -> T) -> ELFError.Kind? {
        do {
            _ = try body()
            return nil
        } catch let error as ELFError {
            return error.kind
        } catch {
            return nil
        }
    }
}

/// Reading only the parts symbols need gives what the whole file gives.
@Suite struct ELFPartsTests {
    static let files = ["/bin/bash", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/bin/python3"]
        .filter { FileManager.default.fileExists(atPath: $0) }

    @Test("Symbols, build ID and debuglink from the parts equal those of the whole file; far fewer bytes are read",
          arguments: files)
    func partsMatchWholeFile(path: String) throws {
        let whole = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path).resolvingSymlinksInPath()))
        var read = 0
        let parts = try #require(ELFImage.readingSymbolParts(fileSize: whole.count) { offset, buffer in
            let count = min(buffer.count, whole.count - offset)
            whole.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + count)])) }
            read += count
            return count
        }, "\(path) was read whole")
        let image = try ELFImage(bytes: whole)
        #expect(parts.size == image.size && parts.sections.map(\.name) == image.sections.map(\.name))
        #expect(try parts.buildID() == image.buildID())
        #expect(try parts.debugLink() == image.debugLink())
        let fromParts = try SymbolTable(image: parts).symbols
        let fromWhole = try SymbolTable(image: image).symbols
        #expect(!fromWhole.isEmpty && fromParts == fromWhole)
        #expect(read < whole.count / 2, "\(read) of \(whole.count) bytes read")
    }

    @Test("A file too short or not ELF is left to the whole-file parser (nil)")
    func refusesToGuess() {
        #expect(ELFImage.readingSymbolParts(fileSize: 10) { _, _ in 10 } == nil)
        let notELF = [UInt8](repeating: 0x41, count: 8192)
        #expect(ELFImage.readingSymbolParts(fileSize: notELF.count) { offset, buffer in
            let count = min(buffer.count, notELF.count - offset)
            notELF.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + count)])) }
            return count
        } == nil)
    }
}
