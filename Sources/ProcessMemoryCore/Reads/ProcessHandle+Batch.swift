import Glibc
import SystemPackage

extension ProcessHandle {
    /// Reads every entry of `batch`, each with its own outcome, in as few `process_vm_readv(2)`
    /// calls as possible (up to 1024 remote ranges per call).
    ///
    /// Entries are sorted by address; entries at most ``ReadBatch/coalescingGap`` bytes apart are read
    /// as one remote range and copied out, which is much cheaper than one remote iovec each. The kernel
    /// stops a call at the first range that fails, so the batch resumes after it; a coalesced range
    /// that fails partway has its remaining entries read one by one, so every outcome is exact.
    /// Failed entries are classified like single reads (`.notFound`, `.protectionFailure`, …), with one
    /// look at the map for all entries that fail in the same hole or region.
    ///
    /// After the calls the pidfd and the mem descriptor are checked once; if the process exited or
    /// exec'd meanwhile, every byte is discarded and the batch throws.
    /// - Throws: only for the batch as a whole: `.accessDenied` (no read right, or the kernel refused),
    ///   `.badHandle`, `.execed`, `.badState`, `.noMemory`. Bad entries (size 0 or above 1 GiB, a range
    ///   that wraps or leaves the user address space) fail alone with `.invalidArguments`.
    ///
    /// The corresponding C call is `process_vm_readv`.
    public func read(_ batch: ReadBatch) throws(ProcessMemoryError) {
        guard rights.contains(.read) else { throw .missingRight("read", pid: pid) }
        guard vmReadvAllowed else {
            throw ProcessMemoryError(.accessDenied, pid: pid, systemCall: SystemCall(.processVMReadv), errno: .notPermitted,
                                     accessDenial: .unknown,
                                     message: "process_vm_readv is not permitted here (seccomp or a container policy); read entries one by one in debugger mode")
        }
        // Work on the batch's state as a local value: no dynamic exclusivity checks in the loops.
        var s = ReadBatch.State()
        swap(&s, &batch.state)
        defer { swap(&s, &batch.state) }
        try box.use(pid: pid) { (fds) throws(ProcessMemoryError) in
            var failed: [PendingFailure] = []
            s.failures.removeAll(keepingCapacity: true)
            prepareRuns(&s, failed: &failed) { () -> MemoryMap? in try? readMap(fds) }
            var retry: [Int] = []
            try submit(&s, runCount: s.runs.count, failed: &failed, retry: &retry)
            if !retry.isEmpty {
                // Entries of coalesced runs that stopped partway: read each alone for an exact outcome.
                s.runs.removeAll(keepingCapacity: true)
                for position in retry {
                    let entry = s.entries[s.order[position]]
                    s.runs.append(ReadBatch.Run(start: entry.address, end: entry.address &+ UInt64(entry.count),
                                                    first: position, last: position, scratchOffset: 0, coalesced: false))
                }
                var none: [Int] = []
                try submit(&s, runCount: s.runs.count, failed: &failed, retry: &none)
            }
            if processExited(fds) || AddressSpaceProbe.probe(fds.mem) == .gone {
                s.storage.withUnsafeMutableBytes { raw in if let base = raw.baseAddress { memset(base, 0, raw.count) } }
                for index in s.entries.indices { s.entries[index].outcome = .pending }
                throw lifecycleError(address: nil, bytesTransferred: 0, systemCall: SystemCall(.processVMReadv), errno: nil)
            }
            classifyFailures(fds, &s, failed)
        }
    }

    /// An entry that stopped at `address` after `bytesRead` bytes.
    struct PendingFailure {
        var entry: Int
        var address: UInt64
        var bytesRead: Int
        var errno: Errno?
    }

