import Glibc
import SystemPackage
import ProcessMemoryCore

extension ProcessHandle {
    /// Writes an ELF core file of the live process to `path`, which `gdb EXE path` loads, and a
    /// ``DumpIndex`` sidecar to `path + ".json"` that lists every range that could not be read.
    ///
    /// The core holds a PT_NOTE segment (`NT_PRSTATUS` with the registers of every thread,
    /// `NT_PRPSINFO`, `NT_AUXV` from `/proc/PID/auxv`, `NT_FILE` with the file mappings,
    /// `NT_PRFPREG`) and PT_LOAD segments covering every region in address order. A readable range
    /// is one PT_LOAD with its bytes; an unreadable range is a PT_LOAD with `p_filesz` 0 (gdb then
    /// says it cannot access that memory) and is listed in the sidecar: it is never zero-filled.
    ///
    /// Registers come from ``StoppedProcess/registerCapture()``: with ``StopMethod/ptrace``,
    /// ``StopMethod/signal`` and ``StopMethod/cgroupFreezer`` every thread's are read; a thread whose
    /// registers cannot be read (``StopMethod/none``, another tracer) gets no `NT_PRSTATUS` and is
    /// listed in a `PROCMEM` note and in the sidecar's `registers.absent`, never written as zeros.
    ///
    /// With ``DumpOptions/selection`` set to ``DumpSelection/coredumpFilter(_:)``, the mappings the
    /// kernel's core dumper and `gcore` leave out are not read: each is a PT_LOAD without bytes and
    /// is listed in the sidecar as ``DumpIndex/Region/excluded``, with the reason.
    ///
    /// Cancelled or cut short by the process exiting, the core is still a valid ELF file of what
    /// was read, and the sidecar says `"complete": false`; so does the core itself, in a
    /// `PROCMEM-STATUS` note (`complete` or `partial: REASON`).
    ///
    /// Both files (0600) are created with `O_CREAT | O_EXCL | O_NOFOLLOW` under temporary names in
    /// the directory of `path`, opened with `O_NOFOLLOW | O_DIRECTORY`, and renamed over `path`
    /// and `path.json` (`renameat(2)`) once written: a link planted at either name is never
    /// followed, and a failed or killed dump leaves the older files as they were.
    ///
    /// - Throws: `.notSupported` on architectures other than x86_64 and arm64; what ``stop(_:)``
    ///   and ``memoryMap()`` throw; `.io`/`.accessDenied` for the output.
    ///
    /// The corresponding C calls are `ptrace(PTRACE_GETREGSET)`, `process_vm_readv` in chunks
    /// of `options.chunkSize` (continued with `pread` on `/proc/PID/mem` where it stops short in
    /// debugger mode), `pwrite` of each chunk, `sync_file_range` every 8 MiB written (so the final
    /// `fsync` has little left to write back), `/proc/PID/smaps` once for the coredump_filter.
    @discardableResult
    public func dumpCore(to path: String, options: DumpOptions = DumpOptions()) throws(ProcessMemoryError) -> DumpIndex {
        guard let architecture = CoreArchitecture.current else {
            throw ProcessMemoryError(.notSupported, pid: pid, message: "core files are written on x86_64 and arm64 only")
        }
        // The core and its sidecar are written under temporary names and renamed over `path` and
        // `path.json` only at the end: a failed or killed dump leaves the older pair as it was.
        let (output, name) = try OutputDirectory.containing(path)
        defer { output.close() }
        try output.checkReplaceable(name + ".json")
        let file = try output.createReplacement(for: name)
        defer { file.discard() }
        let stopped = try stop(options.stopMethod)
        defer { stopped.resume() }
        let map = try memoryMap()
        let capture = stopped.registerCapture()
        let pid = self.pid
        var notes = CoreNotes.build(architecture: architecture, pid: pid, procDir: stopped.procDirectory, threads: stopped.threads,
                                    registers: capture.registers, absent: capture.absent, map: map)
        let page = AddressSpace.pageSize
        let notesOffset = UInt64(ELF.headerSize)
        // Says partial until the end rewrites it: the core itself tells whether it is whole.
        let statusOffset = notesOffset + UInt64(notes.count) + UInt64(CoreStatusNote.descriptorOffset)
        notes += CoreStatusNote.note(CoreStatusNote.unfinished)
        try file.write(notes, at: notesOffset)
        var sink = CoreSink(file: file, cursor: (notesOffset + UInt64(notes.count) + page - 1) / page * page)
        let engine = DumpEngine(handle: self, options: options)
        let selection = try engine.exclusions(in: map)
        let outcome = try engine.run(map: map, excluded: selection.reasons, details: selection.details, into: &sink)
        stopped.resume()
        try file.write(CoreStatusNote.descriptor(CoreStatusNote.text(partialReason: outcome.partialReason)), at: statusOffset)

        var headers = [ELF.ProgramHeader(type: ELF.ptNote, flags: ELF.pfR, offset: notesOffset, virtualAddress: 0,
                                         fileSize: UInt64(notes.count), memorySize: 0, alignment: 4)]
        for region in outcome.regions {
            headers += Self.loadHeaders(region, page: page)
        }
        let headersOffset = (sink.cursor + 7) / 8 * 8
        var table = ELFBytes()
        headers.forEach { $0.write(into: &table) }
        try file.write(table.bytes, at: headersOffset)
        let sectionOffset = headersOffset + UInt64(table.bytes.count)
        if headers.count >= ELF.pnXNum {
            try file.write(ELF.extendedCountSection(programHeaderCount: headers.count), at: sectionOffset)
        }
        try file.write(ELF.header(machine: architecture.machine, programHeaderOffset: headersOffset,
                                  programHeaderCount: headers.count, sectionHeaderOffset: sectionOffset), at: 0)

        var index = DumpIndex(format: "procmem-core", pid: pid, executable: dumpExecutablePath(), stopMethod: options.stopMethod,
                              readMode: options.readMode, complete: outcome.partialReason == nil,
                              partialReason: outcome.partialReason, coreFile: name, regions: outcome.regions)
        index.registers = .init(threads: capture.registers.map(\.tid), absent: capture.absent)
        index.coredumpFilter = selection.filter
        if let names = options.addressNames { index.name(names) }
        let sidecar = try output.createReplacement(for: name + ".json")
        defer { sidecar.discard() }
        try sidecar.write(try index.encoded(), at: 0)
        try file.commit()
        try sidecar.commit()
        return index
    }

