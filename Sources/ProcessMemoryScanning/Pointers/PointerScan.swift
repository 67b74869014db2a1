import ProcessMemoryCore
/// Bounds for ``ProcessHandle/scanPointers(to:options:progress:cancellation:baseNames:)``.
public struct PointerScanOptions: Sendable, Hashable {
    /// The most dereferences in a chain (1 finds static pointers to the target itself), 1...32.
    public var maxDepth: Int = 3
    /// The largest offset added after a dereference: a pointer `p` can lead to any address in
    /// `p ... p + maxOffset` (the start of a structure and a field inside it).
    public var maxOffset: UInt64 = 0x1000
    /// Stop after this many chains; the result is then ``PointerScanResult/isTruncated``.
    public var maxResults: Int = 1000
    /// The most (value, location) pairs the index may hold (16 bytes each); the scan is marked
    /// incomplete when more pointers exist.
    public var maxIndexedPointers: Int = 32 << 20
    /// The most intermediate nodes (pointer locations) the search may step through; it bounds the
    /// search's time and the memory of its dead-end memo.
    public var maxNodes: Int = 1 << 20
    /// The size of the one buffer regions are read through.
    public var chunkSize: Int = 1 << 20
    /// How pointers are stored in the target: 8 or 4 bytes, little or big endian.
    public var format: PointerFormat = .native
    /// Chains may start only in these modules, each named as a region is (``MemoryRegion/isNamed(_:)``:
    /// a file name such as `python3.11` or `libc.so.6`, a full path, a trailing `!` ignored); empty
    /// means every module.
    public var baseModules: [String] = []
    /// Whether chains may start in the dynamic loader's own data (`ld-linux-*.so*`, `ld-musl-*.so*`,
    /// `ld.so`). Left out by default: its `_r_debug`, `link_map` list and `_rtld_global` reach every
    /// module, so nearly all chains of a scan would start there and none would outlive a change to
    /// the list of loaded libraries. Naming the loader in ``baseModules`` includes it too.
    public var includeLoader = false

    /// The defaults: depth 3, offsets up to 0x1000, 1000 results, 64-bit little-endian pointers.
    public init() {}
}

/// A writable region of a module: where a chain may start.
///
/// A module's static data is the file-backed, private, writable mapping of the executable or a
/// library (`.data`, `.got`) plus the anonymous writable mapping right after it (`.bss`).
public struct StaticRegion: Sendable, Hashable {
    /// The mapping.
    public var region: MemoryRegion
    /// The module's path.
    public var modulePath: String
    /// How chains name the module: its file name, or its path when two mapped files share the name.
    public var moduleName: String
    /// The start of the module's first (lowest) mapping, which chain offsets count from.
    public var moduleStart: UInt64

    /// Whether the module is the dynamic loader (`ld-linux-x86-64.so.2`, `ld-2.31.so`, `ld-musl-x86_64.so.1`, `ld.so`).
    public var isLoader: Bool { Self.isLoaderPath(modulePath) }

    /// Whether the file at `path` is named as a dynamic loader is.
    public static func isLoaderPath(_ path: String) -> Bool {
        let name = fileName(path)
        return name.hasPrefix("ld-linux") || name.hasPrefix("ld-musl") || name == "ld.so"
            || (name.hasPrefix("ld-") && name.contains(".so"))
    }

    /// The static regions of `map` where `options` lets chains start: in ``PointerScanOptions/baseModules``
    /// when given, and outside the loader unless ``PointerScanOptions/includeLoader`` (or named).
    public static func allowed(in map: MemoryMap, options: PointerScanOptions) -> [StaticRegion] {
        let names = options.baseModules.map { $0.hasSuffix("!") ? String($0.dropLast()) : $0 }
        return all(in: map).filter { candidate in
            let probe = MemoryRegion(start: candidate.region.start, end: candidate.region.end,
                                     permissions: candidate.region.permissions, isShared: false, path: candidate.modulePath)
            let named = names.contains { probe.isNamed($0) }
            if !names.isEmpty && !named { return false }
            return named || options.includeLoader || !candidate.isLoader
        }
    }

