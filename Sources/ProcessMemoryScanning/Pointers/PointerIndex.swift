import ProcessMemoryCore
/// A sorted index of the pointers found in a process's writable memory: for each aligned word of
/// the pointer format's size (8 or 4 bytes) whose value could point near a node of interest, the
/// pair (value, location).
///
/// Built by streaming each region through one reused buffer (`pread(2)` on `/proc/PID/mem`, 1 MiB
/// at a time); only the pairs are kept, 16 bytes each, up to a cap. Words are kept only when their
/// value lies in an accepted range, which drops the many values that cannot lead anywhere (small
/// integers, code addresses).
struct PointerIndex {
    /// Pointer values, ascending.
    private(set) var values: [UInt64] = []
    /// The location of `values[i]`.
    private(set) var locations: [UInt64] = []

    /// A readable range that could not be indexed, and why.
    typealias Skip = PointerScanResult.SkippedRange

    /// Sorted, non-overlapping value ranges a word must fall in to be kept.
    let accepted: [Range<UInt64>]
    /// How pointers are stored.
    let format: PointerFormat

    init(accepting ranges: [Range<UInt64>], format: PointerFormat = .native) {
        self.format = format
        var merged: [Range<UInt64>] = []
        for range in ranges.filter({ !$0.isEmpty }).sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = merged.last, range.lowerBound <= last.upperBound {
                merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        accepted = merged
    }

    var count: Int { values.count }

    /// Whether `value` falls in an accepted range (binary search).
    func accepts(_ value: UInt64) -> Bool {
        var low = 0
        var high = accepted.count
        while low < high {
            let mid = (low + high) / 2
            if accepted[mid].upperBound <= value { low = mid + 1 } else { high = mid }
        }
        return low < accepted.count && accepted[low].contains(value)
    }

    /// Adds the accepted words of `chunk`, which was read from `address` (aligned to the pointer
    /// size). Returns `false` once `limit` pairs are held.
    mutating func add(_ chunk: UnsafeRawBufferPointer, at address: UInt64, limit: Int) -> Bool {
        switch (format.width, format.byteOrder) {
        case (.bits64, .little): return add(chunk, at: address, limit: limit, size: 8) { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: $1, as: UInt64.self)) }
        case (.bits64, .big): return add(chunk, at: address, limit: limit, size: 8) { UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: $1, as: UInt64.self)) }
        case (.bits32, .little): return add(chunk, at: address, limit: limit, size: 4) { UInt64(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: $1, as: UInt32.self))) }
        case (.bits32, .big): return add(chunk, at: address, limit: limit, size: 4) { UInt64(UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: $1, as: UInt32.self))) }
        }
    }

    @inline(__always)
    private mutating func add(_ chunk: UnsafeRawBufferPointer, at address: UInt64, limit: Int, size: Int,
                              _ load: (UnsafeRawBufferPointer, Int) -> UInt64) -> Bool {
        guard let lowest = accepted.first?.lowerBound, let highest = accepted.last?.upperBound else { return true }
        let words = chunk.count / size
        for index in 0..<words {
            let value = load(chunk, index * size)
            guard value >= lowest, value < highest, accepts(value) else { continue }
            if values.count >= limit { return false }
            values.append(value)
            locations.append(address &+ UInt64(index * size))
        }
        return true
    }

    /// Sorts the pairs by value (locations break ties), once all chunks are added.
    mutating func sort() {
        var order = Array(values.indices)
        order.sort { values[$0] != values[$1] ? values[$0] < values[$1] : locations[$0] < locations[$1] }
        values = order.map { values[$0] }
        locations = order.map { locations[$0] }
    }

    /// The indices of pairs whose value lies in `range` (after ``sort()``).
    func indices(ofValuesIn range: ClosedRange<UInt64>) -> Range<Int> {
        var low = 0
        var high = values.count
        while low < high {
            let mid = (low + high) / 2
            if values[mid] < range.lowerBound { low = mid + 1 } else { high = mid }
        }
        var end = low
        while end < values.count && values[end] <= range.upperBound { end += 1 }
        return low..<end
    }
}