    /// The PT_LOADs of one region in address order: its readable segments with their bytes, and
    /// its failed and unprocessed ranges with `p_filesz` 0.
    static func loadHeaders(_ region: DumpIndex.Region, page: UInt64) -> [ELF.ProgramHeader] {
        var flags: UInt32 = 0
        let permissions = Array(region.permissions.utf8)
        if permissions.count >= 3 {
            if permissions[0] == UInt8(ascii: "r") { flags |= ELF.pfR }
            if permissions[1] == UInt8(ascii: "w") { flags |= ELF.pfW }
            if permissions[2] == UInt8(ascii: "x") { flags |= ELF.pfX }
        }
        // A region a coredump_filter left out: one PT_LOAD without bytes, as the kernel writes it.
        if region.excluded != nil {
            return [ELF.ProgramHeader(type: ELF.ptLoad, flags: flags, offset: 0, virtualAddress: region.start, fileSize: 0,
                                      memorySize: region.end - region.start, alignment: page)]
        }
        var pieces: [(start: UInt64, end: UInt64, offset: UInt64?)] = region.segments.map { ($0.start, $0.end, $0.fileOffset) }
        pieces += region.failed.map { ($0.start, $0.end, nil) }
        if region.processedUpTo < region.end { pieces.append((region.processedUpTo, region.end, nil)) }
        return pieces.sorted { $0.start < $1.start }.map { piece in
            ELF.ProgramHeader(type: ELF.ptLoad, flags: flags, offset: piece.offset ?? 0, virtualAddress: piece.start,
                              fileSize: piece.offset == nil ? 0 : piece.end - piece.start,
                              memorySize: piece.end - piece.start, alignment: page)
        }
    }
}

/// Lays readable ranges out one after another in the core file, each starting on a page boundary.
struct CoreSink: DumpSink {
    let file: OutputFile
    var cursor: UInt64

    mutating func openSegment(at address: UInt64, in region: MemoryRegion) throws(ProcessMemoryError) -> (file: String?, offset: UInt64) {
        (nil, cursor)
    }

    mutating func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(ProcessMemoryError) {
        try file.write(bytes, at: offset)
        // The core is fsynced before it takes its name: write back each chunk now, while the next
        // one is read, rather than a gigabyte of dirty pages at once in the final fsync.
        file.writeBack(upTo: offset + UInt64(bytes.count))
    }

    mutating func closeSegment(length: UInt64) throws(ProcessMemoryError) {
        let page = AddressSpace.pageSize
        cursor += (length + page - 1) / page * page
    }
}