    /// Validates the entries, sorts the valid ones by address and groups them into runs.
    func prepareRuns(_ s: inout ReadBatch.State, failed: inout [PendingFailure], map: () -> MemoryMap?) {
        s.order.removeAll(keepingCapacity: true)
        s.runs.removeAll(keepingCapacity: true)
        for index in s.entries.indices {
            let entry = s.entries[index]
            let (end, overflow) = entry.address.addingReportingOverflow(UInt64(max(entry.count, 0)))
            if entry.count <= 0 || entry.count > AddressSpace.maxChunk || overflow || entry.address >= AddressSpace.userLimit
                || end > AddressSpace.userLimit {
                s.entries[index].outcome = .failed(.invalidArguments, bytesRead: 0)
                s.failures[index] = .invalid(
                    "entry \(index) (\(entry.count) bytes at 0x\(String(entry.address, radix: 16))) is not a valid range",
                    pid: pid, address: entry.address)
            } else {
                s.entries[index].outcome = .pending
                s.order.append(index)
            }
        }
        if let span = Self.denseSpan(s) {
            // Every entry lies in one short span whose pages all hold entries: one remote range
            // covers them all, in any order, so there is nothing to sort.
            s.runs.append(ReadBatch.Run(start: span.lowerBound, end: span.upperBound, first: 0, last: s.order.count - 1,
                                        scratchOffset: 0, coalesced: true))
            s.growScratch(to: Int(span.upperBound - span.lowerBound))
            return
        }
        Self.sortByAddress(&s)
        // With many separate remote ranges, one snapshot of the map lets entries in holes and
        // unreadable regions fail without being sent to the kernel (each would end a
        // process_vm_readv call early). Clustered batches need few ranges and skip the map.
        if separateRanges(s) >= 64, let map = map() { dropUnreadable(&s, map: map, failed: &failed) }
        var scratchSize = 0
        var position = 0
        while position < s.order.count {
            let first = s.entries[s.order[position]]
            var run = ReadBatch.Run(start: first.address, end: first.address + UInt64(first.count), first: position,
                                    last: position, scratchOffset: 0, coalesced: false)
            var next = position + 1
            while next < s.order.count, s.coalescingGap > 0 {
                let candidate = s.entries[s.order[next]]
                let candidateEnd = candidate.address + UInt64(candidate.count)
                guard candidate.address <= run.end &+ UInt64(s.coalescingGap),
                      max(run.end, candidateEnd) - run.start <= UInt64(s.maximumRunLength) else { break }
                run.end = max(run.end, candidateEnd)
                run.last = next
                next += 1
            }
            if run.last > run.first {
                run.coalesced = true
                run.scratchOffset = scratchSize
                scratchSize += Int(run.end - run.start)
            }
            s.runs.append(run)
            position = next
        }
        s.growScratch(to: scratchSize)
    }

    /// The span of a clustered batch that can be read as one remote range without sorting: at least
    /// two valid entries, coalescing of at least a page allowed, the span within
    /// `maximumRunLength` and 64 pages, and every page of it touched by some entry (so the range
    /// crosses no gap the sorted grouping would have split at). `nil` otherwise.
    static func denseSpan(_ s: ReadBatch.State) -> Range<UInt64>? {
        let page = AddressSpace.pageSize
        guard s.order.count >= 2, s.coalescingGap >= Int(page) else { return nil }
        // Page numbers by shifting: the page size is a power of two, and a division per entry
        // would cost more than the rest of this check.
        let shift = UInt64(page.trailingZeroBitCount)
        return s.entries.withUnsafeBufferPointer { entries -> Range<UInt64>? in
            var low = UInt64.max
            var high: UInt64 = 0
            for index in s.order {
                let entry = entries[index]
                low = min(low, entry.address)
                high = max(high, entry.address &+ UInt64(entry.count))
            }
            guard high > low, high - low <= UInt64(s.maximumRunLength) else { return nil }
            let firstPage = low >> shift
            let pages = ((high - 1) >> shift) - firstPage + 1
            guard pages <= 64 else { return nil }
            var touched: UInt64 = 0
            for index in s.order {
                let entry = entries[index]
                let from = (entry.address >> shift) - firstPage
                let to = ((entry.address &+ UInt64(entry.count) - 1) >> shift) - firstPage
                // Bits from...to; to - from < 64 because the whole span is at most 64 pages.
                let width = to - from + 1
                touched |= (width == 64 ? UInt64.max : ((1 << width) - 1)) << from
            }
            let all: UInt64 = pages == 64 ? .max : (1 << pages) - 1
            return touched == all ? low..<high : nil
        }
    }

    /// Sorts `s.order` by entry address. Each entry's offset from the lowest address is packed with
    /// its index into one integer (the index in the low bits), so the radix sort orders plain
    /// integers; only a batch whose addresses span more than those bits leave falls back to a
    /// comparison sort (2^46 bytes for 2^18 entries).
    static func sortByAddress(_ s: inout ReadBatch.State) {
        let order = s.order
        var sorted = true
        var previous: UInt64 = 0
        var low = UInt64.max
        var high: UInt64 = 0
        for index in order {
            let address = s.entries[index].address
            if address < previous { sorted = false }
            previous = address
            low = min(low, address)
            high = max(high, address)
        }
        if sorted { return }
        let indexBits = UInt64(Int.bitWidth - max(1, s.entries.count - 1).leadingZeroBitCount)
        guard indexBits < 64, (high - low) >> (64 - indexBits) == 0 else {
            s.order.sort { s.entries[$0].address < s.entries[$1].address }
            return
        }
        let mask: UInt64 = (1 << indexBits) - 1
        s.keys.removeAll(keepingCapacity: true)
        for index in order { s.keys.append((s.entries[index].address - low) << indexBits | UInt64(index)) }
        Self.radixSort(&s.keys, scratch: &s.sortScratch)
        for position in s.keys.indices { s.order[position] = Int(s.keys[position] & mask) }
    }

