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
    /// - Throws: what ``stop(_:)`` and ``memoryMap()`` throw; `.io`/`.accessDenied` for the output.
    ///
    /// The corresponding C calls are `process_vm_readv` in chunks of `options.chunkSize`
    /// (continued with `pread` on `/proc/PID/mem` where it stops short in debugger mode), and `pwrite`
    /// of each chunk.
    @discardableResult
    public func dump(toDirectory directory: String, options: DumpOptions = DumpOptions()) throws(ProcessMemoryError) -> DumpIndex {
        let dirFD = try openOutputDirectory(directory)
        defer { dirFD.closeQuietly() }
        switch dirFD.makeDirectory(relative: "regions", mode: 0o755) {
        case .success, .failure(.fileExists): break
        case .failure(let error): throw OutputFile.localError(error, SystemCall(.mkdir, "\(directory)/regions"))
        }
        let stopped = try stop(options.stopMethod)
        defer { stopped.resume() }
        let map = try memoryMap()
        var sink = DirectorySink(directory: dirFD)
        defer { sink.current?.close() }
        let engine = DumpEngine(handle: self, options: options)
        let selection = try engine.exclusions(in: map)
        let outcome = try engine.run(map: map, excluded: selection.reasons, into: &sink)
        stopped.resume()
        var index = DumpIndex(format: "procmem-dump", pid: pid, executable: dumpExecutablePath(), stopMethod: options.stopMethod,
                              readMode: options.readMode, complete: outcome.partialReason == nil,
                              partialReason: outcome.partialReason, regions: outcome.regions)
        index.coredumpFilter = selection.filter
        let file = try OutputFile.create(dirFD, DumpIndex.fileName)
        defer { file.close() }
        try file.write(try index.encoded(), at: 0)
        return index
    }

    /// `/proc/PID/exe`, when it can be read.
    func dumpExecutablePath() -> String? {
        guard case .success(let path)? = try? procLink("exe") else { return nil }
        return path
    }
}

/// Writes each readable range to its own file, `regions/<start>.bin`.
struct DirectorySink: DumpSink {
    let directory: FileDescriptor
    var current: OutputFile?

    static func fileName(_ address: UInt64) -> String {
        let digits = String(address, radix: 16)
        return "regions/" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits + ".bin"
    }

    mutating func openSegment(at address: UInt64, in region: MemoryRegion) throws(ProcessMemoryError) -> (file: String?, offset: UInt64) {
        current?.close()
        let name = Self.fileName(address)
        current = try OutputFile.create(directory, name)
        return (name, 0)
    }

    mutating func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(ProcessMemoryError) {
        try current?.write(bytes, at: offset)
    }

    mutating func closeSegment(length: UInt64) throws(ProcessMemoryError) {
        // Pages left as holes at the end of the run still belong to the file.
        try current?.extend(to: length)
        current?.close()
        current = nil
    }
}
