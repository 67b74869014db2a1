import ProcessMemoryCore
import Synchronization

/// The symbols of one mapped module, with the load bias that turns their link-time values into
/// the process's addresses.
public struct ModuleSymbols: Sendable {
    /// The module.
    public let module: Module
    /// Its symbols (from `.symtab`, `.dynsym` and a separate debug file), at link-time addresses.
    public let table: SymbolTable
    /// Run-time address minus link-time address: `mapping start - (p_vaddr of the PT_LOAD segment
    /// mapped there)`. 0 for a non-PIE executable.
    public let loadBias: UInt64
    /// The GNU build ID (`NT_GNU_BUILD_ID`), if the module has one.
    public let buildID: [UInt8]?
    /// The separate debug file whose `.symtab` was used, if one was found.
    public let debugFile: String?
    /// What was noticed while loading (a debuglink whose CRC did not match, MiniDebugInfo not read).
    public let notes: [String]

    /// The build ID as lowercase hex.
    public var buildIDHex: String? { buildID.map(hexString) }

    /// The process's address of `symbol` (for a thread-local symbol, its offset in the TLS block).
    public func address(of symbol: Symbol) -> UInt64 {
        symbol.kind == .threadLocal ? symbol.value : symbol.value &+ loadBias
    }
}

func hexString(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0xf)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Parsed tables shared by every symbolizer in this process, keyed by build ID (and the debug
/// directories searched), so a library mapped by many processes is parsed once.
enum SymbolTableCache {
    struct Entry: Sendable {
        var table: SymbolTable
        var debugFile: String?
        var notes: [String]
    }

    static let entries = Mutex<[String: Entry]>([:])

    /// The build ID alone does not tell a stripped file from the unstripped one it was made from,
    /// so the key adds the sizes of its symbol tables and its debuglink, and the options.
    static func key(buildID: [UInt8], image: ELFImage, options: SymbolizerOptions) -> String {
        let tables = image.symbolTableSections.map { "\($0.type):\($0.size)" }.joined(separator: ",")
        let link = (try? image.debugLink()).flatMap { $0.map { "\($0.fileName):\($0.crc)" } } ?? "-"
        let debug = options.useSeparateDebugFiles ? options.debugDirectories.joined(separator: ":") : "-"
        return [hexString(buildID), tables, link, debug].joined(separator: "|")
    }

    static func lookup(_ key: String) -> Entry? { entries.withLock { $0[key] } }

    static func store(_ entry: Entry, for key: String) { entries.withLock { $0[key] = entry } }

    /// Forgets every cached table (for tests and long-running profilers).
    static func removeAll() { entries.withLock { $0.removeAll() } }
}

/// Loading one module's symbols: its file through `/proc/PID/map_files`, its separate debug file.
enum ModuleLoader {
    static func load(_ module: Module, handle: ProcessHandle, options: SymbolizerOptions) throws(SymbolError) -> ModuleSymbols {
        let loaded = try imageBytes(module, handle: handle, options: options)
        let image: ELFImage
        do {
            switch loaded {
            case .image(let parsed): image = parsed
            case .bytes(let bytes): image = try ELFImage(bytes: bytes)
            }
        } catch {
            var failure = SymbolError(.malformedModule, "\(module.name) is not a valid ELF image: \(error)")
            failure.elfError = error
            throw failure
        }
        let lowest = module.regions.min(by: { $0.offset < $1.offset })
        guard let lowest, let bias = image.loadBias(fileOffset: module.isVDSO ? 0 : lowest.offset, mappedAt: lowest.start) else {
            var failure = SymbolError(.malformedModule, "\(module.name): no PT_LOAD segment covers its mapping at file offset 0x\(String(lowest?.offset ?? 0, radix: 16))")
            failure.elfError = ELFError(.badField, "no PT_LOAD segment for the mapped offset")
            throw failure
        }
        do {
            let buildID = try image.buildID()
            let key = buildID.map { SymbolTableCache.key(buildID: $0, image: image, options: options) }
            if let key, let cached = SymbolTableCache.lookup(key) {
                return ModuleSymbols(module: module, table: cached.table, loadBias: bias, buildID: buildID,
                                     debugFile: cached.debugFile, notes: cached.notes)
            }
            var notes: [String] = []
            // The richer tables first: at one address, the first of equal names is kept.
            var builder = SymbolTable.Builder()
            var debugFile: String?
            if options.useSeparateDebugFiles, !module.isVDSO,
               let found = DebugFiles.find(for: image, buildID: buildID, modulePath: module.path, options: options, notes: &notes) {
                builder = found.symbols
                debugFile = found.path
            }
            if debugFile == nil {
                _ = MiniDebugInfo.add(image, to: &builder, limit: options.maximumFileSize, notes: &notes)
            }
            // A full .symtab (the module's own, or its debug file's) already holds every .dynsym
            // symbol, so .dynsym is read only without one (MiniDebugInfo's .symtab leaves out the
            // .dynsym symbols on purpose).
            let hasSymtab = image.sections.contains { $0.type == ELFConstants.SHT_SYMTAB && $0.hasFileContents && $0.size > 0 }
            try builder.add(image, symtabOnly: hasSymtab || debugFile != nil)
            let table = builder.build()
            if let key { SymbolTableCache.store(.init(table: table, debugFile: debugFile, notes: notes), for: key) }
            return ModuleSymbols(module: module, table: table, loadBias: bias, buildID: buildID, debugFile: debugFile, notes: notes)
        } catch {
            var failure = SymbolError(.malformedModule, "\(module.name): \(error)")
            failure.elfError = error
            throw failure
        }
    }

    /// What was read of a module: the image from the parts symbols need, or the whole file (or
    /// the vDSO) still to be parsed.
    enum Loaded {
        case image(ELFImage)
        case bytes([UInt8])
    }

    /// The parts of an ELF file that symbols need (``ELFImage/readingSymbolParts(fileSize:readInto:)``),
    /// or the whole file when they are most of it or the headers call for it.
    static func read(_ file: RegularFile) -> Result<Loaded, FileReadFailure> {
        if let image = ELFImage.readingSymbolParts(fileSize: file.size, readInto: { offset, buffer in
            try? file.read(offset: offset, into: buffer).get()
        }) {
            return .success(.image(image))
        }
        return file.read(offset: 0, count: file.size).map { .bytes($0) }
    }

    /// The module's bytes: the vDSO from memory (`/proc/PID/mem` or `process_vm_readv`), a file
    /// through `/proc/PID/map_files/START-END`, only the parts symbols need.
    static func imageBytes(_ module: Module, handle: ProcessHandle, options: SymbolizerOptions) throws(SymbolError) -> Loaded {
        if module.isVDSO {
            do {
                return .bytes(try handle.read(from: module.start, count: Int(module.end - module.start)))
            } catch {
                throw SymbolError(error)
            }
        }
        guard let region = module.regions.first else { throw SymbolError(.unreadableModule, "\(module.name) has no mapping") }
        let result: Result<Result<Loaded, FileReadFailure>, FileReadFailure>
        do {
            result = try handle.withMappedFile(of: region, limit: options.maximumFileSize, read)
        } catch {
            throw SymbolError(error)
        }
        switch result.flatMap({ $0 }) {
        case .success(let loaded): return loaded
        case .failure(let failure):
            throw SymbolError(.unreadableModule, "\(module.name): cannot read /proc/\(handle.pid)/map_files/\(String(region.start, radix: 16))-\(String(region.end, radix: 16)): \(failure)")
        }
    }
}
