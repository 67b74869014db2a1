import ProcessMemoryCore

/// The order in which a pointer scan lists its chains: those likely to survive a restart first.
///
/// A chain is more likely stable when its base is in the main executable's `.data`/`.bss` (a
/// global of the program itself) than in a library's (whose data may belong to an allocator or
/// the C library's bookkeeping), when it has fewer hops (each hop is a pointer that may change),
/// and when its offsets are small (a field near the start of a structure, not a pointer that
/// happens to land within `maxOffset`). A hop whose offset leaves the heap block its pointer
/// points to (glibc malloc's chunk header just below the pointer gives the block's size) reaches a
/// neighbouring allocation by accident of layout, and counts against the chain before anything but
/// its base. That rule holds only where glibc's malloc is the allocator (``HeapAllocator``): with
/// jemalloc, mimalloc, tcmalloc or musl mapped, or no C library at all, no hop is judged by it and
/// the other rules decide. A base that lies inside a named data symbol (`game!g_world`, at its start or inside
/// a sized object), when the caller can name addresses, ranks before an anonymous offset in the
/// same class of module: the program keeps that variable where its name says, while an unnamed
/// `.bss` word may be an allocator's or a library's scratch. Names reserved for the toolchain and
/// the C library (`__dso_handle`, `__environ`: a leading `__`) do not count. The key is (base class, unnamed base,
/// hops leaving their block, hops, sum of offset magnitudes); ties keep the order the search produced.
public struct PointerChainRank: Sendable {
    /// The names chains use for the main executable's module.
    public var executableNames: Set<String>

    /// A rank for chains rooted in `statics`; `executablePath` is the main executable's path
    /// (``ProcessHandle/executablePath()``, from `readlink(2)` of `/proc/PID/exe`), nil when unknown.
    public init(statics: [StaticRegion], executablePath: String?) {
        executableNames = Set(statics.filter { $0.modulePath == executablePath }.map(\.moduleName))
    }

    /// The class of a chain's base: 0 for the main executable, 1 for any other module or address.
    public func baseClass(_ chain: PointerChain) -> Int {
        if case .region(let name, _) = chain.base, executableNames.contains(name) { return 0 }
        return 1
    }

    /// The sort key: (base class, 1 when the base has no symbol name else 0, hops leaving their
    /// heap block, hops, sum of the offsets' magnitudes).
    public func key(_ chain: PointerChain, hopsLeavingBlock: Int = 0, baseNamed: Bool = false) -> (Int, Int, Int, Int, UInt64) {
        let spread = chain.offsets.reduce(UInt64(0)) { $0 &+ $1.magnitude }
        return (baseClass(chain), baseNamed ? 0 : 1, hopsLeavingBlock, chain.offsets.count, spread)
    }

    /// `chains` in rank order, stable for equal keys; `hopsLeavingBlock[i]` (when given) counts the
    /// hops of chain `i` whose offset leaves the heap block its pointer points to, and
    /// `baseNames[i]` (when given) is the symbol holding chain `i`'s base, nil for none.
    public func sorted(_ chains: [PointerChain], hopsLeavingBlock: [Int] = [], baseNames: [String?] = []) -> [PointerChain] {
        order(chains, hopsLeavingBlock: hopsLeavingBlock, baseNames: baseNames).map { chains[$0] }
    }

    /// Whether `name` (`module!symbol+0x10` or `symbol`) names the program's own data: not a name
    /// reserved for the implementation (a leading `__`, as `__dso_handle`).
    public static func isProgramName(_ name: String) -> Bool {
        let symbol = name.split(separator: "!", maxSplits: 1).last ?? Substring(name)
        return !symbol.isEmpty && !symbol.hasPrefix("__")
    }

    /// The indices of `chains` in rank order (see ``sorted(_:hopsLeavingBlock:baseNames:)``).
    public func order(_ chains: [PointerChain], hopsLeavingBlock: [Int] = [], baseNames: [String?] = []) -> [Int] {
        let keys = chains.indices.map { index in
            key(chains[index], hopsLeavingBlock: index < hopsLeavingBlock.count ? hopsLeavingBlock[index] : 0,
                baseNamed: index < baseNames.count && baseNames[index].map(Self.isProgramName) == true)
        }
        return chains.indices.sorted { a, b in
            keys[a] != keys[b] ? keys[a] < keys[b] : a < b
        }
    }
}