    /// The static regions of `map`, in address order.
    public static func all(in map: MemoryMap) -> [StaticRegion] {
        var firstStart: [String: UInt64] = [:]
        var pathsByFileName: [String: Set<String>] = [:]
        for region in map.regions where region.kind == .file {
            guard let path = region.path else { continue }
            if firstStart[path] == nil { firstStart[path] = region.start }
            pathsByFileName[fileName(path), default: []].insert(path)
        }
        var result: [StaticRegion] = []
        var previous: StaticRegion?
        for region in map.regions {
            defer { if !(region.kind == .file && isStaticCandidate(region)) { previous = nil } }
            guard isStaticCandidate(region) else { continue }
            if region.kind == .file, let path = region.path, let start = firstStart[path] {
                let name = (pathsByFileName[fileName(path)]?.count ?? 0) > 1 ? path : fileName(path)
                let found = StaticRegion(region: region, modulePath: path, moduleName: name, moduleStart: start)
                result.append(found)
                previous = found
            } else if region.kind == .anonymous, let module = previous, module.region.end == region.start {
                result.append(StaticRegion(region: region, modulePath: module.modulePath, moduleName: module.moduleName,
                                           moduleStart: module.moduleStart))
            }
        }
        return result
    }

    private static func isStaticCandidate(_ region: MemoryRegion) -> Bool {
        region.permissions.contains(.read) && region.permissions.contains(.write) && !region.isShared
    }

    private static func fileName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}

/// The chains a pointer scan found, and how complete it was.
public struct PointerScanResult: Sendable, Hashable {
    /// A range that could not be read while indexing, and why.
    public struct SkippedRange: Sendable, Hashable {
        /// The addresses skipped.
        public var range: Range<UInt64>
        /// The region's path or pseudo-name, if any.
        public var path: String?
        /// The read's error.
        public var error: ProcessMemoryError
    }

    /// The target address.
    public var target: UInt64
    /// Chains rooted in static regions that lead to `target`, likely-stable first (see
    /// ``PointerChainRank``): bases in the main executable before those in libraries, then fewer
    /// hops, then smaller offsets; ties keep the search's order (offsets compared from the last to
    /// the first, then the base's address). Each carries the scan's pointer format.
    public var chains: [PointerChain]
    /// Ranges that vanished or could not be read while indexing (the target may change its map).
    public var skipped: [SkippedRange]
    /// Bytes read while indexing.
    public var bytesIndexed: UInt64
    /// Pointer-like words in the index.
    public var pointersIndexed: Int
    /// `false` when a cap (results, index size, nodes) was reached or the scan was cancelled, so
    /// more chains may exist.
    public var isComplete: Bool
    /// Why the scan is incomplete, when it is.
    public var incompleteReason: String?
    /// `true` when ``PointerScanOptions/maxResults`` chains were found and the search stopped there:
    /// ``chains`` are then the first ones in their order, and more exist.
    public var isTruncated: Bool = false
    /// Intermediate nodes the search stepped through.
    public var nodesVisited: Int = 0
    /// The symbol holding each chain's base (`game!g_world`), in the order of ``chains``, when the
    /// scan was given `baseNames`; empty otherwise.
    public var baseNames: [String?] = []
    /// The allocator the map shows (``HeapAllocator``): the heap-block rank rule applies only to glibc's.
    public var heapAllocator: HeapAllocator = .unknown
}

