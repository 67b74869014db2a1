import Glibc
import SystemPackage
import ProcessMemoryCore

/// The ranges that differ between two snapshots: two dump directories, or a dump directory and the
/// live process.
///
/// Bytes are compared only where both sides could be read; ranges readable on one side only are
/// listed apart. Changed ranges are exact runs of differing bytes, in address order.
public struct SnapshotDiff: Sendable, Hashable {
    /// An address range.
    public struct Range: Sendable, Hashable, CustomStringConvertible {
        /// First address.
        public var start: UInt64
        /// One past the last address.
        public var end: UInt64
        /// Bytes in the range.
        public var count: UInt64 { end - start }
        /// `0xSTART-0xEND`.
        public var description: String { "0x\(String(start, radix: 16))-0x\(String(end, radix: 16))" }

        /// Creates a range.
        public init(start: UInt64, end: UInt64) {
            self.start = start
            self.end = end
        }
    }

    /// Runs of bytes that differ.
    public var changed: [Range]
    /// Ranges readable in the first snapshot only (unmapped or unreadable in the second).
    public var onlyInFirst: [Range]
    /// Ranges readable in the second snapshot only.
    public var onlyInSecond: [Range]
    /// Bytes compared (readable in both).
    public var bytesCompared: UInt64

    /// Compares two dump directories written by ``ProcessHandle/dump(toDirectory:options:)``.
    ///
    /// - Throws: `.invalidArguments` when a directory holds no dump index; `.io` when a region file
    ///   is missing or short.
    public static func compare(directory first: String, directory second: String) throws(ProcessMemoryError) -> SnapshotDiff {
        let a = try DumpDirectory(first)
        defer { a.close() }
        let b = try DumpDirectory(second)
        defer { b.close() }
        return try compare(a.segments, b.segments, first: a.read, second: b.read)
    }

    /// Compares a dump directory with the live process behind `handle`, stopped with `stopMethod`
    /// while it is read.
    ///
    /// - Throws: as ``compare(directory:directory:)``, and what ``ProcessHandle/stop(_:)`` throws.
    public static func compare(directory first: String, live handle: ProcessHandle, stopMethod: StopMethod = .ptrace,
                               readMode: ReadMode = .debugger) throws(ProcessMemoryError) -> SnapshotDiff {
        let a = try DumpDirectory(first)
        defer { a.close() }
        let stopped = try handle.stop(stopMethod)
        defer { stopped.resume() }
        let map = try handle.memoryMap()
        // The live side: every region, read on demand; a read that fails makes that part one-sided.
        let live = map.regions.map { Range(start: $0.start, end: $0.end) }
        return try compare(a.segments, live, first: a.read) { (address, buffer) throws(ProcessMemoryError) -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            let (done, stop) = try handle.transfer(at: address, into: base, count: buffer.count, mode: readMode)
            if stop?.addressSpaceGone == true { throw handle.lifecycleError(address: address, bytesTransferred: 0, systemCall: stop?.systemCall, errno: nil) }
            return done
        }
    }

    typealias Reader = (UInt64, UnsafeMutableRawBufferPointer) throws(ProcessMemoryError) -> Int