    /// Sorts 64-bit keys (address offsets packed with an entry index) with a least-significant-digit
    /// radix sort on 8-bit digits: up to eight linear passes, no comparisons; a pass whose digit is
    /// the same in every key (the high address bits, usually) is skipped.
    static func radixSort(_ keys: inout [UInt64], scratch: inout [UInt64]) {
        let count = keys.count
        if count < 64 {
            keys.sort()
            return
        }
        if scratch.count < count { scratch = [UInt64](repeating: 0, count: count) }
        var counts = [Int](repeating: 0, count: 256)
        keys.withUnsafeMutableBufferPointer { source in
            scratch.withUnsafeMutableBufferPointer { target in
                counts.withUnsafeMutableBufferPointer { histogram in
                    var from = source
                    var to = target
                    var sortedInSource = true
                    for shift in stride(from: 0, to: 64, by: 8) {
                        for index in 0..<histogram.count { histogram[index] = 0 }
                        for index in 0..<count { histogram[Int((from[index] >> UInt64(shift)) & 0xff)] += 1 }
                        if histogram[Int((from[0] >> UInt64(shift)) & 0xff)] == count { continue }
                        var total = 0
                        for digit in 0..<histogram.count {
                            let here = histogram[digit]
                            histogram[digit] = total
                            total += here
                        }
                        for index in 0..<count {
                            let digit = Int((from[index] >> UInt64(shift)) & 0xff)
                            to[histogram[digit]] = from[index]
                            histogram[digit] += 1
                        }
                        swap(&from, &to)
                        sortedInSource.toggle()
                    }
                    if !sortedInSource {
                        for index in 0..<count { source[index] = from[index] }
                    }
                }
            }
        }
    }

    /// How many remote ranges the sorted entries would make (entries farther apart than the gap).
    func separateRanges(_ s: ReadBatch.State) -> Int {
        var ranges = 0
        var end: UInt64 = 0
        for index in s.order {
            let entry = s.entries[index]
            if ranges == 0 || entry.address > end &+ UInt64(s.coalescingGap) { ranges += 1 }
            end = max(end, entry.address &+ UInt64(entry.count))
        }
        return ranges
    }

    /// Takes entries whose first byte lies in no mapping, or in one that cannot be read, out of
    /// `s.order` and records them as failed; the map is walked once alongside the sorted entries.
    func dropUnreadable(_ s: inout ReadBatch.State, map: MemoryMap, failed: inout [PendingFailure]) {
        var kept = 0
        var regionIndex = 0
        let regions = map.regions
        for position in s.order.indices {
            let index = s.order[position]
            let address = s.entries[index].address
            while regionIndex < regions.count && regions[regionIndex].end <= address { regionIndex += 1 }
            let region = regionIndex < regions.count && regions[regionIndex].contains(address) ? regions[regionIndex] : nil
            if let region, region.permissions.contains(.read), region.kind != .vvar, region.kind != .secretMemory {
                s.order[kept] = index
                kept += 1
            } else {
                failed.append(PendingFailure(entry: index, address: address, bytesRead: 0, errno: nil))
            }
        }
        s.order.removeLast(s.order.count - kept)
    }

