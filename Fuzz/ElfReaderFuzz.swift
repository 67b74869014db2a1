// libFuzzer harness for the ELF reader (Sources/ProcessMemorySymbols/ELF) and the symbol table built
// from it: any bytes, as ELF32/ELF64 in either byte order, never trap or read out of bounds; what
// is accepted holds together (sections inside the image, tables sorted, lookups consistent).
// Built by Scripts/fuzz.sh with -sanitize=fuzzer,address.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzElfReader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let image: ELFImage
    do {
        image = try ELFImage(bytes: bytes)
    } catch {
        precondition(!error.message.isEmpty, "an error without a message")
        return 0
    }
    for section in image.sections where section.hasFileContents {
        let contents = image.contents(of: section)
        precondition(UInt64(contents.count) == section.size || section.size == 0, "a section's contents have the wrong size")
    }
    _ = try? image.buildID()
    if let link = try? image.debugLink() {
        precondition(!link.fileName.isEmpty && !link.fileName.contains("/"), "a debuglink name with a directory")
    }
    for segment in image.loadSegments {
        _ = image.loadBias(fileOffset: segment.offset, mappedAt: 0x5555_0000_0000)
    }
    // The same file read in parts (what the symbolizer reads of a module) tells the same story.
    if let parts = ELFImage.readingSymbolParts(fileSize: bytes.count, readInto: { offset, buffer in
        let count = min(buffer.count, bytes.count - offset)
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + count)])) }
        return count
    }) {
        precondition(parts.sections == image.sections && parts.programHeaders == image.programHeaders, "parts parse differently")
        precondition((try? parts.buildID()) == (try? image.buildID()), "parts give another build ID")
        let fromParts = try? SymbolTable(image: parts)
        let fromWhole = try? SymbolTable(image: image)
        precondition(fromParts?.symbols == fromWhole?.symbols, "parts give other symbols")
    }
    guard let table = try? SymbolTable(image: image) else { return 0 }
    precondition(zip(table.symbols, table.symbols.dropFirst()).allSatisfy { $0.value <= $1.value }, "the table is not sorted")
    for symbol in table.symbols.prefix(64) {
        precondition(table.symbols(named: symbol.name).contains { $0.value == symbol.value }, "a symbol missing from the name index")
        // Thread-local values are offsets, never matched by address.
        guard symbol.kind != .threadLocal, symbol.value <= UInt64.max - symbol.size / 2 else { continue }
        guard let found = table.lookup(linkAddress: symbol.value + symbol.size / 2) else {
            preconditionFailure("no symbol for an address inside a symbol")
        }
        precondition(found.symbol.value <= symbol.value + symbol.size / 2, "a lookup returned a symbol above the address")
        precondition(found.symbol.value &+ found.offset == symbol.value + symbol.size / 2, "a lookup's offset is wrong")
    }
    _ = CRC32.checksum(bytes.prefix(4096))  // the slicing-by-8 loop and its tail, on any length
    return 0
}
