import SystemPackage
import ProcessMemoryCore

/// The matches of a set that outgrew memory, as fixed-size records in an unnamed file.
///
/// The file is created in a fresh private directory (mode 0700, through the core's
/// ``OutputDirectory``: `mkdirat(2)`, then `openat(2)` with `O_CREAT | O_EXCL | O_NOFOLLOW`, mode
/// 0600), and both are removed (`unlinkat(2)`) as soon as the file is open: nothing is left on disk
/// when the set is freed or the process dies. Records (address u64, bits u64, width u8, and for
/// byte content a digest u64) are appended with `pwrite(2)` in batches and read back with
/// `pread(2)` a block of 4096 records at a time, so reading a set in order costs one call per block.
final class MatchSpillFile: MatchSpillStorage, @unchecked Sendable {
    private struct State {
        var file: OutputFile?
        var count = 0
        var failure: ProcessMemoryError?
        var block: [UInt8] = []
        var blockStart = -1
        var blockCount = 0
    }

    /// Bytes per record.
    let recordSize: Int
    private let hasDigests: Bool
    private let directory: String
    private let state: Locked<State>
    private static let recordsPerBlock = 4096

    /// Storage in a new private directory under `directory`, made on the first append.
    init(directory: String, digests: Bool) {
        self.directory = directory
        hasDigests = digests
        recordSize = digests ? 25 : 17
        state = Locked(State())
    }

    /// The first failure to create, write or read the file, if any.
    var failure: ProcessMemoryError? { state.withLock { $0.failure } }

    var recordCount: Int { state.withLock { $0.count } }

    private func opened(_ state: inout State) -> OutputFile? {
        if let file = state.file { return file }
        guard state.failure == nil else { return nil }
        do throws(ProcessMemoryError) {
            let parent = try OutputDirectory.open(directory, create: false)
            defer { parent.close() }
            let (made, name) = try parent.createReplacementDirectory(for: "procmem-matches")
            defer {
                made.close()
                parent.removeTree(name)
            }
            let file = try made.createNew("matches")
            state.file = file
            return file
        } catch {
            state.failure = error
            return nil
        }
    }

    func append(addresses: [UInt64], bits: [UInt64], widths: [UInt8], digests: [UInt64]) -> Bool {
        state.withLock { state in
            guard let file = opened(&state) else { return false }
            let size = recordSize
            // In pieces of at most 4096 records, so the encoding buffer stays small.
            var start = 0
            var buffer = [UInt8](repeating: 0, count: Self.recordsPerBlock * size)
            while start < addresses.count {
                let end = min(addresses.count, start + Self.recordsPerBlock)
                let failed: ProcessMemoryError? = buffer.withUnsafeMutableBytes { raw in
                    for index in start..<end {
                        let at = (index - start) * size
                        raw.storeBytes(of: addresses[index].littleEndian, toByteOffset: at, as: UInt64.self)
                        raw.storeBytes(of: bits[index].littleEndian, toByteOffset: at + 8, as: UInt64.self)
                        raw[at + 16] = widths[index]
                        if hasDigests {
                            raw.storeBytes(of: (index < digests.count ? digests[index] : 0).littleEndian,
                                           toByteOffset: at + 17, as: UInt64.self)
                        }
                    }
                    do throws(ProcessMemoryError) {
                        try file.write(UnsafeRawBufferPointer(rebasing: raw[0..<((end - start) * size)]),
                                       at: UInt64(state.count) * UInt64(size))
                        return nil
                    } catch { return error }
                }
                if let failed {
                    state.failure = state.failure ?? failed
                    return false
                }
                state.count += end - start
                start = end
            }
            return true
        }
    }

    func copy(from other: any MatchSpillStorage, count: Int) -> Bool {
        var index = 0
        while index < count {
            let end = min(count, index + Self.recordsPerBlock)
            var addresses: [UInt64] = [], bits: [UInt64] = [], widths: [UInt8] = [], digests: [UInt64] = []
            for i in index..<end {
                guard let match = other.record(i) else { return false }
                addresses.append(match.address); bits.append(match.bits); widths.append(UInt8(truncatingIfNeeded: match.width))
                if hasDigests { digests.append(match.digest ?? 0) }
            }
            guard append(addresses: addresses, bits: bits, widths: widths, digests: digests) else { return false }
            index = end
        }
        return true
    }

    func record(_ index: Int) -> MatchSet.Match? {
        state.withLock { state -> MatchSet.Match? in
            guard index >= 0, index < state.count, let file = state.file else { return nil }
            if index < state.blockStart || index >= state.blockStart + state.blockCount {
                let start = index - index % Self.recordsPerBlock
                let wanted = min(Self.recordsPerBlock, state.count - start)
                if state.block.count < wanted * recordSize { state.block = [UInt8](repeating: 0, count: Self.recordsPerBlock * recordSize) }
                let bytes = wanted * recordSize
                let offset = UInt64(start) * UInt64(recordSize)
                let descriptor = FileDescriptor(rawValue: file.fd)
                var done = 0
                let failure: Errno? = state.block.withUnsafeMutableBytes { raw in
                    guard let base = raw.baseAddress else { return .ioError }
                    while done < bytes {
                        switch descriptor.pread(base + done, bytes - done, at: offset + UInt64(done)) {
                        case .success(let n) where n > 0: done += n
                        case .success: return .ioError
                        case .failure(let error): return error
                        }
                    }
                    return nil
                }
                if let failure {
                    state.blockStart = -1
                    state.failure = state.failure ?? OutputFile.localError(failure, SystemCall(.pread, file.name))
                    return nil
                }
                state.blockStart = start
                state.blockCount = wanted
            }
            let at = (index - state.blockStart) * recordSize
            return state.block.withUnsafeBytes { raw in
                MatchSet.Match(address: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self)),
                               width: Int(raw[at + 16]),
                               bits: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at + 8, as: UInt64.self)),
                               digest: hasDigests ? UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at + 17, as: UInt64.self)) : nil)
            }
        }
    }
}

extension MatchSet.SpillPolicy {
    /// Spill past `threshold` matches into files under `directory` (``MatchSpillFile``).
    static func files(threshold: Int, directory: String) -> MatchSet.SpillPolicy {
        MatchSet.SpillPolicy(threshold: threshold, make: { digests in MatchSpillFile(directory: directory, digests: digests) })
    }
}

extension MatchSet {
    /// Sets spill past 262,144 matches (about 4.5 MiB) into files under `/tmp`.
    static let defaultSpill = SpillPolicy.files(threshold: 262_144, directory: "/tmp")

    /// Throws the failure of the set's spill file, if writing or reading it failed.
    func checkSpill() throws(ProcessMemoryError) {
        guard let file = spillStorage as? MatchSpillFile, let failure = file.failure else {
            if spillFailed { throw ProcessMemoryError(.io, message: "the matches could not be written to a temporary file") }
            return
        }
        throw failure
    }
}

extension ScanOptions {
    /// How sets made with these options spill (``spillThreshold``, ``temporaryDirectory``).
    var spillPolicy: MatchSet.SpillPolicy {
        .files(threshold: spillThreshold, directory: temporaryDirectory)
    }
}