    /// Issues `process_vm_readv` for the runs, at most 1024 ranges and 1 GiB per call, resuming after
    /// each failing range.
    func submit(_ s: inout ReadBatch.State, runCount: Int, failed: inout [PendingFailure], retry: inout [Int]) throws(ProcessMemoryError) {
        let maxIOV = 1024
        var local = [iovec](repeating: iovec(), count: min(maxIOV, runCount))
        var remote = [iovec](repeating: iovec(), count: min(maxIOV, runCount))
        let pid = self.pid
        // The byte arrays are moved out so the loop can update `s.entries` while writing into them.
        var storageBytes: [UInt8] = []
        var scratchBytes: [UInt8] = []
        swap(&storageBytes, &s.storage)
        swap(&scratchBytes, &s.scratch)
        defer {
            swap(&storageBytes, &s.storage)
            swap(&scratchBytes, &s.scratch)
        }
        let outcome: ProcessMemoryError? = storageBytes.withUnsafeMutableBytes { storage in
            scratchBytes.withUnsafeMutableBytes { scratch in
                var next = 0
                while next < runCount {
                    // Fill up to 1024 ranges, at most 1 GiB in total.
                    var count = 0
                    var total = 0
                    while next + count < runCount && count < maxIOV {
                        let run = s.runs[next + count]
                        let length = Int(run.end - run.start)
                        if count > 0 && total + length > AddressSpace.maxChunk { break }
                        let destination: UnsafeMutableRawPointer?
                        if run.coalesced {
                            destination = scratch.baseAddress.map { $0 + run.scratchOffset }
                        } else {
                            destination = storage.baseAddress.map { $0 + s.entries[s.order[run.first]].offset }
                        }
                        local[count] = iovec(iov_base: destination, iov_len: length)
                        remote[count] = iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(run.start)), iov_len: length)
                        total += length
                        count += 1
                    }
                    let result = local.withUnsafeBufferPointer { localBuffer in
                        remote.withUnsafeBufferPointer { remoteBuffer in
                            Sys.processVMReadv(pid: pid, local: localBuffer.baseAddress, localCount: count,
                                               remote: remoteBuffer.baseAddress, remoteCount: count)
                        }
                    }
                    var transferred: Int
                    var errno: Errno?
                    switch result {
                    case .success(let n): transferred = n
                    case .failure(.badAddress): transferred = 0; errno = .badAddress
                    case .failure(.noSuchProcess):
                        return ProcessMemoryError(.badState, pid: pid, systemCall: SystemCall(.processVMReadv), errno: .noSuchProcess,
                                                  message: "the process is gone")
                    case .failure(let other):
                        return ProcessMemoryError(ErrnoMapping.code(for: other, systemCall: SystemCall(.processVMReadv)), pid: pid,
                                                  systemCall: SystemCall(.processVMReadv), errno: other,
                                                  message: "process_vm_readv failed: \(other)")
                    }
                    // Walk the runs this call covered: complete ones are done, the first short one failed.
                    var index = next
                    let end = next + count
                    while index < end {
                        let run = s.runs[index]
                        let length = Int(run.end - run.start)
                        let valid = min(transferred, length)
                        finish(&s, run: run, valid: valid, storage: storage, scratch: UnsafeRawBufferPointer(scratch),
                               errno: valid < length ? (errno ?? nil) : nil, failed: &failed, retry: &retry)
                        transferred -= valid
                        index += 1
                        if valid < length { break }
                    }
                    next = index
                }
                return nil
            }
        }
        if let outcome {
            if outcome.errno == .noSuchProcess {
                throw lifecycleError(address: nil, bytesTransferred: 0, systemCall: SystemCall(.processVMReadv), errno: .noSuchProcess)
            }
            if outcome.code == .accessDenied {
                var denied = outcome
                denied.accessDenial = AccessDiagnosis.diagnose(pid: pid, procDir: nil)
                throw denied
            }
            throw outcome
        }
    }

    /// Records what `valid` bytes of a run mean for its entries.
    func finish(_ s: inout ReadBatch.State, run: ReadBatch.Run, valid: Int, storage: UnsafeMutableRawBufferPointer,
                scratch: UnsafeRawBufferPointer, errno: Errno?, failed: inout [PendingFailure], retry: inout [Int]) {
        guard run.coalesced else {
            let index = s.order[run.first]
            let entry = s.entries[index]
            if valid >= entry.count {
                s.entries[index].outcome = .ok
            } else {
                failed.append(PendingFailure(entry: index, address: entry.address + UInt64(valid), bytesRead: valid, errno: errno))
            }
            return
        }
        for position in run.first...run.last {
            let index = s.order[position]
            let entry = s.entries[index]
            let relative = Int(entry.address - run.start)
            if relative + entry.count <= valid {
                if let from = scratch.baseAddress, let to = storage.baseAddress {
                    memcpy(to + entry.offset, from + run.scratchOffset + relative, entry.count)
                }
                s.entries[index].outcome = .ok
            } else {
                retry.append(position)
            }
        }
    }

    /// Gives each failed entry its code, looking at the map once per hole or region.
    func classifyFailures(_ fds: HandleDescriptors, _ s: inout ReadBatch.State, _ failed: [PendingFailure]) {
        var known: [(span: Range<UInt64>, error: ProcessMemoryError)] = []
        for failure in failed {
            var error: ProcessMemoryError
            if let cached = known.last(where: { $0.span.contains(failure.address) }) {
                error = cached.error
            } else {
                let stop = RawStop(systemCall: SystemCall(.processVMReadv), errno: failure.errno)
                let verdict = classifyWithSpan(fds, at: failure.address, kind: .read(.respectingProtections),
                                               transferred: failure.bytesRead, stop: stop)
                error = verdict.error
                if let span = verdict.span { known.append((span, verdict.error)) }
            }
            error.address = failure.address
            error.bytesTransferred = failure.bytesRead
            s.entries[failure.entry].outcome = .failed(error.code, bytesRead: failure.bytesRead)
            s.failures[failure.entry] = error
        }
    }
}
