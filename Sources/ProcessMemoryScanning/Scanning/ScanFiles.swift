import Glibc
import SystemPackage
import ProcessMemoryCore

/// A file written through a 1 MiB buffer with `write(2)`.
final class ScanFileOutput {
    private let fd: CInt
    private let path: String
    private var buffer: [UInt8] = []

    init(path: String) throws(ProcessMemoryError) {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Self.failure(.open, path, Errno(rawValue: errno)) }
        self.fd = fd
        self.path = path
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

    func write(_ bytes: UnsafeRawBufferPointer, _ checksum: inout ScanChecksum) throws(ProcessMemoryError) {
        checksum.add(bytes)
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 20 { try flush() }
    }

    func flush() throws(ProcessMemoryError) {
        var offset = 0
        while offset < buffer.count {
            let written = buffer.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.write(fd, base + offset, raw.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw Self.failure(.write, path, Errno(rawValue: errno))
            }
            offset += written
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes and `fsync(2)`s.
    func finish() throws(ProcessMemoryError) {
        try flush()
        _ = fsync(fd)
    }

    func close() { _ = Glibc.close(fd) }

    static func failure(_ call: SystemCall.Name, _ path: String, _ error: Errno) -> ProcessMemoryError {
        ProcessMemoryError(error == .permissionDenied ? .accessDenied : (error == .noSuchFileOrDirectory ? .notFound : .io),
                           systemCall: SystemCall(call, path), errno: error, message: "\(path): \(error)")
    }
}

/// A file read through a 1 MiB buffer with `read(2)`, failing clearly at a short end.
final class ScanFileInput {
    private let fd: CInt
    private let path: String
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    private var start = 0
    private var end = 0

    init(path: String) throws(ProcessMemoryError) {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ScanFileOutput.failure(.open, path, Errno(rawValue: errno)) }
        self.fd = fd
        self.path = path
    }

    func close() { _ = Glibc.close(fd) }

    /// The whole file, up to `limit` bytes.
    func readAll(limit: Int) throws(ProcessMemoryError) -> [UInt8] {
        var all: [UInt8] = []
        while true {
            guard try fill() else { return all }
            all += buffer[start..<end]
            start = end
            if all.count > limit { throw corrupt("the file is larger than \(limit) bytes") }
        }
    }

    /// Refills the buffer when empty; false at end of file.
    private func fill() throws(ProcessMemoryError) -> Bool {
        if start < end { return true }
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ScanFileOutput.failure(.read, path, Errno(rawValue: errno))
            }
            start = 0
            end = n
            return n > 0
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
    /// Writes the set to `path` (created or truncated, mode 0600) in the versioned match-file format.
    ///
    /// The corresponding C calls are `open(2)`, `write(2)` and `fsync(2)`.
    public func save(to path: String) throws(ProcessMemoryError) {
        let file = try ScanFileOutput(path: path)
        defer { file.close() }
        try file.write(MatchFileFormat.encode(self))
        try file.finish()
    }

    /// Reads a set saved by ``save(to:)``.
    ///
    /// - Throws: `.invalidArguments` with a clear message for a file that is not a match file, of
    ///   another version, truncated or corrupt (checksums); `.notFound`/`.accessDenied`/`.io` when
    ///   it cannot be read.
    public init(contentsOf path: String) throws(ProcessMemoryError) {
        let file = try ScanFileInput(path: path)
        defer { file.close() }
        let bytes = try file.readAll(limit: 16 << 30)
        switch MatchFileFormat.decode(bytes) {
        case .success(let set): self = set
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