    /// The comparison: both sides' readable ranges, and a reader for each that returns how many
    /// bytes at an address it could give (fewer means the rest is unreadable on that side).
    static func compare(_ firstRanges: [Range], _ secondRanges: [Range], first: Reader, second: Reader) throws(ProcessMemoryError) -> SnapshotDiff {
        var diff = SnapshotDiff(changed: [], onlyInFirst: [], onlyInSecond: [], bytesCompared: 0)
        let chunk = 1 << 20
        let bufferA = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { bufferA.deallocate() }
        let bufferB = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { bufferB.deallocate() }
        var bothReadable: [Range] = []
        for overlap in intersect(firstRanges, secondRanges) {
            var cursor = overlap.start
            while cursor < overlap.end {
                let want = Int(min(UInt64(chunk), overlap.end - cursor))
                let gotA = try first(cursor, UnsafeMutableRawBufferPointer(rebasing: bufferA[0..<want]))
                let gotB = try second(cursor, UnsafeMutableRawBufferPointer(rebasing: bufferB[0..<want]))
                let both = min(gotA, gotB)
                if both > 0 {
                    appendDifferences(bufferA, bufferB, count: both, at: cursor, into: &diff.changed)
                    append(Range(start: cursor, end: cursor + UInt64(both)), to: &bothReadable)
                    diff.bytesCompared += UInt64(both)
                }
                if both < want {
                    // Past a side's readable prefix, skip the page: that part is one-sided (or neither).
                    cursor = min(overlap.end, AddressSpace.pageStart(cursor + UInt64(both)) + AddressSpace.pageSize)
                } else {
                    cursor += UInt64(both)
                }
            }
        }
        diff.onlyInFirst = try readableParts(of: subtract(firstRanges, bothReadable), reader: first, buffer: bufferA)
        diff.onlyInSecond = try readableParts(of: subtract(secondRanges, bothReadable), reader: second, buffer: bufferB)
        return diff
    }

    /// The parts of `ranges` that `reader` can actually read (a live process's map also lists
    /// guard pages, `[vvar]` and the like).
    static func readableParts(of ranges: [Range], reader: Reader, buffer: UnsafeMutableRawBufferPointer) throws(ProcessMemoryError) -> [Range] {
        var result: [Range] = []
        for range in ranges {
            var cursor = range.start
            while cursor < range.end {
                let want = Int(min(UInt64(buffer.count), range.end - cursor))
                let got = try reader(cursor, UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]))
                if got > 0 { append(Range(start: cursor, end: cursor + UInt64(got)), to: &result) }
                cursor = got < want ? min(range.end, AddressSpace.pageStart(cursor + UInt64(got)) + AddressSpace.pageSize)
                                    : cursor + UInt64(got)
            }
        }
        return result
    }

    /// Exact runs of differing bytes; memcmp(3) skips equal 4 KiB blocks.
    static func appendDifferences(_ a: UnsafeMutableRawBufferPointer, _ b: UnsafeMutableRawBufferPointer, count: Int,
                                  at address: UInt64, into changed: inout [Range]) {
        guard let baseA = a.baseAddress, let baseB = b.baseAddress else { return }
        let block = 4096
        var offset = 0
        while offset < count {
            let length = min(block, count - offset)
            if memcmp(baseA + offset, baseB + offset, length) != 0 {
                for index in offset..<(offset + length) where a[index] != b[index] {
                    let byte = address + UInt64(index)
                    append(Range(start: byte, end: byte + 1), to: &changed)
                }
            }
            offset += length
        }
    }

    /// Appends `range`, merging it with the last range when they touch.
    static func append(_ range: Range, to ranges: inout [Range]) {
        if let last = ranges.last, last.end == range.start {
            ranges[ranges.count - 1].end = range.end
        } else {
            ranges.append(range)
        }
    }

    /// The overlaps of two sorted, disjoint range lists.
    static func intersect(_ a: [Range], _ b: [Range]) -> [Range] {
        var result: [Range] = []
        var i = 0
        var j = 0
        while i < a.count && j < b.count {
            let start = max(a[i].start, b[j].start)
            let end = min(a[i].end, b[j].end)
            if start < end { result.append(Range(start: start, end: end)) }
            if a[i].end < b[j].end { i += 1 } else { j += 1 }
        }
        return result
    }

    /// `ranges` minus `removed` (both sorted and disjoint).
    static func subtract(_ ranges: [Range], _ removed: [Range]) -> [Range] {
        var result: [Range] = []
        var j = 0
        for range in ranges {
            var cursor = range.start
            while j < removed.count && removed[j].end <= cursor { j += 1 }
            var k = j
            while k < removed.count && removed[k].start < range.end {
                if removed[k].start > cursor { result.append(Range(start: cursor, end: removed[k].start)) }
                cursor = max(cursor, removed[k].end)
                k += 1
            }
            if cursor < range.end { result.append(Range(start: cursor, end: range.end)) }
        }
        return result
    }
}

