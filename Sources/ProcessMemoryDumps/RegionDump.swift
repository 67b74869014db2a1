import Glibc
import SystemPackage
import ProcessMemoryCore

extension ProcessHandle {
    /// Dumps every region into `directory`: one file per readable range under `regions/`, named by
    /// its start address, and `index.json` (a ``DumpIndex``) listing addresses, permissions, paths,
    /// files and every range that could not be read.
    ///
    /// The process is stopped with `options.stopMethod` first, its map read while it is stopped,
    /// and resumed on every path. If the dump is cancelled or the process goes away, the index is
    /// still written, with `complete` false and the reason in `partialReason`.
    ///
    /// Outputs cannot be redirected: `directory` (created 0700 when missing) is opened with
    /// `O_NOFOLLOW | O_DIRECTORY` and must belong to the caller or root; the region files (0600)
    /// are created with `O_EXCL | O_NOFOLLOW` in a new private directory, which replaces
    /// `regions/` only when the dump is written, followed by the index (`renameat(2)`). A failed
    /// or killed dump leaves the previous dump in `directory` as it was.
    /// - Throws: what ``stop(_:)`` and ``memoryMap()`` throw; `.io`/`.accessDenied` for the output,
    ///   `.accessDenied` when `directory`, `regions` or `index.json` is a link or another user's.
    ///
    /// The corresponding C calls are `process_vm_readv` in chunks of `options.chunkSize`
    /// (continued with `pread` on `/proc/PID/mem` where it stops short in debugger mode), `pwrite`
    /// of each chunk, `fsync` and `renameat`.
    @discardableResult
    public func dump(toDirectory directory: String, options: DumpOptions = DumpOptions()) throws(ProcessMemoryError) -> DumpIndex {
        // A new regions directory and index are written beside the old ones and renamed into
        // place at the end: a failed or killed dump leaves the previous one as it was.
        let output = try OutputDirectory.open(directory, create: true)
        defer { output.close() }
        try output.checkReplaceable(DumpIndex.fileName)
        let (regions, regionsName) = try output.createReplacementDirectory(for: "regions")
        var placed = false
        defer {
            regions.close()
            if !placed { output.removeTree(regionsName) }
        }
        let stopped = try stop(options.stopMethod)
        defer { stopped.resume() }
        let map = try memoryMap()
        var sink = DirectorySink(directory: regions)
        defer { sink.current?.discard() }
        let engine = DumpEngine(handle: self, options: options)
        let selection = try engine.exclusions(in: map)
        let outcome = try engine.run(map: map, excluded: selection.reasons, details: selection.details, into: &sink)
        stopped.resume()
        var index = DumpIndex(format: "procmem-dump", pid: pid, executable: dumpExecutablePath(), stopMethod: options.stopMethod,
                              readMode: options.readMode, complete: outcome.partialReason == nil,
                              partialReason: outcome.partialReason, regions: outcome.regions)
        index.coredumpFilter = selection.filter
        if let names = options.addressNames { index.name(names) }
        let file = try output.createReplacement(for: DumpIndex.fileName)
        defer { file.discard() }
        try file.write(try index.encoded(), at: 0)
        try file.sync()
        try output.replaceDirectory("regions", with: regionsName)
        placed = true
        try file.commit()
        return index
    }

    /// `/proc/PID/exe`, when it can be read.
    func dumpExecutablePath() -> String? {
        guard case .success(let path)? = try? procLink("exe") else { return nil }
        return path
    }
}

/// Writes each readable range to its own file, `regions/<start>.bin`, created new (`O_EXCL`) in
/// the dump's fresh, private regions directory.
struct DirectorySink: DumpSink {
    let directory: OutputDirectory
    var current: OutputFile?

    static func baseName(_ address: UInt64) -> String {
        let digits = String(address, radix: 16)
        return String(repeating: "0", count: max(0, 12 - digits.count)) + digits + ".bin"
    }

    static func fileName(_ address: UInt64) -> String { "regions/" + baseName(address) }

    mutating func openSegment(at address: UInt64, in region: MemoryRegion) throws(ProcessMemoryError) -> (file: String?, offset: UInt64) {
        current?.close()
        current = try directory.createNew(Self.baseName(address))
        return (Self.fileName(address), 0)
    }

    mutating func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(ProcessMemoryError) {
        try current?.write(bytes, at: offset)
        // Each file is fsynced when its run ends: write back each chunk now, while the next is read.
        current?.writeBack(upTo: offset + UInt64(bytes.count))
    }

    mutating func closeSegment(length: UInt64) throws(ProcessMemoryError) {
        // Pages left as holes at the end of the run still belong to the file, which is on disk
        // before the index that lists it is renamed into place.
        try current?.extend(to: length)
        try current?.sync()
        current?.close()
        current = nil
    }
}
