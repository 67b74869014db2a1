import Glibc
import SystemPackage
import ProcessMemoryCore

/// A file written through a 1 MiB buffer, as an ``OutputFile`` that replaces `path` only when
/// ``finish()`` succeeds (``close()`` before that removes it and leaves an older `path` as it was).
final class ScanFileOutput {
    private let file: OutputFile
    private var buffer: [UInt8] = []

    init(path: String) throws(ProcessMemoryError) {
        let (directory, name) = try OutputDirectory.containing(path)
        defer { directory.close() }
        file = try directory.createReplacement(for: name)
        buffer.reserveCapacity(1 << 20)
    }

    func write(_ bytes: [UInt8]) throws(ProcessMemoryError) {
        buffer += bytes
        if buffer.count >= 1 << 20 { try flush() }
    }

    func write(tag: SnapshotFileFormat.Tag, _ checksum: inout ScanChecksum) throws(ProcessMemoryError) {
        checksum.add(CollectionOfOne(tag.rawValue))
        buffer.append(tag.rawValue)
        if buffer.count >= 1 << 20 { try flush() }
    }

    /// A narrowed snapshot's candidates byte (0 none, 1 all, 2 a bitmap follows).
    func write(mask state: UInt8, _ checksum: inout ScanChecksum) throws(ProcessMemoryError) {
        checksum.add(CollectionOfOne(state))
        buffer.append(state)
        if buffer.count >= 1 << 20 { try flush() }
    }

    func write(_ bytes: UnsafeRawBufferPointer, _ checksum: inout ScanChecksum) throws(ProcessMemoryError) {
        checksum.add(bytes)
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 20 { try flush() }
    }

    func flush() throws(ProcessMemoryError) {
        let result = buffer.withUnsafeBytes { raw in Result { () throws(ProcessMemoryError) in try file.append(raw) } }
        try result.get()
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes, `fsync(2)`s and renames the file over its path (`renameat(2)`); `beforeCommit`
    /// runs once the data is written, just before that (to move the older file aside).
    func finish(beforeCommit: () throws(ProcessMemoryError) -> Void = {}) throws(ProcessMemoryError) {
        try flush()
        try beforeCommit()
        try file.commit()
    }

    /// Closes the file; unfinished, it is removed.
    func close() { file.discard() }

    static func failure(_ call: SystemCall.Name, _ path: String, _ error: Errno) -> ProcessMemoryError {
        ProcessMemoryError(error == .permissionDenied ? .accessDenied : (error == .noSuchFileOrDirectory ? .notFound : .io),
                           systemCall: SystemCall(call, path), errno: error, message: "\(path): \(error)")
    }
}

/// A file read through a 1 MiB buffer with `read(2)`, failing clearly at a short end.
final class ScanFileInput {
    private let fd: FileDescriptor
    private let path: String
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    private var start = 0
    private var end = 0

    /// The file's size when opened.
    let size: UInt64

    /// Opens `path` for reading: only a regular file (a FIFO, a device or a directory would block
    /// or never end), opened with `O_NONBLOCK` so that a FIFO cannot block the open itself.
    init(path: String) throws(ProcessMemoryError) {
        let opened = try InputFiles.openRegular(FileDescriptor.currentDirectory, path, shown: path)
        fd = opened.fd
        size = opened.size
        self.path = path
    }

    func close() { fd.closeQuietly() }

    /// The next bytes of the file (what is buffered, else up to 1 MiB read now); nil at its end.
    func nextPiece() throws(ProcessMemoryError) -> [UInt8]? {
        guard try fill() else { return nil }
        defer { start = end }
        return Array(buffer[start..<end])
    }

    /// Refills the buffer when empty; false at end of file.
    private func fill() throws(ProcessMemoryError) -> Bool {
        if start < end { return true }
        let result = buffer.withUnsafeMutableBytes { raw -> Result<Int, Errno> in
            guard let base = raw.baseAddress else { return .success(0) }
            return fd.readSome(base, raw.count)
        }
        switch result {
        case .success(let n):
            start = 0
            end = n
            return n > 0
        case .failure(let error):
            throw ScanFileOutput.failure(.read, path, error)
        }
    }

    private func corrupt(_ message: String) -> ProcessMemoryError {
        ProcessMemoryError(.invalidArguments, message: "\(path): \(message)")
    }

