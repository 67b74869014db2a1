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
///
/// Unlike a single protect-mode read, a batch does not check pagemap first (that would cost a
/// system call per entry on the sampling path): an entry on a never-populated page of a range the
/// target registered with userfaultfd waits, as the target's own access would, until the target's
/// handler serves it. A caller that may meet such targets checks ``ProcessHandle/regionDetails()``
/// (`VmFlags` `um`, `ui`) first, as the scanning module's `Watcher` does per round.
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

    /// Everything a read touches, kept in one value: the reader moves it out of the object for the
    /// duration of a read, so its hot loops work on local arrays without dynamic exclusivity checks.
    struct State {
        var entries: [Entry] = []
        var storage: [UInt8] = []
        /// Bytes of `storage` in use; the rest is kept for the next round.
        var storageUsed = 0
        /// Scratch space for the reader: sorted entry indices, sort keys, runs, coalesced bytes.
        var order: [Int] = []
        var keys: [UInt64] = []
        var sortScratch: [UInt64] = []
        var runs: [Run] = []
        var scratch: [UInt8] = []
        var failures: [Int: ProcessMemoryError] = [:]
        var coalescingGap = 4096
        var maximumRunLength = 256 << 10

        /// Makes `scratch` hold at least `size` bytes; it never shrinks, so a reused batch stops growing.
        mutating func growScratch(to size: Int) {
            if scratch.count < size { scratch.append(contentsOf: repeatElement(0, count: size - scratch.count)) }
        }
    }

    // No dynamic exclusivity checks: every access is a short, non-reentrant method of this
    // non-Sendable class (they cost a sampler about a fifth of each add(address:count:)).
    @exclusivity(unchecked) var state = State()

    /// Entries whose ranges are at most this many bytes apart are read as one remote range when
    /// that saves remote iovecs (each costs the kernel a page-table walk and a page pin). 0 turns
    /// coalescing off.
    public var coalescingGap: Int {
        get { state.coalescingGap }
        set { state.coalescingGap = newValue }
    }

    /// The longest remote range a coalesced run may span.
    public var maximumRunLength: Int {
        get { state.maximumRunLength }
        set { state.maximumRunLength = newValue }
    }

    /// Creates an empty batch with room for `capacity` entries and `bytes` bytes of results.
    public init(capacity: Int = 1024, bytes: Int = 64 << 10) {
        state.entries.reserveCapacity(capacity)
        state.storage.reserveCapacity(bytes)
        state.order.reserveCapacity(capacity)
        state.runs.reserveCapacity(capacity)
    }

    /// The number of state.entries.
    public var count: Int { state.entries.count }

    /// Adds a read of `count` bytes at `address` and returns its index.
    @discardableResult
    public func add(address: UInt64, count: Int) -> Int {
        let offset = state.storageUsed
        state.storageUsed += max(count, 0)
        if state.storage.count < state.storageUsed {
            // Grow geometrically, so a batch that is refilled every round stops allocating.
            state.storage.append(contentsOf: repeatElement(0, count: max(state.storageUsed - state.storage.count, state.storage.count)))
        }
        state.entries.append(Entry(address: address, count: count, offset: offset, outcome: .pending))
        return state.entries.count - 1
    }

    /// Removes every entry, keeping the storage for the next round.
    public func removeAll() {
        state.entries.removeAll(keepingCapacity: true)
        state.storageUsed = 0
        state.failures.removeAll(keepingCapacity: true)
    }

    /// The address and size of entry `index`.
    public func entry(_ index: Int) -> (address: UInt64, count: Int) {
        (state.entries[index].address, state.entries[index].count)
    }

    /// What happened to entry `index`.
    public func outcome(_ index: Int) -> Outcome { state.entries[index].outcome }

    /// The full error for a failed entry (its code, the first unreadable address, the bytes read).
    public func error(_ index: Int) -> ProcessMemoryError? { state.failures[index] }

    /// The bytes read for entry `index` (for a failed entry, its readable prefix).
    public func bytes(_ index: Int) -> [UInt8] {
        let entry = state.entries[index]
        let valid: Int
        switch entry.outcome {
        case .ok: valid = entry.count
        case .failed(_, let bytesRead): valid = bytesRead
        case .pending: valid = 0
        }
        return Array(state.storage[entry.offset..<(entry.offset + valid)])
    }

    /// Calls `body` with the bytes read for entry `index`, without copying them.
    public func withBytes<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let entry = state.entries[index]
        let valid: Int
        switch entry.outcome {
        case .ok: valid = entry.count
        case .failed(_, let bytesRead): valid = bytesRead
        case .pending: valid = 0
        }
        return try state.storage.withUnsafeBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[entry.offset..<(entry.offset + valid)]))
        }
    }

    /// Loads a trivial value at `offset` within entry `index`, or `nil` if those bytes were not read.
    public func load<T: BitwiseCopyable>(_ type: T.Type, _ index: Int, offset: Int = 0) -> T? {
        let entry = state.entries[index]
        let valid: Int
        switch entry.outcome {
        case .ok: valid = entry.count
        case .failed(_, let bytesRead): valid = bytesRead
        case .pending: return nil
        }
        guard offset >= 0, offset + MemoryLayout<T>.size <= valid else { return nil }
        return state.storage.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: entry.offset + offset, as: T.self) }
    }
}