extension ProcessHandle {
    /// For each chain, how many of its hops add an offset that leaves the heap block the pointer
    /// points to. A pointer into `[heap]` or anonymous memory is taken as the start of a glibc
    /// malloc block when the word below it looks like a chunk header (a size that is a multiple of
    /// 16, at least 32, inside the region); the block then holds `size - 8` usable bytes. A pointer
    /// without such a header (not malloc's, or the middle of an object) counts as staying inside.
    /// One `pread(2)` on `/proc/PID/mem` per hop and per header; a chain that cannot be followed counts 0.
    /// Every chain counts 0 when `map` shows another allocator than glibc's (``HeapAllocator``).
    func hopsLeavingBlock(_ chains: [PointerChain], map: MemoryMap) -> [Int] {
        guard HeapAllocator(map: map).hasGlibcChunkHeaders else { return chains.map { _ in 0 } }
        var sizes: [UInt64: UInt64?] = [:]
        func blockSize(_ pointer: UInt64) -> UInt64? {
            if let known = sizes[pointer] { return known }
            var found: UInt64?
            if pointer >= 16, pointer % 16 == 0, let region = map.region(containing: pointer),
               region.kind == .heap || region.kind == .anonymous, region.contains(pointer - 8),
               let header = try? read(UInt64.self, from: pointer - 8) {
                let size = header & ~UInt64(7)
                if size >= 32, size % 16 == 0, size <= region.end - (pointer - 16) { found = size - 8 }
            }
            sizes[pointer] = found
            return found
        }
        return chains.map { chain in
            guard let trace = try? trace(chain, map: map, mode: .default), trace.failure == nil else { return 0 }
            return trace.hops.reduce(0) { count, hop in
                guard let usable = blockSize(hop.pointer) else { return count }
                return hop.offset < 0 || UInt64(hop.offset) >= usable ? count + 1 : count
            }
        }
    }
}

extension ProcessHandle {
    /// `statics` with each module's anonymous `.bss` mapping cut at the end of the module's image:
    /// the kernel merges an anonymous mapping made right after `.bss` (an allocator's arena) into
    /// it, and without the cut, chains would start deep inside that arena, named after the module.
    /// The end is the highest `p_vaddr + p_memsz` of the module's `PT_LOAD` program headers, read
    /// from its ELF header in memory (`pread(2)` on `/proc/PID/mem`); a module whose header cannot be
    /// read (not ELF64 little-endian, unmapped) keeps its regions as they are.
    func clippedToImages(_ statics: [StaticRegion]) -> [StaticRegion] {
        var imageEnds: [UInt64: UInt64?] = [:]
        func imageEnd(_ moduleStart: UInt64) -> UInt64? {
            if let known = imageEnds[moduleStart] { return known }
            let end = try? elfImageEnd(at: moduleStart)
            imageEnds[moduleStart] = end
            return end ?? nil
        }
        return statics.compactMap { candidate in
            guard candidate.region.kind == .anonymous, let end = imageEnd(candidate.moduleStart) else { return candidate }
            let pageEnd = (end + AddressSpace.pageSize - 1) / AddressSpace.pageSize * AddressSpace.pageSize
            guard pageEnd > candidate.region.start else { return nil }
            var clipped = candidate
            clipped.region.end = min(candidate.region.end, pageEnd)
            return clipped
        }
    }

    /// The end of the loaded image whose ELF header is at `start`: load bias plus the highest
    /// `p_vaddr + p_memsz` of its `PT_LOAD` headers; nil when it is not a 64-bit little-endian ELF.
    private func elfImageEnd(at start: UInt64) throws(ProcessMemoryError) -> UInt64? {
        let header = try readExactly(from: start, count: 64)
        guard header[0] == 0x7f, header[1] == 0x45, header[2] == 0x4c, header[3] == 0x46, header[4] == 2, header[5] == 1 else {
            return nil
        }
        func word(_ bytes: [UInt8], _ at: Int, _ count: Int) -> UInt64 {
            (0..<count).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) }
        }
        let phoff = word(header, 0x20, 8)
        let entrySize = Int(word(header, 0x36, 2))
        let count = Int(word(header, 0x38, 2))
        guard entrySize >= 56, (1...256).contains(count), phoff < 1 << 20 else { return nil }
        let table = try readExactly(from: start + phoff, count: entrySize * count)
        var lowest = UInt64.max
        var highest: UInt64 = 0
        for index in 0..<count where word(table, index * entrySize, 4) == 1 {
            let vaddr = word(table, index * entrySize + 0x10, 8)
            let memsz = word(table, index * entrySize + 0x28, 8)
            lowest = min(lowest, vaddr & ~(AddressSpace.pageSize - 1))
            highest = max(highest, vaddr &+ memsz)
        }
        guard lowest != .max, highest > lowest else { return nil }
        return start &+ (highest - lowest)
    }
}
