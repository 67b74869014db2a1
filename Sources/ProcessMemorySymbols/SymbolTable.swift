// The symbol table of one module: pure data built from ELF images, no system calls, so the fuzzer
// compiles it with the ELF reader.
import Synchronization

/// One symbol of a module, at its link-time address.
public struct Symbol: Sendable, Hashable {
    /// What the symbol names (from `st_info`'s type).
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// `STT_FUNC`: code.
        case function
        /// `STT_GNU_IFUNC`: a resolver the dynamic linker calls to pick an implementation.
        case indirectFunction
        /// `STT_OBJECT`: data.
        case object
        /// `STT_TLS`: an offset in the module's thread-local block, not an address.
        case threadLocal
        /// `STT_COMMON`: an unallocated common block.
        case common
        /// `STT_NOTYPE`: a label (`_end`, `__bss_start`, assembler symbols).
        case label
    }

    /// How far the symbol is visible (`st_info`'s binding).
    public enum Binding: String, Sendable, Hashable, CaseIterable {
        /// `STB_LOCAL`: file scope (only in `.symtab`).
        case local
        /// `STB_GLOBAL`.
        case global
        /// `STB_WEAK`.
        case weak
        /// `STB_GNU_UNIQUE`.
        case unique
    }

    /// Which table the symbol came from.
    public enum Source: String, Sendable, Hashable, CaseIterable {
        /// The module's `.dynsym` (what the dynamic linker sees).
        case dynsym
        /// The module's `.symtab`.
        case symtab
        /// The `.symtab` of a separate debug file (found by build ID or `.gnu_debuglink`).
        case debugFile
        /// The `.symtab` inside `.gnu_debugdata` (MiniDebugInfo).
        case miniDebugInfo
    }

    /// The name, without a symbol version.
    public var name: String
    /// The link-time address (`st_value`); add the module's load bias for the run-time address.
    public var value: UInt64
    /// The size in bytes (`st_size`, 0 when unknown).
    public var size: UInt64
    /// What it names.
    public var kind: Kind
    /// Its binding.
    public var binding: Binding
    /// Where it came from.
    public var source: Source

    /// Creates a symbol.
    public init(name: String, value: UInt64, size: UInt64, kind: Kind, binding: Binding, source: Source) {
        self.name = name
        self.value = value
        self.size = size
        self.kind = kind
        self.binding = binding
        self.source = source
    }

    /// The symbol for an ELF entry, or `nil` for entries that name no address in the module:
    /// undefined (imported) symbols, section and file symbols, and unnamed entries.
    public init?(_ entry: ELFSymbol, source: Source) {
        guard entry.isDefined, !entry.name.isEmpty else { return nil }
        switch entry.type {
        case 0: kind = .label
        case 1: kind = .object
        case 2: kind = .function
        case 5: kind = .common
        case 6: kind = .threadLocal
        case 10: kind = .indirectFunction
        default: return nil // STT_SECTION, STT_FILE, processor-specific
        }
        switch entry.binding {
        case 0: binding = .local
        case 1: binding = .global
        case 2: binding = .weak
        case 10: binding = .unique
        default: return nil
        }
        // Absolute symbols without a size (version-definition names such as `GLIBC_2.2.5` or the
        // vDSO's `LINUX_2.6`) are not addresses.
        if entry.sectionIndex == ELFConstants.SHN_ABS && entry.size == 0 { return nil }
        // `.symtab` spells versioned references `stdout@GLIBC_2.2.5`; the name is what precedes the version.
        var entryName = entry.name
        let at = entryName.withUTF8 { utf8 -> Int? in
            guard let index = utf8.firstIndex(of: UInt8(ascii: "@")), index > 0 else { return nil }
            return index
        }
        if let at {
            name = String(decoding: entryName.utf8.prefix(at), as: UTF8.self)
        } else {
            name = entryName
        }
        value = entry.value
        size = entry.size
        self.source = source
    }

    /// Whether `value ..< value + size` holds `address` (a zero-size symbol holds only its own address).
    public func contains(linkAddress address: UInt64) -> Bool {
        address >= value && (address - value < size || (size == 0 && address == value))
    }

    /// Preference among symbols at one address: sized before unsized, global before weak before
    /// local, code and data before labels.
    var rank: Int {
        var rank = size > 0 ? 0 : 8
        switch binding {
        case .global, .unique: break
        case .weak: rank += 1
        case .local: rank += 2
        }
        if kind == .label { rank += 4 }
        return rank
    }
}

/// The symbols of one module, sorted by address for lookups by address (binary search) and indexed
/// by name.
///
/// Built once per module from its `.symtab` and `.dynsym` (and those of its separate debug file);
/// duplicates (the same name at the same address in both tables) are kept once. Addresses are
/// link-time addresses: ``ModuleSymbols`` adds the load bias.
public struct SymbolTable: Sendable {
    /// The symbols, by ascending address; at one address the preferred name comes first.
    public let symbols: [Symbol]
    /// `symbols[i].value`, contiguous for the binary search.
    let starts: [UInt64]
    /// Name to indexes in `symbols`, built on the first lookup by name (lookups by address, the
    /// common case when naming scan matches, never pay for hashing every name).
    let names: NameIndex
    /// The largest symbol size, which bounds how far back a containing symbol can start.
    let largestSize: UInt64

