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
}

/// The symbols of one module, sorted by address for lookups by address (binary search) and indexed
/// by name.
///
/// Built once per module from its `.symtab` and `.dynsym` (and those of its separate debug file);
/// duplicates (the same name at the same address in both tables) are kept once. Addresses are
/// link-time addresses: ``ModuleSymbols`` adds the load bias.
///
/// Compact: each entry is a few integers and an offset into one buffer of NUL-terminated names
/// (the ELF string tables, copied as they are), so building a table decodes no name; a ``Symbol``
/// with its `String` is made only for the symbols a lookup returns.
public struct SymbolTable: Sendable {
    /// One symbol without its decoded name.
    struct Entry: Sendable {
        var value: UInt64
        var size: UInt64
        /// Offset of the name's first byte in ``SymbolTable/nameBytes``.
        var name: UInt32
        var kind: Symbol.Kind
        var binding: Symbol.Binding
        var source: Symbol.Source
        /// The name ends at an `@` after its first byte (ELF `.symtab` spellings such as
        /// `stdout@GLIBC_2.2.5`), not only at its NUL.
        var endsAtVersion: Bool
    }

    /// The entries, by ascending address; at one address the preferred name comes first.
    let entries: [Entry]
    /// `entries[i].value`, contiguous for the binary search.
    let starts: [UInt64]
    /// The names, each NUL-terminated; the buffer ends with a NUL.
    let nameBytes: [UInt8]
    /// Name to indexes in `entries`, built on the first lookup by name (lookups by address, the
    /// common case when naming scan matches, never pay for hashing every name).
    let names: NameIndex
    /// The largest symbol size, which bounds how far back a containing symbol can start.
    let largestSize: UInt64

    /// The symbols, by ascending address; at one address the preferred name comes first. Each
    /// call decodes every name: prefer ``lookup(linkAddress:)``, ``symbols(named:)`` and
    /// ``symbol(at:)`` where they do.
    public var symbols: [Symbol] { entries.indices.map(symbol(at:)) }

    /// The symbol at `index` (0 ..< ``count``, by address).
    public func symbol(at index: Int) -> Symbol {
        let entry = entries[index]
        return Symbol(name: name(of: entry), value: entry.value, size: entry.size, kind: entry.kind,
                      binding: entry.binding, source: entry.source)
    }

    /// A table of `symbols`, sorted and deduplicated.
    public init(_ symbols: [Symbol]) {
        var builder = Builder()
        for symbol in symbols { builder.add(symbol) }
        self = builder.build()
    }

    /// A table from entries and their names; sorts and deduplicates. `entries` in the order given:
    /// within one address the same name is kept once, the first given winning (callers add the
    /// richer table, .symtab or a debug file, first), and the preferred name comes first.
    init(entries unsorted: [Entry], nameBytes: [UInt8]) {
        self.nameBytes = nameBytes
        let order = Self.addressOrder(unsorted)
        var sorted: [Entry] = []
        sorted.reserveCapacity(unsorted.count)
        nameBytes.withUnsafeBufferPointer { names in
            var start = 0
            while start < order.count {
                let first = unsorted[order[start]]
                var end = start + 1
                while end < order.count && unsorted[order[end]].value == first.value { end += 1 }
                switch end - start {
                case 1:
                    sorted.append(first)
                case 2:
                    // The common duplicate: one symbol in both .symtab and .dynsym.
                    let second = unsorted[order[start + 1]]
                    let (a, b) = (Self.nameRange(first, names), Self.nameRange(second, names))
                    let order = Self.compare(a, b, names)
                    if order == 0 {
                        sorted.append(first)
                    } else {
                        let (ra, rb) = (Self.rank(first), Self.rank(second))
                        if ra < rb || (ra == rb && order < 0) { sorted += [first, second] } else { sorted += [second, first] }
                    }
                default:
                    sorted += Self.deduplicated(order[start..<end].map { unsorted[$0] }, names)
                }
                start = end
            }
        }
        entries = sorted
        starts = sorted.map(\.value)
        names = NameIndex()
        var largest: UInt64 = 0
        for entry in sorted where entry.kind != .threadLocal && entry.size > largest { largest = entry.size }
        largestSize = largest
    }

    /// Indexes of `entries` by address, ties in the order given. One integer key per entry,
    /// (value, index) packed in 64 bits when the values allow (link-time addresses are small), else
    /// in 128.
    static func addressOrder(_ entries: [Entry]) -> [Int] {
        let indexBits = max(1, Int.bitWidth - (entries.count).leadingZeroBitCount)
        let largest = entries.reduce(UInt64(0)) { max($0, $1.value) }
        let mask = (UInt64(1) << UInt64(indexBits)) - 1
        if indexBits < 64, largest.leadingZeroBitCount >= indexBits {
            var keys = entries.indices.map { entries[$0].value << UInt64(indexBits) | UInt64($0) }
            keys.sort()
            return keys.map { Int(truncatingIfNeeded: $0 & mask) }
        }
        var keys = entries.indices.map { UInt128(entries[$0].value) << 64 | UInt128($0) }
        keys.sort()
        return keys.map { Int(truncatingIfNeeded: UInt64(truncatingIfNeeded: $0)) }
    }

