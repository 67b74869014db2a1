import Glibc
import SystemPackage
import ProcessMemoryCore

/// Reads every region of a stopped process in large chunks through two reused buffers and hands the
/// bytes to a ``DumpSink``; records each range that cannot be read with its reason.
///
/// Each chunk is read with `process_vm_readv(2)` (one copy, straight from the target's pages); in
/// debugger mode, where it stops short, `pread(2)` on `/proc/PID/mem` continues from the same byte,
/// so PROT_NONE pages are still dumped. While a chunk is written, a thread of its own
/// (``ReadAhead``) reads the next one into a second buffer. At the first byte that fails, the map
/// classifies the failure and says how far it extends, and reading resumes after it. Nothing
/// unreadable is ever written as data.
struct DumpEngine {
    let handle: ProcessHandle
    let options: DumpOptions
    /// Bytes processed so far and in all, for ``DumpOptions/progress``.
    let counter = ProgressCounter()

    /// Turns the engine's increments into the cumulative ``WorkProgress`` callers get.
    final class ProgressCounter {
        var done: UInt64 = 0
        var total: UInt64 = 0
    }

    /// Whether the userfaultfd-registered regions left out at the start are all there are: the
    /// target is stopped (it cannot register more), so chunks skip the per-read check, which reads
    /// `/proc/PID/smaps` whenever a chunk holds an unpopulated page. With ``StopMethod/none`` the
    /// target runs and every protect-mode chunk is checked.
    ///
    /// Known gap: another process that holds the target's userfaultfd descriptor can still register
    /// a range during the dump; a chunk read there waits until that process serves the fault or
    /// we are killed (the same class as a page unmapped between check and read, see
    /// `UserfaultfdRanges.swift`).
    var userfaultfdChecked: Bool { options.stopMethod != .none }

    private func advance(_ bytes: UInt64) {
        counter.done += bytes
        options.progress?(WorkProgress(bytesDone: counter.done, bytesTotal: counter.total))
    }

    struct Outcome {
        var regions: [DumpIndex.Region]
        /// Why the dump ended early, if it did.
        var partialReason: String?
        /// The error that ended it (the process went away), if any.
        var error: ProcessMemoryError?
    }

    /// Dumps every region of `map` except those `excluded` names (by start address, with the reason),
    /// which are recorded as excluded and not read. `details` is `/proc/PID/smaps` when the caller
    /// has read it already (nil: read here, for the userfaultfd ranges).
    func run<Sink: DumpSink>(map: MemoryMap, excluded: [UInt64: String] = [:], details: [RegionDetails]? = nil,
                             into sink: inout Sink) throws(ProcessMemoryError) -> Outcome {
        let buffers = Buffers(chunkSize: options.chunkSize)
        let handle = handle, mode = options.readMode, checked = userfaultfdChecked
        let ahead = ReadAhead { address, base, count in
            Result { () throws(ProcessMemoryError) in
                try DumpEngine.readChunk(handle, address: address, into: base, count: count, mode: mode, userfaultfdChecked: checked)
            }
        }
        defer {
            ahead?.stop()
            buffers.deallocate()
        }
        var entries = map.regions.map { region in
            DumpIndex.Region(start: region.start, end: region.end,
                             permissions: region.permissions.description + (region.isShared ? "s" : "p"),
                             path: region.path.map { $0 + (region.isDeleted ? " (deleted)" : "") }, kind: region.kind,
                             offset: region.offset, processedUpTo: region.start)
        }
        var outcome = Outcome(regions: [])
        counter.total = map.regions.reduce(0) { $0 + $1.size }
        let pagemap = options.sparse ? Pagemap(handle: handle) : nil
        let userfaultfd = details.map(ProcessHandle.userfaultfdRegions(in:)) ?? handle.userfaultfdRegions()
        for (index, region) in map.regions.enumerated() where outcome.partialReason == nil {
            if let registered = userfaultfd[region.start], registered.end == region.end, excluded[region.start] == nil {
                // Never read: the read could block forever (UserfaultfdRanges.swift).
                entries[index].failed = [.init(start: region.start, end: region.end, code: .notSupported, reason: registered.reason)]
                entries[index].processedUpTo = region.end
                advance(region.size)
                continue
            }
            if let reason = excluded[region.start] {
                entries[index].excluded = reason
                entries[index].processedUpTo = region.end
                advance(region.size)
                continue
            }
            let holes = pagemap.flatMap { Self.neverPopulated(region, pagemap: $0) } ?? []
            try dumpRegion(region, entry: &entries[index], holes: holes, buffers: buffers, ahead: ahead, sink: &sink, outcome: &outcome)
        }
        outcome.regions = entries
        return outcome
    }