extension ProcessHandle {
    /// Finds pointer chains from static regions (see ``StaticRegion``) to `target`: all of them up
    /// to the depth and offset bounds, as many as ``PointerScanOptions/maxResults``.
    ///
    /// 1. Indexes every aligned pointer-sized word of the readable, writable, private regions
    ///    (static data, heap, anonymous memory; stacks are left out) whose value could point within
    ///    `maxOffset` below one of those regions or the target, streaming each region through one
    ///    reused buffer with `pread(2)` on `/proc/PID/mem`; regions that vanish or fail are skipped
    ///    and reported.
    /// 2. Searches backwards, depth first, once for each chain length from 1 to `maxDepth`: the
    ///    words pointing into `node - maxOffset ... node` are the candidates for the hop before
    ///    `node`, taken smallest offset first (then lowest location); at the last hop only words in
    ///    a static region end a chain. A location already on the current path is skipped (no
    ///    cycles), and a (location, hops left) that led nowhere is remembered and not searched again,
    ///    so the search does not blow up on dead ends. Chains come out in the order described at
    ///    ``PointerScanResult/chains`` and the search stops at `maxResults` of them, so memory is
    ///    the index, the results and the memo (at most `maxNodes` entries), never the set of all
    ///    paths. The same process state gives the same chains in the same order.
    ///
    /// The target keeps running: a chain is a candidate, to be checked with ``resolve(_:mode:)`` or
    /// narrowed down with ``recheck(_:expecting:mode:)`` after a restart.
    /// - Parameter baseNames: names the symbol that holds an address (`game!g_world`, nil outside
    ///   every named data object), for ranking and ``PointerScanResult/baseNames``; supplied by the
    ///   caller, since this module reads no symbols (the CLI passes one backed by
    ///   `ProcessMemorySymbols`). Called once per chain found, after the search.
    /// - Parameter progress: called after each chunk with bytes indexed so far and the total.
    /// - Parameter cancellation: polled after each chunk; once cancelled, the result is marked
    ///   incomplete.
    /// - Throws: `.invalidArguments` for bad options; `.badHandle`, `.execed`, `.badState` when the
    ///   process goes away.
    public func scanPointers(to target: UInt64, options: PointerScanOptions = PointerScanOptions(),
                             progress: ((WorkProgress) -> Void)? = nil,
                             cancellation: Cancellation = .never,
                             baseNames: ((UInt64) -> String?)? = nil) throws(ProcessMemoryError) -> PointerScanResult {
        guard (1...32).contains(options.maxDepth), options.maxResults >= 1, options.chunkSize >= 4096, options.maxNodes >= 1,
              options.maxOffset <= UInt64(Int64.max) else {
            throw .invalid("a pointer scan needs depth 1...32, results and nodes ≥ 1, an offset below 2^63 and a chunk of at least 4096 bytes",
                           pid: pid)
        }
        let map = try memoryMap()
        let statics = clippedToImages(StaticRegion.allowed(in: map, options: options))
        if !options.baseModules.isEmpty && statics.isEmpty {
            throw .invalid("no writable data of a module named \(options.baseModules.joined(separator: ", ")) is mapped", pid: pid)
        }
        let indexed = map.readableRegions.filter { region in
            region.permissions.contains(.write) && !region.isShared && region.kind != .stack && !region.isProtectedFromWrites
        }
        var accepted = indexed.map { ($0.start > options.maxOffset ? $0.start - options.maxOffset : 0)..<$0.end }
        accepted.append((target > options.maxOffset ? target - options.maxOffset : 0)..<(target == .max ? target : target + 1))
        var index = PointerIndex(accepting: accepted, format: options.format)
        var result = PointerScanResult(target: target, chains: [], skipped: [], bytesIndexed: 0, pointersIndexed: 0,
                                       isComplete: true, incompleteReason: nil)
        let total = indexed.reduce(0) { $0 + $1.size }
        try buildIndex(&index, regions: indexed, total: total, options: options, result: &result, progress: progress, cancellation: cancellation)
        index.sort()
        result.pointersIndexed = index.count
        var search = ChainSearch(index: index, statics: statics, options: options)
        search.run(from: target)
        let rank = PointerChainRank(statics: statics, executablePath: executablePath())
        result.heapAllocator = HeapAllocator(map: map)
        let names = baseNames.map { name in search.chains.map { chain in (try? chain.baseAddress(in: map)).flatMap(name) } } ?? []
        let order = rank.order(search.chains, hopsLeavingBlock: options.format == .native ? hopsLeavingBlock(search.chains, map: map) : [],
                               baseNames: names)
        result.chains = order.map { search.chains[$0] }
        if !names.isEmpty { result.baseNames = order.map { names[$0] } }
        result.nodesVisited = search.visits
        if let reason = search.stopReason {
            result.isComplete = false
            result.incompleteReason = result.incompleteReason ?? reason
            result.isTruncated = search.chains.count >= options.maxResults
        }
        return result
    }

    private func buildIndex(_ index: inout PointerIndex, regions: [MemoryRegion], total: UInt64, options: PointerScanOptions,
                            result: inout PointerScanResult, progress: ((WorkProgress) -> Void)?, cancellation: Cancellation) throws(ProcessMemoryError) {
        let chunkSize = options.chunkSize & ~7
        let size = options.format.size
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 8)
        defer { buffer.deallocate() }
        for region in regions {
            var cursor = region.start
            while cursor < region.end {
                let want = Int(min(UInt64(chunkSize), region.end - cursor))
                let transfer = try readTransfer(from: cursor, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]))
                let done = transfer.bytesTransferred
                if !index.add(UnsafeRawBufferPointer(rebasing: buffer[0..<(done - done % size)]), at: cursor, limit: options.maxIndexedPointers) {
                    result.isComplete = false
                    result.incompleteReason = "the index reached \(options.maxIndexedPointers) pointers"
                    return
                }
                result.bytesIndexed += UInt64(done)
                if let stop = transfer.stop {
                    if stop.code == .badState || stop.code == .execed || stop.code == .badHandle { throw stop }
                    // Skip to the next page (or the end of a region that vanished) and go on.
                    let failedAt = cursor + UInt64(done)
                    let resume = min(region.end, (failedAt / AddressSpace.pageSize + 1) * AddressSpace.pageSize)
                    let skipTo = stop.code == .notFound ? region.end : resume
                    if result.skipped.count < 1000 {
                        result.skipped.append(.init(range: failedAt..<skipTo, path: region.path, error: stop))
                    }
                    cursor = skipTo
                } else {
                    cursor += UInt64(want)
                }
                progress?(WorkProgress(bytesDone: result.bytesIndexed, bytesTotal: total))
                if cancellation.isCancelled {
                    result.isComplete = false
                    result.incompleteReason = "cancelled"
                    return
                }
            }
        }
    }
}