    func take(_ count: Int) throws(ProcessMemoryError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            guard try fill() else { throw corrupt("the file is truncated") }
            let n = min(count - out.count, end - start)
            out += buffer[start..<(start + n)]
            start += n
        }
        return out
    }

    func snapshotHeader() throws(ProcessMemoryError) -> SnapshotFileFormat.Header {
        // The header is small; read up to 1 MiB of it, decode, and keep the rest buffered.
        guard try fill() else { throw corrupt("the file is empty") }
        var head = Array(buffer[start..<end])
        // A region table may exceed one buffer: grow until the header decodes or the file ends.
        while true {
            switch SnapshotFileFormat.decodeHeader(head) {
            case .success(let (header, length)):
                let consumed = length - (head.count - (end - start))
                start += consumed
                return header
            case .failure(let failure):
                if failure.message.contains("truncated"), head.count < 64 << 20 {
                    start = end
                    guard try fill() else { throw corrupt(failure.message) }
                    head += buffer[start..<end]
                    continue
                }
                throw corrupt(failure.message)
            }
        }
    }

    /// A narrowed snapshot's candidates byte.
    func maskState(_ checksum: inout ScanChecksum) throws(ProcessMemoryError) -> CandidateMasks.State {
        guard try fill() else { throw corrupt("the snapshot is truncated in its pages") }
        let byte = buffer[start]
        start += 1
        checksum.add(CollectionOfOne(byte))
        guard let state = CandidateMasks.State(rawValue: byte) else { throw corrupt("the snapshot holds an invalid candidates record") }
        return state
    }

    func tag(_ checksum: inout ScanChecksum) throws(ProcessMemoryError) -> SnapshotFileFormat.Tag {
        guard try fill() else { throw corrupt("the snapshot is truncated in its pages") }
        let byte = buffer[start]
        start += 1
        checksum.add(CollectionOfOne(byte))
        guard let tag = SnapshotFileFormat.Tag(rawValue: byte) else { throw corrupt("the snapshot holds an invalid page record") }
        return tag
    }

    /// Reads `count` bytes into `target`, or discards them when `target` is nil.
    func read(into target: UnsafeMutableRawBufferPointer?, count: Int, _ checksum: inout ScanChecksum) throws(ProcessMemoryError) {
        var filled = 0
        while filled < count {
            guard try fill() else { throw corrupt("the snapshot is truncated in its pages") }
            let n = min(count - filled, end - start)
            buffer.withUnsafeBytes { raw in
                let source = UnsafeRawBufferPointer(rebasing: raw[start..<(start + n)])
                if let target { UnsafeMutableRawBufferPointer(rebasing: target[filled..<(filled + n)]).copyMemory(from: source) }
                checksum.add(source)
            }
            start += n
            filled += n
        }
    }

    func verifyTrailer(_ expected: UInt64) throws(ProcessMemoryError) {
        let trailer = try take(8)
        var value: UInt64 = 0
        for (index, byte) in trailer.enumerated() { value |= UInt64(byte) << (8 * UInt64(index)) }
        guard value == expected else { throw corrupt("the snapshot's checksum does not match: the file is corrupt") }
        guard try !fill() else { throw corrupt("the snapshot has unexpected bytes after its trailer") }
    }
}

extension MatchSet {
    /// Writes the set to `path` (mode 0600) in the versioned match-file format, replacing an older
    /// file atomically: a temporary file is written beside it and renamed over it, so a failed or
    /// killed save leaves the older file as it was, and a link at `path` is never followed.
    ///
    /// - Throws: `.accessDenied` when `path` or its directory is a link or another user's.
    ///
    /// The corresponding C calls are `openat(2)` with `O_CREAT | O_EXCL | O_NOFOLLOW`, `pwrite(2)`,
    /// `fsync(2)` and `renameat(2)`.
    public func save(to path: String) throws(ProcessMemoryError) {
        let file = try ScanFileOutput(path: path)
        defer { file.close() }
        try MatchFileFormat.encode(self) { (piece: [UInt8]) throws(ProcessMemoryError) in try file.write(piece) }
        try checkSpill()
        try file.finish()
    }

    /// Reads a set saved by ``save(to:)``.
    ///
    /// - Throws: `.invalidArguments` with a clear message for a file that is not a match file, of
    ///   another version, truncated or corrupt (checksums); `.notFound`/`.accessDenied`/`.io` when
    ///   it cannot be read.
    public init(contentsOf path: String) throws(ProcessMemoryError) {
        try self.init(contentsOf: path, spill: MatchSet.defaultSpill)
    }