    /// Byte order of the names at `a` and `b` in `names`: negative, 0 or positive.
    static func compare(_ a: Range<Int>, _ b: Range<Int>, _ names: UnsafeBufferPointer<UInt8>) -> Int {
        let common = min(a.count, b.count)
        var offset = 0
        while offset < common {
            let x = names[a.lowerBound + offset], y = names[b.lowerBound + offset]
            if x != y { return Int(x) - Int(y) }
            offset += 1
        }
        return a.count - b.count
    }

    /// The table of an ELF image's `.symtab` and `.dynsym`.
    public init(image: ELFImage, symtabSource: Symbol.Source = .symtab) throws(ELFError) {
        var builder = Builder()
        try builder.add(image, symtabSource: symtabSource)
        self = builder.build()
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
    public var count: Int { entries.count }

    /// Whether the table has no symbols (a fully stripped module without `.dynsym`).
    public var isEmpty: Bool { entries.isEmpty }

    /// The symbols called `name`.
    public func symbols(named name: String) -> [Symbol] {
        names.indexes(of: name, in: self).map { symbol(at: Int($0)) }
    }

    /// The symbol that best names the link-time `address`, and the offset of `address` in it.
    ///
    /// The symbol that contains the address wins (the nearest start when they nest, within 32
    /// symbols); failing that, the nearest symbol below it. `nil` when no symbol starts at or below `address`. Thread-local
    /// symbols never match (their values are offsets, not addresses). O(log n).
    public func lookup(linkAddress address: UInt64) -> (symbol: Symbol, offset: UInt64)? {
        guard let (index, offset) = lookupIndex(linkAddress: address) else { return nil }
        return (symbol(at: index), offset)
    }

    /// ``lookup(linkAddress:)`` without decoding the name: the entry's index and the offset.
    func lookupIndex(linkAddress address: UInt64) -> (index: Int, offset: UInt64)? {
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
            let entry = entries[index]
            if entry.kind != .threadLocal {
                if entry.size > 0 && address - entry.value < entry.size {
                    // The first of this address's run is the preferred name.
                    var first = index
                    while first > 0 && starts[first - 1] == entry.value && entries[first - 1].size > 0 { first -= 1 }
                    let best = entries[first].kind == .threadLocal ? index : first
                    return (best, address - entries[best].value)
                }
                if nearest == nil { nearest = index }
            }
            steps += 1
            if index == 0 || steps == 32 || address - starts[index - 1] >= largestSize { break }
            index -= 1
        }
        guard var found = nearest else { return nil }
        while found > 0 && starts[found - 1] == starts[found] && entries[found - 1].kind != .threadLocal { found -= 1 }
        return (found, address - entries[found].value)
    }

    // MARK: names in the buffer

    /// The byte range of `entry`'s name in `bytes` (to its NUL, or to a version `@` after the first byte).
    static func nameRange(_ entry: Entry, _ bytes: UnsafeBufferPointer<UInt8>) -> Range<Int> {
        let start = Int(entry.name)
        var end = start
        while bytes[end] != 0 && !(entry.endsAtVersion && end > start && bytes[end] == UInt8(ascii: "@")) { end += 1 }
        return start..<end
    }

    func name(of entry: Entry) -> String {
        nameBytes.withUnsafeBufferPointer { bytes in
            String(decoding: UnsafeBufferPointer(rebasing: bytes[Self.nameRange(entry, bytes)]), as: UTF8.self)
        }
    }

    /// Preference among symbols at one address: sized before unsized, global before weak before
    /// local, code and data before labels.
    static func rank(_ entry: Entry) -> Int {
        var rank = entry.size > 0 ? 0 : 8
        switch entry.binding {
        case .global, .unique: break
        case .weak: rank += 1
        case .local: rank += 2
        }
        if entry.kind == .label { rank += 4 }
        return rank
    }

    /// The entries at one address (in the order given) with equal names kept once, the first given
    /// winning, ordered by preference, then name. Some addresses carry thousands of aliases
    /// (libswiftCore), so names are compared by sorting, each name's extent found once.
    static func deduplicated(_ group: [Entry], _ names: UnsafeBufferPointer<UInt8>) -> [Entry] {
        let ranges = group.map { nameRange($0, names) }
        func compare(_ a: Int, _ b: Int) -> Int { Self.compare(ranges[a], ranges[b], names) }
        // By name, ties by position: the first of equal names is the first given.
        var order = Array(group.indices)
        order.sort { a, b in
            let order = compare(a, b)
            return order != 0 ? order < 0 : a < b
        }
        var kept: [Int] = []
        kept.reserveCapacity(order.count)
        for index in order where kept.last.map({ compare($0, index) != 0 }) ?? true { kept.append(index) }
        // Names are now distinct: preference, then name, is a total order.
        kept.sort { a, b in
            let (ra, rb) = (rank(group[a]), rank(group[b]))
            return ra != rb ? ra < rb : compare(a, b) < 0
        }
        return kept.map { group[$0] }
    }
}

/// A table's name index, built once on first use and shared by copies of the table.
final class NameIndex: Sendable {
    private let index = Mutex<[String: [Int32]]?>(nil)

    func indexes(of name: String, in table: SymbolTable) -> [Int32] {
        index.withLock { index in
            if index == nil {
                var built: [String: [Int32]] = [:]
                built.reserveCapacity(table.entries.count)
                for (position, entry) in table.entries.enumerated() { built[table.name(of: entry), default: []].append(Int32(position)) }
                index = built
            }
            return index?[name] ?? []
        }
    }
}