    /// A table of `symbols`, sorted and deduplicated.
    public init(_ symbols: [Symbol]) {
        // Sorted by address (indexes, so the sort moves integers, not symbols); within one address
        // the same name is kept once, the first given winning (callers pass the richer table,
        // .symtab or a debug file, first), and the preferred name comes first.
        let values = symbols.map(\.value)
        var order = Array(symbols.indices)
        order.sort { values[$0] != values[$1] ? values[$0] < values[$1] : $0 < $1 }
        var unique: [Symbol] = []
        unique.reserveCapacity(symbols.count)
        var start = 0
        while start < order.count {
            var end = start + 1
            while end < order.count && values[order[end]] == values[order[start]] { end += 1 }
            if end - start == 1 {
                unique.append(symbols[order[start]])
            } else {
                var group: [Symbol] = []
                var seen = Set<String>(minimumCapacity: end - start) // some addresses carry thousands of aliases
                for position in order[start..<end] where seen.insert(symbols[position].name).inserted {
                    group.append(symbols[position])
                }
                group.sort { $0.rank != $1.rank ? $0.rank < $1.rank : $0.name < $1.name }
                unique += group
            }
            start = end
        }
        self.symbols = unique
        self.starts = unique.map(\.value)
        self.names = NameIndex()
        var largest: UInt64 = 0
        for symbol in unique where symbol.kind != .threadLocal && symbol.size > largest { largest = symbol.size }
        self.largestSize = largest
    }

    /// The table of an ELF image's `.symtab` and `.dynsym`.
    public init(image: ELFImage, symtabSource: Symbol.Source = .symtab) throws(ELFError) {
        self.init(try Self.symbols(of: image, symtabSource: symtabSource))
    }

    /// The symbols of an image's `.symtab` (first) and `.dynsym`, as ``Symbol``s.
    public static func symbols(of image: ELFImage, symtabSource: Symbol.Source = .symtab) throws(ELFError) -> [Symbol] {
        var all: [Symbol] = []
        let tables = image.symbolTableSections.sorted { $0.type == ELFConstants.SHT_SYMTAB && $1.type != ELFConstants.SHT_SYMTAB }
        for section in tables {
            let source: Symbol.Source = section.type == ELFConstants.SHT_SYMTAB ? symtabSource : .dynsym
            try image.forEachSymbol(in: section) { entry in
                if let symbol = Symbol(entry, source: source) { all.append(symbol) }
            }
        }
        return all
    }

    /// The number of symbols.
    public var count: Int { symbols.count }

    /// Whether the table has no symbols (a fully stripped module without `.dynsym`).
    public var isEmpty: Bool { symbols.isEmpty }

    /// The symbols called `name`.
    public func symbols(named name: String) -> [Symbol] {
        names.indexes(of: name, in: symbols).map { symbols[Int($0)] }
    }

    /// The symbol that best names the link-time `address`, and the offset of `address` in it.
    ///
    /// The symbol that contains the address wins (the nearest start when they nest, within 32
    /// symbols); failing that, the nearest symbol below it. `nil` when no symbol starts at or below `address`. Thread-local
    /// symbols never match (their values are offsets, not addresses). O(log n).
    public func lookup(linkAddress address: UInt64) -> (symbol: Symbol, offset: UInt64)? {
        // Index of the last symbol starting at or below `address`.
        var low = 0
        var high = starts.count
        while low < high {
            let middle = (low + high) >> 1
            if starts[middle] <= address { low = middle + 1 } else { high = middle }
        }
        guard low > 0 else { return nil }
        var nearest: Int?
        var index = low - 1
        // Walk down over symbols that may still contain the address (bounded by the largest size,
        // and to 32 steps: symbols that nest deeper than that are not worth a slower lookup).
        var steps = 0
        while true {
            let symbol = symbols[index]
            if symbol.kind != .threadLocal {
                if symbol.size > 0 && address - symbol.value < symbol.size {
                    // The first of this address's run is the preferred name.
                    var first = index
                    while first > 0 && starts[first - 1] == symbol.value && symbols[first - 1].size > 0 { first -= 1 }
                    let best = symbols[first].kind == .threadLocal ? symbol : symbols[first]
                    return (best, address - best.value)
                }
                if nearest == nil { nearest = index }
            }
            steps += 1
            if index == 0 || steps == 32 || address - starts[index - 1] >= largestSize { break }
            index -= 1
        }
        guard var found = nearest else { return nil }
        while found > 0 && starts[found - 1] == starts[found] && symbols[found - 1].kind != .threadLocal { found -= 1 }
        return (symbols[found], address - symbols[found].value)
    }
}

/// A table's name index, built once on first use and shared by copies of the table.
final class NameIndex: Sendable {
    private let index = Mutex<[String: [Int32]]?>(nil)

    func indexes(of name: String, in symbols: [Symbol]) -> [Int32] {
        index.withLock { index in
            if index == nil {
                var built: [String: [Int32]] = [:]
                built.reserveCapacity(symbols.count)
                for (position, symbol) in symbols.enumerated() { built[symbol.name, default: []].append(Int32(position)) }
                index = built
            }
            return index?[name] ?? []
        }
    }
}