/// A dump directory opened for reading: its index, and its region files read with `pread(2)`.
struct DumpDirectory {
    let index: DumpIndex
    let directory: FileDescriptor
    let path: String
    let sorted: [DumpIndex.Segment]

    init(_ path: String) throws(ProcessMemoryError) {
        self.path = path
        switch FileDescriptor.open(path: path, O_RDONLY | O_DIRECTORY) {
        case .success(let fd): directory = fd
        case .failure(let error):
            throw ProcessMemoryError(.invalidArguments, systemCall: SystemCall(.open, path), errno: error,
                                     message: "\(path) is not a dump directory: \(error)")
        }
        do throws(ProcessMemoryError) {
            index = try DumpIndex.decode(try Self.readIndex(directory, path))
        } catch {
            directory.closeQuietly()
            throw error
        }
        sorted = index.regions.flatMap(\.segments).filter { $0.file != nil }.sorted { $0.start < $1.start }
    }

    func close() { directory.closeQuietly() }

    /// The bytes of `index.json`: a regular file, not a link, at most 1 GiB, read no further than
    /// the size it had when opened.
    static func readIndex(_ directory: FileDescriptor, _ path: String) throws(ProcessMemoryError) -> [UInt8] {
        let shown = path + "/" + DumpIndex.fileName
        let opened: (fd: FileDescriptor, size: UInt64)
        do throws(ProcessMemoryError) {
            opened = try InputFiles.openRegular(directory, DumpIndex.fileName, shown: shown, noFollow: true)
        } catch where error.code == .notFound {
            throw ProcessMemoryError(.invalidArguments, systemCall: error.systemCall, errno: error.errno,
                                     message: "\(path) holds no \(DumpIndex.fileName): \(error.errno.map { "\($0)" } ?? error.message)")
        }
        defer { opened.fd.closeQuietly() }
        guard opened.size <= 1 << 30 else {
            throw ProcessMemoryError(.invalidArguments, message: "\(shown) holds \(opened.size) bytes; a dump index is never larger than 1 GiB")
        }
        switch opened.fd.readToEnd(limit: Int(opened.size)) {
        case .success(let bytes): return bytes
        case .failure(let error):
            throw ProcessMemoryError(.io, systemCall: SystemCall(.read, shown), errno: error, message: "\(shown) cannot be read: \(error)")
        }
    }

    var segments: [SnapshotDiff.Range] { sorted.map { SnapshotDiff.Range(start: $0.start, end: $0.end) } }

    /// Reads up to `buffer.count` bytes at `address` from the segment holding it.
    func read(_ address: UInt64, _ buffer: UnsafeMutableRawBufferPointer) throws(ProcessMemoryError) -> Int {
        var low = 0
        var high = sorted.count
        while low < high {
            let mid = (low + high) / 2
            if sorted[mid].end <= address { low = mid + 1 } else { high = mid }
        }
        guard low < sorted.count, sorted[low].start <= address, let file = sorted[low].file,
              let base = buffer.baseAddress else { return 0 }
        let segment = sorted[low]
        let want = Int(min(UInt64(buffer.count), segment.end - address))
        // Only the files a dump writes: a link planted in the directory is refused, not followed.
        let opened: (fd: FileDescriptor, size: UInt64)
        do throws(ProcessMemoryError) {
            opened = try InputFiles.openRegular(directory, file, shown: "\(path)/\(file)", noFollow: true)
        } catch {
            throw ProcessMemoryError(.io, systemCall: error.systemCall, errno: error.errno,
                                     message: "\(path)/\(file), listed in the index, cannot be opened: \(error.message)")
        }
        let fd = opened.fd
        defer { fd.closeQuietly() }
        var done = 0
        while done < want {
            switch fd.pread(base + done, want - done, at: segment.fileOffset + (address - segment.start) + UInt64(done)) {
            case .success(0): throw ProcessMemoryError(.io, message: "\(path)/\(file) is shorter than its index says")
            case .success(let got): done += got
            case .failure(let error):
                throw ProcessMemoryError(.io, systemCall: SystemCall(.pread, file), errno: error, message: "\(path)/\(file) cannot be read: \(error)")
            }
        }
        return done
    }
}
