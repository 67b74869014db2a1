import Dispatch
import Glibc
import Synchronization
import ProcessMemoryCore

/// A range a scan could not read: where, what was there, and why.
public struct SkippedRange: Sendable, Hashable {
    /// First address that was skipped.
    public var start: UInt64
    /// One past the last skipped address.
    public var end: UInt64
    /// The region's path or pseudo-name, if any.
    public var path: String?
    /// Why it stopped (`notFound` for a region unmapped meanwhile, `protectionFailure`, …).
    public var reason: ProcessMemoryError
}

/// One chunk of a region as read: `bytes` holds `count` readable bytes at `address`; the chunk's
/// own part is its first `ownCount` bytes (the rest is overlap into the next chunk).
struct StreamChunk {
    var regionIndex: Int
    var address: UInt64
    var bytes: UnsafeRawBufferPointer
    var count: Int
    var ownCount: Int
    /// Set when the read stopped early; `[address + count, resumeAt)` is skipped.
    var stop: ProcessMemoryError?
    /// Where reading resumes after a stop: past the failing page, or past the whole span the map
    /// says fails the same way (a hole, a PROT_NONE region); the region's end when nothing is left.
    var resumeAt: UInt64 = 0
    /// Bytes of the chunk's own part left unread because no page of it is resident.
    var notResident: Int = 0
}

/// Streams regions through two reused buffers: a reader thread of its own fills one with
/// `process_vm_readv(2)` while the caller's thread consumes the other, so reading and matching use
/// both cores. Memory is bounded by two chunks, whatever the target's size.
final class RegionStream: @unchecked Sendable {
    private let handle: ProcessHandle
    private let regions: [MemoryRegion]
    private let chunkSize: Int
    private let overlap: Int
    private let slots: [UnsafeMutableRawBufferPointer]
    /// One cell per slot, at fixed addresses: the threads touch different cells, ordered by the
    /// semaphores (an Array would be shared storage that both threads access).
    private let filled = UnsafeMutablePointer<StreamChunk?>.allocate(capacity: 2)
    private let full = DispatchSemaphore(value: 0)
    // Created at 0 and signalled twice: libdispatch traps when a semaphore is destroyed below its
    // initial value.
    private let empty = DispatchSemaphore(value: 0)
    private let cancelled = Atomic<Bool>(false)
    private let residency: Pagemap?

    init(handle: ProcessHandle, regions: [MemoryRegion], chunkSize: Int, overlap: Int, residentOnly: Bool = false) {
        self.handle = handle
        self.residency = residentOnly ? Pagemap(handle: handle) : nil
        self.regions = regions
        self.chunkSize = max(4096, chunkSize)
        self.overlap = max(0, overlap)
        slots = (0..<2).map { _ in
            UnsafeMutableRawBufferPointer.allocate(byteCount: max(4096, chunkSize) + max(0, overlap), alignment: 64)
        }
        filled.initialize(repeating: nil, count: 2)
        empty.signal()
        empty.signal()
    }

    deinit {
        slots.forEach { $0.deallocate() }
        filled.deinitialize(count: 2)
        filled.deallocate()
    }

    /// Reads every region in order and calls `consume` with each chunk on the calling thread;
    /// `consume` returns false to stop early. Returns once the reader thread has finished.
    func run(_ consume: (StreamChunk) -> Bool) {
        // A thread of its own: a pooled queue could be starved by its callers.
        guard let thread = HelperThread.start({ [self] in self.produce() }) else {
            // No thread to be had: read and match alternately on this one.
            forEachChunk(slot: { _ in 0 }) { chunk in chunk.map(consume) ?? false }
            return
        }
        var sequence = 0
        while true {
            full.wait()
            let slot = sequence % 2
            sequence += 1
            guard let chunk = filled[slot] else { break }
            if !cancelled.load(ordering: .relaxed) && !consume(chunk) {
                cancelled.store(true, ordering: .relaxed)
            }
            empty.signal()
        }
        thread.join()
    }