    private func dumpRegion<Sink: DumpSink>(_ region: MemoryRegion, entry: inout DumpIndex.Region, holes: [Range<UInt64>],
                                            buffers: Buffers, ahead: ReadAhead?, sink: inout Sink,
                                            outcome: inout Outcome) throws(ProcessMemoryError) {
        // [vsyscall] lies above the user address space; /proc/PID/mem cannot reach it.
        if region.kind == .vsyscall || region.start >= AddressSpace.userLimit {
            entry.failed.append(.init(start: region.start, end: region.end, code: .protectionFailure,
                                      reason: "\(region.path ?? "the region") lies outside the user address space and cannot be read"))
            entry.processedUpTo = region.end
            advance(region.size)
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
        // The read started ahead, if any: where, how much, into which buffer.
        var pending: (address: UInt64, count: Int, slot: Int)?
        defer { if pending != nil { _ = ahead?.finish() } }
        var slot = 0
        var nextHole = 0
        while cursor < region.end {
            if options.cancellation.isCancelled {
                outcome.partialReason = "interrupted"
                break
            }
            // A never-populated range: nothing to read, a hole in the open segment (zeros).
            while nextHole < holes.count && holes[nextHole].upperBound <= cursor { nextHole += 1 }
            // An unmapped page shows in pagemap as not present too: skip the range only while the
            // map still shows the same kind of private anonymous mapping over all of it; otherwise
            // read it, so that a page unmapped meanwhile is reported as failed, never as zeros.
            if nextHole < holes.count && holes[nextHole].contains(cursor),
               !Self.stillUnpopulatedMapping(handle, region, cursor..<holes[nextHole].upperBound) {
                nextHole += 1
            }
            if nextHole < holes.count && holes[nextHole].contains(cursor) {
                let hole = holes[nextHole]
                if open == nil {
                    let placed = try sink.openSegment(at: cursor, in: region)
                    open = (cursor, placed.file, placed.offset)
                }
                if pending != nil { _ = ahead?.finish() }
                pending = nil
                entry.neverPopulated = entry.neverPopulated ?? []
                entry.neverPopulated?.append(.init(start: cursor, end: hole.upperBound))
                advance(hole.upperBound - cursor)
                cursor = hole.upperBound
                continue
            }
            let limit = nextHole < holes.count ? holes[nextHole].lowerBound : region.end
            let want = Int(min(UInt64(buffers.chunkSize), limit - cursor))
            let done: Int, stop: RawStop?
            if let started = pending, started.address == cursor, started.count == want,
               let result = ahead?.finish() {
                pending = nil
                slot = started.slot
                (done, stop) = try result.get()
            } else {
                if pending != nil { _ = ahead?.finish() }
                pending = nil
                let base = buffers[slot]
                (done, stop) = try DumpEngine.readChunk(handle, address: cursor, into: base, count: want, mode: options.readMode,
                                                        userfaultfdChecked: userfaultfdChecked)
            }
            let buffer = UnsafeMutableRawBufferPointer(start: buffers[slot], count: done)
            // Read the next chunk of this region while this one is written.
            let following = cursor + UInt64(done)
            if stop == nil, following < limit, let ahead {
                let nextWant = Int(min(UInt64(buffers.chunkSize), limit - following))
                ahead.start(address: following, into: buffers[1 - slot], count: nextWant)
                pending = (following, nextWant, 1 - slot)
            }
            // Bytes from a call after which the address space was gone may not be the process's.
            if done > 0 && stop?.addressSpaceGone != true {
                if open == nil {
                    let placed = try sink.openSegment(at: cursor, in: region)
                    open = (cursor, placed.file, placed.offset)
                }
                if let segment = open {
                    try write(UnsafeRawBufferPointer(buffer), at: segment.offset + (cursor - segment.start), to: &sink)
                }
                cursor += UInt64(done)
                advance(UInt64(done))
            }
            guard let stop else { continue }
            try close(&sink)
            let failedAt = cursor
            let (error, span) = try handle.classifyStop(at: failedAt, kind: .read(options.readMode), transferred: 0, stop: stop)
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
            advance(next - failedAt)
            cursor = next
        }
        try close(&sink)
        entry.processedUpTo = cursor
    }
}

extension DumpEngine {
    /// The never-populated ranges of a private anonymous mapping (heap, stack, anonymous): pages
    /// neither present nor swapped, which read as zeros. Other mappings have none: an untouched page
    /// of a file or shared mapping reads the file or the shared object, not zeros.
    static func neverPopulated(_ region: MemoryRegion, pagemap: Pagemap) -> [Range<UInt64>]? {
        switch region.kind {
        case .anonymous, .namedAnonymous, .heap, .stack: break
        default: return nil
        }
        guard !region.isShared, let populated = pagemap.populatedRuns(in: region.start..<region.end) else { return nil }
        return Pagemap.gaps(between: populated, in: region.start..<region.end)
    }