    /// Reads a set saved by ``save(to:)`` in 1 MiB pieces, spilling as `spill` says: memory stays
    /// bounded whatever the file's size.
    init(contentsOf path: String, spill: SpillPolicy) throws(ProcessMemoryError) {
        let file = try ScanFileInput(path: path)
        defer { file.close() }
        // The header first: a file that is not a match file fails at once, and no more is read
        // than the header's counts allow.
        let head = try file.take(Int(min(file.size, UInt64(MatchFileFormat.headerSize))))
        let largest: UInt64
        switch MatchFileFormat.largestFile(header: head) {
        case .success(let bound): largest = bound
        case .failure(let failure): throw ProcessMemoryError(.invalidArguments, message: "\(path): \(failure.message)")
        }
        guard file.size <= largest else {
            throw ProcessMemoryError(.invalidArguments, message: "\(path): the file holds \(file.size) bytes, more than its header allows (\(largest))")
        }
        let readFailure = Locked<ProcessMemoryError?>(nil)
        var reader = ScanFileReader(first: head, total: file.size) {
            do throws(ProcessMemoryError) { return try file.nextPiece() } catch {
                readFailure.withLock { $0 = $0 ?? error }
                return nil
            }
        }
        let decoded = MatchFileFormat.decode(&reader, spill: spill)
        if let failure = readFailure.withLock({ $0 }) { throw failure }
        switch decoded {
        case .success(let set):
            try set.checkSpill()
            self = set
        case .failure(let failure):
            throw ProcessMemoryError(.invalidArguments, message: "\(path): \(failure.message)")
        }
    }

    /// Whether the file at `path` starts like a snapshot file.
    public static func isSnapshotFile(_ path: String) -> Bool {
        guard let file = try? ScanFileInput(path: path), let head = try? file.take(8) else { return false }
        file.close()
        return head == SnapshotFileFormat.magic
    }
}

extension ScanValue {
    /// Parses `text` as a value of `type` (see the type's documentation for the accepted forms).
    ///
    /// - Throws: `.invalidArguments` with a message naming what is wrong.
    public init(_ text: String, as type: ScanValueType, byteOrder: ScanByteOrder = .little,
                tolerance: Double? = nil) throws(ProcessMemoryError) {
        switch Self.parse(text, as: type, byteOrder: byteOrder, tolerance: tolerance) {
        case .success(let value): self = value
        case .failure(let failure): throw .invalid(failure.message)
        }
    }
}

extension BytePattern {
    /// Parses hex text with wildcards: `48 8b ?? ?? 05`, `4?`, `488b??05`.
    ///
    /// - Throws: `.invalidArguments` with a message naming what is wrong.
    public init(hex text: String) throws(ProcessMemoryError) {
        switch Self.parse(hex: text) {
        case .success(let pattern): self = pattern
        case .failure(let failure): throw .invalid(failure.message)
        }
    }
}

/// What a snapshot file records: its process, value type and regions (read from its header only).
public struct SnapshotInfo: Sendable, Hashable {
    /// The process the snapshot was taken of.
    public var pid: Int32
    /// That process's start time (field 22 of /proc/PID/stat), which binds the file to it.
    public var processStartTime: UInt64
    /// The value type the snapshot compares.
    public var type: ScanValueType
    /// The byte order of those values.
    public var byteOrder: ScanByteOrder
    /// The regions the snapshot holds.
    public var regions: [MatchSet.Region]

    /// Reads the header of the snapshot at `path`.
    ///
    /// - Throws: `.invalidArguments` for a file that is not a valid snapshot.
    public init(contentsOf path: String) throws(ProcessMemoryError) {
        let file = try ScanFileInput(path: path)
        defer { file.close() }
        let header = try file.snapshotHeader()
        self.init(pid: header.pid, processStartTime: header.processStartTime, type: header.type,
                  byteOrder: header.byteOrder, regions: header.regions)
    }

    init(pid: Int32, processStartTime: UInt64, type: ScanValueType, byteOrder: ScanByteOrder, regions: [MatchSet.Region]) {
        self.pid = pid
        self.processStartTime = processStartTime
        self.type = type
        self.byteOrder = byteOrder
        self.regions = regions
    }
}