    /// The reader thread: fills slots in sequence, then posts the end marker (nil).
    private func produce() {
        var sequence = 0
        forEachChunk(slot: { _ in
            self.empty.wait()
            return self.cancelled.load(ordering: .relaxed) ? nil : sequence % 2
        }) { chunk in
            if chunk == nil { self.empty.signal() }  // cancelled: give the slot back
            guard let chunk else { return false }
            self.filled[sequence % 2] = chunk
            sequence += 1
            self.full.signal()
            return true
        }
        empty.wait()
        filled[sequence % 2] = nil
        full.signal()
    }

    /// Reads each chunk of each region into the slot `slot` picks (nil: stop), and hands it to
    /// `deliver` (nil when stopping). A short read skips only what fails: the failing page, or the
    /// span the map shows failing the same way, and reading resumes after it in the same region (a
    /// page made unreadable or unmapped meanwhile must not hide the rest of a large region).
    private func forEachChunk(slot pick: (Int) -> Int?, _ deliver: (StreamChunk?) -> Bool) {
        for (index, region) in regions.enumerated() {
            var position = region.start
            while position < region.end {
                guard let slot = pick(index) else { _ = deliver(nil); return }
                let own = Int(min(UInt64(chunkSize), region.end - position))
                var wanted = Int(min(UInt64(chunkSize + overlap), region.end - position))
                if let residency {
                    if !residency.anyResident(position, count: own) {
                        let chunk = StreamChunk(regionIndex: index, address: position, bytes: UnsafeRawBufferPointer(slots[slot]),
                                                count: 0, ownCount: 0, stop: nil, notResident: own)
                        guard deliver(chunk) else { return }
                        position += UInt64(own)
                        continue
                    }
                    // Reading the overlap would fault in the next chunk's first page (the zero page
                    // for untouched memory), which would then look resident: read it only if it is.
                    if wanted > own && !residency.anyResident(position + UInt64(own), count: wanted - own) { wanted = own }
                }
                let target = UnsafeMutableRawBufferPointer(rebasing: slots[slot][0..<wanted])
                var count = 0
                var stop: ProcessMemoryError?
                do {
                    let transfer = try handle.readTransfer(from: position, into: target, mode: .respectingProtections)
                    count = transfer.bytesTransferred
                    // A stop inside the overlap is the next chunk's business.
                    if let failure = transfer.stop, count < own { stop = failure }
                } catch {
                    stop = error
                }
                var resume = region.end
                if let stop, !Self.endsTheStream(stop) {
                    resume = resumeAddress(after: position + UInt64(count), in: region, stop: stop)
                }
                var chunk = StreamChunk(regionIndex: index, address: position, bytes: UnsafeRawBufferPointer(slots[slot]),
                                        count: count, ownCount: min(own, count), stop: stop)
                chunk.resumeAt = resume
                guard deliver(chunk) else { return }
                if let stop {
                    if Self.endsTheStream(stop) { return }
                    position = resume
                    continue
                }
                position += UInt64(own)
            }
        }
    }

    /// The process is gone, exec'd or the handle closed: nothing more can be read.
    static func endsTheStream(_ error: ProcessMemoryError) -> Bool {
        error.code == .badState || error.code == .execed || error.code == .badHandle
    }

    /// Where to read next after a failure at `failedAt`: past its page at least, and past the span
    /// over which the map says the same failure holds (one PROCMAP_QUERY or maps lookup), within
    /// the region.
    private func resumeAddress(after failedAt: UInt64, in region: MemoryRegion, stop: ProcessMemoryError) -> UInt64 {
        let pageEnd = AddressSpace.pageStart(failedAt) + AddressSpace.pageSize
        var next = pageEnd
        let raw = RawStop(systemCall: stop.systemCall ?? .processVMReadv, errno: stop.errno)
        let span = try? handle.classifyStop(at: failedAt, kind: .read(.respectingProtections), transferred: 0, stop: raw).span
        if let span = span ?? nil, span.contains(failedAt) { next = max(next, span.upperBound) }
        return min(region.end, next)
    }
}
