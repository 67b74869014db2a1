/// Many small reads, done together in as few `process_vm_readv(2)` calls as possible.
///
/// A batch is reusable: ``removeAll()`` keeps its storage, so a sampler that fills and reads the
/// same batch again and again allocates nothing per read once the batch has grown to its working
/// size. Each entry gets its own ``Outcome``; a failing entry does not fail the others.
///
/// ```swift
/// let batch = ReadBatch()
/// let frame = batch.add(address: framePointer, count: 16)
/// let name = batch.add(address: namePointer, count: 64)
/// try handle.read(batch)
/// if batch.outcome(frame) == .ok { let (next, pc) = (batch.load(UInt64.self, frame, offset: 0), …) }
/// ```
///
/// Batched reads respect page protections, like ``ReadMode/respectingProtections``: the kernel has
/// no vectored form of `/proc/PID/mem`.
public final class ReadBatch {
    /// What happened to one entry.
    public enum Outcome: Sendable, Hashable {
        /// Every byte was read.
        case ok
        /// The entry failed; `bytesRead` bytes at its start were readable (and are in its buffer).
        case failed(ProcessMemoryError.Code, bytesRead: Int)
        /// The batch has not been read since the entry was added.
        case pending
    }

    struct Entry {
        var address: UInt64
        var count: Int
        /// Where the entry's bytes live in `storage`.
        var offset: Int
        var outcome: Outcome
    }

    var entries: [Entry] = []
    var storage: [UInt8] = []
    /// Scratch space for the reader: sorted entry indices, runs and iovecs, kept between reads.
    var order: [Int] = []
    var keys: [UInt64] = []
    var runs: [Run] = []
    var scratch: [UInt8] = []
    var failures: [Int: ProcessMemoryError] = [:]

    struct Run {
        var start: UInt64
        var end: UInt64
        /// Indices into `order` of the entries the run covers.
        var first: Int
        var last: Int
        /// Where the run lands locally: `storage` for a single entry, `scratch` for a coalesced run.
        var scratchOffset: Int
        var coalesced: Bool
    }

    /// Entries whose ranges are at most this many bytes apart are read as one remote range when
    /// that saves remote iovecs (each costs the kernel a page-table walk and a page pin). 0 turns
    /// coalescing off.
    public var coalescingGap: Int = 4096

    /// The longest remote range a coalesced run may span.
    public var maximumRunLength: Int = 256 << 10

    /// Creates an empty batch with room for `capacity` entries and `bytes` bytes of results.
    public init(capacity: Int = 1024, bytes: Int = 64 << 10) {
        entries.reserveCapacity(capacity)
        storage.reserveCapacity(bytes)
        order.reserveCapacity(capacity)
        runs.reserveCapacity(capacity)
    }

    /// The number of entries.
    public var count: Int { entries.count }

    /// Adds a read of `count` bytes at `address` and returns its index.
    @discardableResult
    public func add(address: UInt64, count: Int) -> Int {
        let offset = storage.count
        let size = max(count, 0)
        storage.append(contentsOf: repeatElement(0, count: size))
        entries.append(Entry(address: address, count: count, offset: offset, outcome: .pending))
        return entries.count - 1
    }

    /// Removes every entry, keeping the storage for the next round.
    public func removeAll() {
        entries.removeAll(keepingCapacity: true)
        storage.removeAll(keepingCapacity: true)
        failures.removeAll(keepingCapacity: true)
    }

    /// The address and size of entry `index`.
    public func entry(_ index: Int) -> (address: UInt64, count: Int) {
        (entries[index].address, entries[index].count)
    }

    /// What happened to entry `index`.
    public func outcome(_ index: Int) -> Outcome { entries[index].outcome }

    /// The full error for a failed entry (its code, the first unreadable address, the bytes read).
    public func error(_ index: Int) -> ProcessMemoryError? { failures[index] }

    /// The bytes read for entry `index` (for a failed entry, its readable prefix).
    public func bytes(_ index: Int) -> [UInt8] {
        let entry = entries[index]
        let valid: Int
        switch entry.outcome {
        case .ok: valid = entry.count
        case .failed(_, let bytesRead): valid = bytesRead
        case .pending: valid = 0
        }
        return Array(storage[entry.offset..<(entry.offset + valid)])
    }

    /// Calls `body` with the bytes read for entry `index`, without copying them.
    public func withBytes<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let entry = entries[index]
        let valid: Int
        switch entry.outcome {
        case .ok: valid = entry.count
        case .failed(_, let bytesRead): valid = bytesRead
        case .pending: valid = 0
        }
        return try storage.withUnsafeBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[entry.offset..<(entry.offset + valid)]))
        }
    }

    /// Loads a trivial value at `offset` within entry `index`, or `nil` if those bytes were not read.
    public func load<T: BitwiseCopyable>(_ type: T.Type, _ index: Int, offset: Int = 0) -> T? {
        let entry = entries[index]
        let valid: Int
        switch entry.outcome {
        case .ok: valid = entry.count
        case .failed(_, let bytesRead): valid = bytesRead
        case .pending: return nil
        }
        guard offset >= 0, offset + MemoryLayout<T>.size <= valid else { return nil }
        return storage.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: entry.offset + offset, as: T.self) }
    }
}
