/// Bounds for ``ProcessHandle/scanPointers(to:options:progress:)``.
public struct PointerScanOptions: Sendable, Hashable {
    /// The most dereferences in a chain (1 finds static pointers to the target itself).
    public var maxDepth: Int = 3
    /// The largest offset added after a dereference: a pointer `p` can lead to any address in
    /// `p ... p + maxOffset` (the start of a structure and a field inside it).
    public var maxOffset: UInt64 = 0x1000
    /// Stop after this many chains.
    public var maxResults: Int = 100
    /// The most (value, location) pairs the index may hold (16 bytes each); the scan is marked
    /// incomplete when more pointers exist.
    public var maxIndexedPointers: Int = 32 << 20
    /// The most intermediate nodes the backward search may visit.
    public var maxNodes: Int = 1 << 20
    /// The size of the one buffer regions are read through.
    public var chunkSize: Int = 1 << 20

    /// The defaults: depth 3, offsets up to 0x1000, 100 results.
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
    /// Chains rooted in static regions that lead to `target`, shortest first.
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
}

extension ProcessHandle {
    /// Finds pointer chains from static regions (see ``StaticRegion``) to `target`.
    ///
    /// 1. Indexes every aligned 8-byte word of the readable, writable, private regions (static
    ///    data, heap, anonymous memory; stacks are left out) whose value could point within
    ///    `maxOffset` below one of those regions or the target, streaming each region through one
    ///    reused buffer with `pread(2)` on `/proc/PID/mem`; regions that vanish or fail are skipped
    ///    and reported.
    /// 2. Searches backwards, breadth first: the words pointing into `node - maxOffset ... node`
    ///    become the next level's nodes; a node in a static region ends a chain. Each location is
    ///    visited once, so each reported chain is a shortest one through its nodes.
    ///
    /// The target keeps running: a chain is a snapshot, to be checked with ``resolve(_:mode:)``.
    /// - Parameter progress: called after each chunk with bytes indexed so far and the total;
    ///   return `false` to cancel (the result is then marked incomplete).
    /// - Throws: `.invalidArguments` for bad options; `.badHandle`, `.execed`, `.badState` when the
    ///   process goes away.
    public func scanPointers(to target: UInt64, options: PointerScanOptions = PointerScanOptions(),
                             progress: ((UInt64, UInt64) -> Bool)? = nil) throws(ProcessMemoryError) -> PointerScanResult {
        guard options.maxDepth >= 1, options.maxResults >= 1, options.chunkSize >= 4096, options.maxNodes >= 1 else {
            throw .invalid("a pointer scan needs depth, results, nodes ≥ 1 and a chunk of at least 4096 bytes", pid: pid)
        }
        let map = try memoryMap()
        let statics = StaticRegion.all(in: map)
        let indexed = map.readableRegions.filter { region in
            region.permissions.contains(.write) && !region.isShared && region.kind != .stack && !region.isProtectedFromWrites
        }
        var accepted = indexed.map { ($0.start > options.maxOffset ? $0.start - options.maxOffset : 0)..<$0.end }
        accepted.append((target > options.maxOffset ? target - options.maxOffset : 0)..<(target == .max ? target : target + 1))
        var index = PointerIndex(accepting: accepted)
        var result = PointerScanResult(target: target, chains: [], skipped: [], bytesIndexed: 0, pointersIndexed: 0,
                                       isComplete: true, incompleteReason: nil)
        let total = indexed.reduce(0) { $0 + $1.size }
        try buildIndex(&index, regions: indexed, total: total, options: options, result: &result, progress: progress)
        index.sort()
        result.pointersIndexed = index.count
        searchBackwards(index, statics: statics, options: options, result: &result)
        return result
    }

    private func buildIndex(_ index: inout PointerIndex, regions: [MemoryRegion], total: UInt64, options: PointerScanOptions,
                            result: inout PointerScanResult, progress: ((UInt64, UInt64) -> Bool)?) throws(ProcessMemoryError) {
        let chunkSize = options.chunkSize & ~7
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 8)
        defer { buffer.deallocate() }
        for region in regions {
            var cursor = region.start
            while cursor < region.end {
                let want = Int(min(UInt64(chunkSize), region.end - cursor))
                let transfer = try readTransfer(from: cursor, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]))
                let done = transfer.bytesTransferred
                if !index.add(UnsafeRawBufferPointer(rebasing: buffer[0..<(done & ~7)]), at: cursor, limit: options.maxIndexedPointers) {
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
                if let progress, !progress(result.bytesIndexed, total) {
                    result.isComplete = false
                    result.incompleteReason = "cancelled"
                    return
                }
            }
        }
    }

    /// The breadth-first backward search over a sorted index.
    private func searchBackwards(_ index: PointerIndex, statics: [StaticRegion], options: PointerScanOptions,
                                 result: inout PointerScanResult) {
        // nodes[i]: an address, the node it leads to, and the offset added after dereferencing it.
        var addresses: [UInt64] = [result.target]
        var links: [Int] = [-1]
        var offsets: [Int64] = [0]
        var visited: Set<UInt64> = []
        var level = 0..<1
        func staticRegion(_ address: UInt64) -> StaticRegion? {
            var low = 0
            var high = statics.count
            while low < high {
                let mid = (low + high) / 2
                if statics[mid].region.end <= address { low = mid + 1 } else { high = mid }
            }
            return low < statics.count && statics[low].region.contains(address) ? statics[low] : nil
        }
        for _ in 1...options.maxDepth {
            let nextStart = addresses.count
            for node in level {
                let address = addresses[node]
                let low = address > options.maxOffset ? address - options.maxOffset : 0
                for pair in index.indices(ofValuesIn: low...address) {
                    let location = index.locations[pair]
                    guard !visited.contains(location) else { continue }
                    guard addresses.count < options.maxNodes else {
                        result.isComplete = false
                        result.incompleteReason = "the search reached \(options.maxNodes) nodes"
                        return
                    }
                    visited.insert(location)
                    addresses.append(location)
                    links.append(node)
                    offsets.append(Int64(address - index.values[pair]))
                    guard let root = staticRegion(location) else { continue }
                    var chainOffsets: [Int64] = []
                    var cursor = addresses.count - 1
                    while links[cursor] >= 0 {
                        chainOffsets.append(offsets[cursor])
                        cursor = links[cursor]
                    }
                    let base = PointerChain.Base.region(root.moduleName, offset: Int64(location - root.moduleStart))
                    result.chains.append(PointerChain(base: base, offsets: chainOffsets))
                    if result.chains.count >= options.maxResults {
                        result.isComplete = false
                        result.incompleteReason = "the scan reached \(options.maxResults) results"
                        return
                    }
                }
            }
            level = nextStart..<addresses.count
            if level.isEmpty { return }
        }
    }
}