    /// Whether `range` still lies in one private anonymous mapping of `region`'s kind (one query of
    /// the map, `PROCMAP_QUERY` or `/proc/PID/maps`).
    static func stillUnpopulatedMapping(_ handle: ProcessHandle, _ region: MemoryRegion, _ range: Range<UInt64>) -> Bool {
        guard let current = try? handle.region(containing: range.lowerBound) else { return false }
        return current.start <= range.lowerBound && range.upperBound <= current.end && current.kind == region.kind && !current.isShared
    }

    /// Writes `bytes` at `offset`, leaving out the pages that hold only zeros when the dump is
    /// sparse: the output's holes read as zeros (the sink extends each file over trailing holes).
    func write<Sink: DumpSink>(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, to sink: inout Sink) throws(ProcessMemoryError) {
        guard options.sparse, bytes.count > 0 else {
            try sink.write(bytes, at: offset)
            return
        }
        let page = Int(AddressSpace.pageSize)
        var runStart: Int?
        var position = 0
        while position < bytes.count {
            let end = min(bytes.count, position + page)
            let zero = Self.isZero(UnsafeRawBufferPointer(rebasing: bytes[position..<end]))
            if !zero && runStart == nil { runStart = position }
            if zero, let start = runStart {
                try sink.write(UnsafeRawBufferPointer(rebasing: bytes[start..<position]), at: offset + UInt64(start))
                runStart = nil
            }
            position = end
        }
        if let start = runStart {
            try sink.write(UnsafeRawBufferPointer(rebasing: bytes[start..<bytes.count]), at: offset + UInt64(start))
        }
    }

