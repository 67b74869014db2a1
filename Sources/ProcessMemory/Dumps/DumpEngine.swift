import Glibc
import SystemPackage

/// Reads every region of a stopped process in large chunks into one reused buffer and hands the
/// bytes to a ``DumpSink``; records each range that cannot be read with its reason.
///
/// One `pread(2)` on `/proc/PID/mem` (or `process_vm_readv(2)`) per chunk; at the first byte that
/// fails, the map classifies the failure and says how far it extends, and reading resumes after it.
/// Nothing unreadable is ever written as data.
struct DumpEngine {
    let handle: ProcessHandle
    let options: DumpOptions

    struct Outcome {
        var regions: [DumpIndex.Region]
        /// Why the dump ended early, if it did.
        var partialReason: String?
        /// The error that ended it (the process went away), if any.
        var error: ProcessMemoryError?
    }

    func run<Sink: DumpSink>(map: MemoryMap, into sink: inout Sink) throws(ProcessMemoryError) -> Outcome {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: options.chunkSize, alignment: Int(AddressSpace.pageSize))
        defer { buffer.deallocate() }
        var entries = map.regions.map { region in
            DumpIndex.Region(start: region.start, end: region.end,
                             permissions: region.permissions.description + (region.isShared ? "s" : "p"),
                             path: region.path.map { $0 + (region.isDeleted ? " (deleted)" : "") }, kind: region.kind,
                             offset: region.offset, processedUpTo: region.start)
        }
        var outcome = Outcome(regions: [])
        for (index, region) in map.regions.enumerated() where outcome.partialReason == nil {
            try dumpRegion(region, entry: &entries[index], buffer: buffer, sink: &sink, outcome: &outcome)
        }
        outcome.regions = entries
        return outcome
    }

    private func dumpRegion<Sink: DumpSink>(_ region: MemoryRegion, entry: inout DumpIndex.Region,
                                            buffer: UnsafeMutableRawBufferPointer, sink: inout Sink,
                                            outcome: inout Outcome) throws(ProcessMemoryError) {
        let pid = handle.pid
        // [vsyscall] lies above the user address space; /proc/PID/mem cannot reach it.
        if region.kind == .vsyscall || region.start >= AddressSpace.userLimit {
            entry.failed.append(.init(start: region.start, end: region.end, code: .protectionFailure,
                                      reason: "\(region.path ?? "the region") lies outside the user address space and cannot be read"))
            entry.processedUpTo = region.end
            options.progress?(region.size)
            return
        }
        var cursor = region.start
        var open: (start: UInt64, file: String?, offset: UInt64)?
        func close(_ sink: inout Sink) throws(ProcessMemoryError) {
            guard let segment = open else { return }
            try sink.closeSegment(length: cursor - segment.start)
            if cursor > segment.start {
                entry.segments.append(.init(start: segment.start, end: cursor, file: segment.file, fileOffset: segment.offset))
            }
            open = nil
        }
        while cursor < region.end {
            if options.shouldCancel?() == true {
                outcome.partialReason = "interrupted"
                break
            }
            let want = Int(min(UInt64(buffer.count), region.end - cursor))
            guard let base = buffer.baseAddress else { break }
            let (done, stop) = try handle.box.use(pid: pid) { (fds) throws(ProcessMemoryError) -> (Int, RawStop?) in
                handle.rawRead(fds, address: cursor, into: base, count: want, mode: options.readMode)
            }
            // Bytes from a call after which the address space was gone may not be the process's.
            if done > 0 && stop?.addressSpaceGone != true {
                if open == nil {
                    let placed = try sink.openSegment(at: cursor, in: region)
                    open = (cursor, placed.file, placed.offset)
                }
                if let segment = open {
                    try sink.write(UnsafeRawBufferPointer(rebasing: buffer[0..<done]), at: segment.offset + (cursor - segment.start))
                }
                cursor += UInt64(done)
                options.progress?(UInt64(done))
            }
            guard let stop else { continue }
            try close(&sink)
            let failedAt = cursor
            let (error, span) = try handle.box.use(pid: pid) { (fds) throws(ProcessMemoryError) -> (ProcessMemoryError, Range<UInt64>?) in
                let classified = handle.classifyWithSpan(fds, at: failedAt, kind: .read(options.readMode), transferred: 0, stop: stop)
                return (classified.error, classified.span)
            }
            if error.code == .badState || error.code == .execed || error.code == .badHandle {
                // The address space is gone: the bytes read in this chunk may not be the process's.
                outcome.partialReason = error.description
                outcome.error = error
                break
            }
            let pageEnd = AddressSpace.pageStart(failedAt) + AddressSpace.pageSize
            let next = min(region.end, max(pageEnd, span?.upperBound ?? 0))
            if let last = entry.failed.last, last.end == failedAt, last.code == error.code {
                entry.failed[entry.failed.count - 1].end = next
            } else {
                entry.failed.append(.init(start: failedAt, end: next, code: error.code, reason: error.message))
            }
            options.progress?(next - failedAt)
            cursor = next
        }
        try close(&sink)
        entry.processedUpTo = cursor
    }
}