/// The depth-first backward enumeration of chains over a sorted ``PointerIndex``, one pass per
/// chain length, in result order, stopping at `maxResults` chains or `maxNodes` steps.
struct ChainSearch {
    let index: PointerIndex
    let statics: [StaticRegion]
    let options: PointerScanOptions
    private(set) var chains: [PointerChain] = []
    private(set) var visits = 0
    /// Why the search stopped early, if it did.
    private(set) var stopReason: String?
    /// Location → bit `r` set when searching `r` more hops back from it found no chain.
    private var dead: [UInt64: UInt64] = [:]
    /// The locations and offsets of the current path, from the target backwards.
    private var pathLocations: [UInt64] = []
    private var pathOffsets: [Int64] = []

    init(index: PointerIndex, statics: [StaticRegion], options: PointerScanOptions) {
        self.index = index
        self.statics = statics
        self.options = options
    }

    mutating func run(from target: UInt64) {
        for length in 1...options.maxDepth {
            _ = explore(target, hopsLeft: length)
            if stopReason != nil { return }
        }
    }

    /// Emits the chains of exactly `hopsLeft` more dereferences that end at `address`. Returns
    /// whether one was found, and whether the search below was exhaustive (no cycle skipped, no
    /// cap reached), which is when "nothing found" may be remembered.
    private mutating func explore(_ address: UInt64, hopsLeft: Int) -> (found: Bool, exhaustive: Bool) {
        let low = address > options.maxOffset ? address - options.maxOffset : 0
        let range = index.indices(ofValuesIn: low...address)
        var found = false
        var exhaustive = true
        // Largest value first = smallest offset first; equal values in location order.
        var high = range.upperBound
        while high > range.lowerBound {
            let value = index.values[high - 1]
            var groupStart = high - 1
            while groupStart > range.lowerBound && index.values[groupStart - 1] == value { groupStart -= 1 }
            let offset = Int64(address - value)
            for pair in groupStart..<high {
                if stopReason != nil { return (found, false) }
                let location = index.locations[pair]
                if pathLocations.contains(location) {
                    exhaustive = false
                    continue
                }
                if hopsLeft == 1 {
                    guard let root = staticRegion(location) else { continue }
                    found = true
                    emit(root: root, location: location, firstOffset: offset)
                    continue
                }
                let bit: UInt64 = 1 << UInt64(hopsLeft - 1)
                if let mask = dead[location], mask & bit != 0 { continue }
                visits += 1
                if visits > options.maxNodes {
                    stopReason = "the search reached \(options.maxNodes) nodes"
                    return (found, false)
                }
                pathLocations.append(location)
                pathOffsets.append(offset)
                let below = explore(location, hopsLeft: hopsLeft - 1)
                pathLocations.removeLast()
                pathOffsets.removeLast()
                if below.found {
                    found = true
                } else if below.exhaustive {
                    dead[location, default: 0] |= bit
                }
                if !below.exhaustive { exhaustive = false }
            }
            high = groupStart
        }
        return (found, exhaustive)
    }

    private mutating func emit(root: StaticRegion, location: UInt64, firstOffset: Int64) {
        let base = PointerChain.Base.region(root.moduleName, offset: Int64(location - root.moduleStart))
        chains.append(PointerChain(base: base, offsets: [firstOffset] + pathOffsets.reversed(), format: options.format))
        if chains.count >= options.maxResults {
            stopReason = "the scan reached \(options.maxResults) results"
        }
    }

    /// The static region holding `address` (binary search).
    private func staticRegion(_ address: UInt64) -> StaticRegion? {
        var low = 0
        var high = statics.count
        while low < high {
            let mid = (low + high) / 2
            if statics[mid].region.end <= address { low = mid + 1 } else { high = mid }
        }
        return low < statics.count && statics[low].region.contains(address) ? statics[low] : nil
    }
}