    /// Whether every byte is zero (eight at a time).
    static func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let words = bytes.count / 8
        var index = 0
        while index < words {
            if base.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self) != 0 { return false }
            index += 1
        }
        for tail in (words * 8)..<bytes.count where bytes[tail] != 0 { return false }
        return true
    }

    /// The two chunk buffers a dump alternates between (page-aligned, allocated once).
    struct Buffers {
        let chunkSize: Int
        private let storage: UnsafeMutableRawPointer

        init(chunkSize: Int) {
            self.chunkSize = chunkSize
            storage = UnsafeMutableRawPointer.allocate(byteCount: 2 * chunkSize, alignment: Int(AddressSpace.pageSize))
        }

        subscript(slot: Int) -> UnsafeMutableRawPointer { storage + slot * chunkSize }

        func deallocate() { storage.deallocate() }
    }

    /// Reads one chunk: `process_vm_readv(2)` first (one copy; a ptrace- or SIGSTOP-stopped target
    /// is still checked to be the same address space after the call); in debugger mode, where it
    /// stops short, `pread(2)` on `/proc/PID/mem` continues from the first byte it did not
    /// transfer, so the result is what `/proc/PID/mem` alone would have given.
    static func readChunk(_ handle: ProcessHandle, address: UInt64, into base: UnsafeMutableRawPointer, count: Int,
                          mode: ReadMode, userfaultfdChecked: Bool) throws(ProcessMemoryError) -> (Int, RawStop?) {
        guard mode == .debugger, handle.canUseProcessVMReadv else {
            return try handle.transfer(at: address, into: base, count: count, mode: mode, userfaultfdChecked: userfaultfdChecked)
        }
        let (fast, stop) = try handle.transfer(at: address, into: base, count: count, mode: .respectingProtections,
                                               userfaultfdChecked: userfaultfdChecked)
        guard let stop, !stop.addressSpaceGone, fast < count else { return (fast, stop) }
        let (rest, restStop) = try handle.transfer(at: address + UInt64(fast), into: base + fast,
                                                   count: count - fast, mode: .debugger)
        return (fast + rest, restStop)
    }

    /// The regions `options.selection` leaves out, by start address, with the reason, the
    /// `coredump_filter` followed (`nil` when every readable byte is dumped), and `/proc/PID/smaps`
    /// as read for it (nil when not read), which ``run(map:excluded:details:into:)`` reuses: on a
    /// dense process each pass over smaps walks every page table (about 40 ms per GiB here).
    /// Reads `/proc/PID/coredump_filter` and `/proc/PID/smaps`; call it while the process is stopped.
    func exclusions(in map: MemoryMap) throws(ProcessMemoryError)
        -> (filter: CoredumpFilter?, reasons: [UInt64: String], details: [RegionDetails]?) {
        guard case .coredumpFilter(let requested) = options.selection else { return (nil, [:], nil) }
        let filter: CoredumpFilter
        if let requested { filter = requested } else { filter = try handle.coredumpFilter() }
        let all = try handle.regionDetails()
        var details: [UInt64: RegionDetails] = [:]
        for detail in all { details[detail.region.start] = detail }
        var reasons: [UInt64: String] = [:]
        for region in map.regions {
            let detail = details[region.start].flatMap { $0.region.end == region.end ? $0 : nil }
            if let reason = Self.exclusionReason(region, details: detail, filter: filter,
                                                 startsWithELFHeader: { startsWithELFHeader(region) },
                                                 isDAX: { isDAX(region) }) {
                reasons[region.start] = reason
            }
        }
        return (filter, reasons, all)
    }

    /// Whether the first four bytes of `region` read as `\x7fELF`.
    private func startsWithELFHeader(_ region: MemoryRegion) -> Bool {
        var magic: UInt32 = 0
        let mode = options.readMode
        let done = withUnsafeMutableBytes(of: &magic) { raw -> Int in
            guard let base = raw.baseAddress else { return 0 }
            return (try? handle.transfer(at: region.start, into: base, count: 4, mode: mode).count) ?? 0
        }
        return done == 4 && magic == UInt32(littleEndian: 0x464c_457f)
    }

    /// Whether `region` maps a DAX file: `statx(2)` of `/proc/PID/map_files/START-END` shows
    /// `STATX_ATTR_DAX` (a file on a file system mounted with `-o dax`), or its path is a device
    /// DAX node (`/dev/daxN.M`, whose own inode does not carry the flag).
    private func isDAX(_ region: MemoryRegion) -> Bool {
        guard let path = region.path, path.hasPrefix("/") else { return false }
        if path.hasPrefix("/dev/dax") { return true }
        let name = "map_files/" + String(region.start, radix: 16) + "-" + String(region.end, radix: 16)
        guard case .success(let dax)? = try? handle.procIsDAX(name) else { return false }
        return dax
    }

    /// Why `region` is left out under `filter`, or `nil` when it is dumped.
    ///
    /// These are gdb's rules for `gcore` (linux-tdep.c, `dump_mapping_p`), which mirror the kernel's
    /// `vma_dump_size` with what `/proc/PID/smaps` shows: `[vdso]` and `[vsyscall]` always;
    /// never `io` or `dd`; hugetlb by bits 5/6; DAX mappings by bits 7/8 (the kernel's rule; gdb
    /// has none); otherwise a mapping is anonymous when it has no
    /// path, is `/dev/zero`, SysV shm or a deleted file (the kernel's `i_nlink == 0`, as for a memfd)
    /// or holds anonymous pages, file-backed when it has a path that is none of those, and it is
    /// dumped when the bit of either kind it is (private 0/2, shared 1/3) is set; failing that, a
    /// private mapping at file offset 0 that starts with an ELF header is dumped under bit 4.
    /// Where the kernel differs (it keeps only the first page for bit 4, tests the file's execute
    /// bit rather than the magic, and leaves out private anonymous mappings never written to), the
    /// result here is gdb's.
    static func exclusionReason(_ region: MemoryRegion, details: RegionDetails?, filter: CoredumpFilter,
                                startsWithELFHeader: () -> Bool, isDAX: () -> Bool = { false }) -> String? {
        if region.path == "[vdso]" || region.path == "[vsyscall]" { return nil }
        // Not in smaps (gdb dumps a mapping whose smaps entry lacks the Anonymous counter).
        guard let details else { return nil }
        let flags = Set(details.vmFlags)
        if flags.contains("io") { return "VM_IO (VmFlags io): core dumps never hold I/O mappings" }
        if flags.contains("dd") {
            return "VM_DONTDUMP (VmFlags dd: MADV_DONTDUMP, or set by the kernel, as for secret memory)"
        }
        let shared = flags.isEmpty ? region.isShared : flags.contains("sh")
        let sharing = shared ? "shared" : "private"
        if flags.contains("ht") {
            let bit: CoredumpFilter = shared ? .hugetlbShared : .hugetlbPrivate
            return filter.contains(bit) ? nil
                : "\(sharing) hugetlb mapping: coredump_filter \(filter) lacks bit \(shared ? 6 : 5)"
        }
        if region.path?.hasPrefix("/") == true, isDAX() {
            let bit: CoredumpFilter = shared ? .daxShared : .daxPrivate
            return filter.contains(bit) ? nil
                : "\(sharing) DAX mapping: coredump_filter \(filter) lacks bit \(shared ? 8 : 7)"
        }
        let path = region.path ?? ""
        let anonymousName = path.isEmpty || region.isDeleted || path == "/dev/zero" || isSysVSharedMemory(path)
        let anonymous = anonymousName || details.anonymous > 0 || details.anonHugePages > 0
        let fileBacked = !anonymousName
        let anonymousBit: CoredumpFilter = shared ? .anonymousShared : .anonymousPrivate
        let fileBit: CoredumpFilter = shared ? .fileShared : .filePrivate
        if (anonymous && filter.contains(anonymousBit)) || (fileBacked && filter.contains(fileBit)) { return nil }
        if !shared && region.offset == 0 && filter.contains(.elfHeaders) && startsWithELFHeader() { return nil }
        let kind = anonymous && fileBacked ? "file-backed mapping with anonymous pages"
            : anonymous ? "anonymous mapping" : "file-backed mapping"
        let bits = anonymous && fileBacked ? "bits \(shared ? 1 : 0) and \(shared ? 3 : 2)"
            : "bit \(anonymous ? (shared ? 1 : 0) : (shared ? 3 : 2))"
        return "\(sharing) \(kind): coredump_filter \(filter) lacks \(bits)"
    }

    /// `/SYSV` followed by eight hex digits: a SysV shared memory segment.
    private static func isSysVSharedMemory(_ path: String) -> Bool {
        let bytes = Array(path.utf8)
        let prefix = Array("/SYSV".utf8)
        guard bytes.count == prefix.count + 8, Array(bytes[0..<prefix.count]) == prefix else { return false }
        return bytes[prefix.count...].allSatisfy { $0.isHexDigit }
    }
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(self)
    }
}

extension ProcessHandle {
    /// The target's `/proc/PID/coredump_filter` (core(5)).
    func coredumpFilter() throws(ProcessMemoryError) -> CoredumpFilter {
        let bytes = try procFile("coredump_filter", limit: 64)
        let text = String(decoding: bytes.filter { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: " ") }, as: UTF8.self)
        guard let value = UInt32(text, radix: 16) else {
            throw ProcessMemoryError(.io, pid: pid, systemCall: SystemCall(.read, "/proc/\(pid)/coredump_filter"),
                                     message: "unexpected coredump_filter contents: \(text)")
        }
        return CoredumpFilter(rawValue: value)
    }
}
