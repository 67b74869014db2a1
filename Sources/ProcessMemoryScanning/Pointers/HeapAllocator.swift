import ProcessMemoryCore

/// The allocator behind a process's `malloc(3)`, as far as its mapped modules tell.
///
/// The pointer-chain rank's heap-block rule (``PointerChainRank``) reads glibc malloc's chunk
/// header, the size word just below a block; other allocators keep no such header (jemalloc,
/// mimalloc and tcmalloc group blocks of one size class in runs or pages with their sizes kept
/// apart; musl's mallocng keeps a different header), so the word below a pointer there is a
/// neighbour's data, and the rule would judge hops by noise. The rule is applied only to
/// ``glibc``.
public enum HeapAllocator: String, Sendable, Hashable, CaseIterable {
    /// glibc's ptmalloc: `libc.so.6` is mapped and no other allocator is.
    case glibc
    /// jemalloc (`libjemalloc.so*`, often by `LD_PRELOAD`).
    case jemalloc
    /// Microsoft's mimalloc (`libmimalloc*.so*`).
    case mimalloc
    /// gperftools' or Google's tcmalloc (`libtcmalloc*.so*`).
    case tcmalloc
    /// musl's malloc (`ld-musl-*.so*` or `libc.musl-*.so*`).
    case musl
    /// No C library is mapped (a static binary, or one with its own allocator): nothing is assumed.
    case unknown

    /// The allocator of the process whose map is `map`: a replacement allocator mapped anywhere
    /// wins over glibc (it interposes `malloc`), musl's C library means musl, glibc's C library
    /// alone means glibc. Module file names only: read from `/proc/PID/maps`, nothing else.
    public init(map: MemoryMap) {
        var sawGlibc = false
        var found: HeapAllocator?
        var seen = Set<String>()
        for region in map.regions {
            guard let path = region.path, path.hasPrefix("/") else { continue }
            let name = path.split(separator: "/").last.map(String.init) ?? path
            guard seen.insert(name).inserted else { continue }
            if name.hasPrefix("libjemalloc") { found = .jemalloc }
            else if name.hasPrefix("libmimalloc") { found = .mimalloc }
            else if name.hasPrefix("libtcmalloc") { found = .tcmalloc }
            else if name.hasPrefix("ld-musl-") || name.hasPrefix("libc.musl-") { found = found ?? .musl }
            else if name == "libc.so.6" || (name.hasPrefix("libc-2.") && name.hasSuffix(".so")) { sawGlibc = true }
            if let found, found != .musl { self = found; return }
        }
        self = found ?? (sawGlibc ? .glibc : .unknown)
    }

    /// Whether blocks carry glibc malloc's chunk header (the size word just below the block).
    public var hasGlibcChunkHeaders: Bool { self == .glibc }
}
