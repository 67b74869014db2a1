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
            throw ProcessMemoryError(.accessDenied, pid: pid, systemCall: "process_vm_readv", errno: .notPermitted,
                                     accessDenial: .unknown,
                                     message: "process_vm_readv is not permitted here (seccomp or a container policy); read entries one by one in debugger mode")
        }
        try box.use(pid: pid) { (fds) throws(ProcessMemoryError) in
            var failed: [PendingFailure] = []
            batch.failures.removeAll(keepingCapacity: true)
            // With many entries, one snapshot of the map lets entries in holes and unreadable regions fail
            // without being sent to the kernel (each would end a process_vm_readv call early).
            let map = batch.count >= 256 ? try? readMap(fds) : nil
            prepareRuns(batch, map: map, failed: &failed)
            var retry: [Int] = []
            try submit(batch, runCount: batch.runs.count, failed: &failed, retry: &retry)
            if !retry.isEmpty {
                // Entries of coalesced runs that stopped partway: read each alone for an exact outcome.
                batch.runs.removeAll(keepingCapacity: true)
                for position in retry {
                    let entry = batch.entries[batch.order[position]]
                    batch.runs.append(ReadBatch.Run(start: entry.address, end: entry.address &+ UInt64(entry.count),
                                                    first: position, last: position, scratchOffset: 0, coalesced: false))
                }
                var none: [Int] = []
                try submit(batch, runCount: batch.runs.count, failed: &failed, retry: &none)
            }
            if processExited(fds) || AddressSpaceProbe.probe(fds.mem) == .gone {
                batch.storage.withUnsafeMutableBytes { raw in if let base = raw.baseAddress { memset(base, 0, raw.count) } }
                for index in batch.entries.indices { batch.entries[index].outcome = .pending }
                throw lifecycleError(address: nil, bytesTransferred: 0, systemCall: "process_vm_readv", errno: nil)
            }
            classifyFailures(fds, batch, failed)
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
    func prepareRuns(_ batch: ReadBatch, map: MemoryMap?, failed: inout [PendingFailure]) {
        batch.order.removeAll(keepingCapacity: true)
        batch.runs.removeAll(keepingCapacity: true)
        for index in batch.entries.indices {
            let entry = batch.entries[index]
            let (end, overflow) = entry.address.addingReportingOverflow(UInt64(max(entry.count, 0)))
            if entry.count <= 0 || entry.count > AddressSpace.maxChunk || overflow || entry.address >= AddressSpace.userLimit
                || end > AddressSpace.userLimit {
                batch.entries[index].outcome = .failed(.invalidArguments, bytesRead: 0)
                batch.failures[index] = .invalid(
                    "entry \(index) (\(entry.count) bytes at 0x\(String(entry.address, radix: 16))) is not a valid range",
                    pid: pid, address: entry.address)
            } else {
                batch.entries[index].outcome = .pending
                batch.order.append(index)
            }
        }
        sortByAddress(batch)
        if let map { dropUnreadable(batch, map: map, failed: &failed) }
        var scratchSize = 0
        var position = 0
        while position < batch.order.count {
            let first = batch.entries[batch.order[position]]
            var run = ReadBatch.Run(start: first.address, end: first.address + UInt64(first.count), first: position,
                                    last: position, scratchOffset: 0, coalesced: false)
            var next = position + 1
            while next < batch.order.count, batch.coalescingGap > 0 {
                let candidate = batch.entries[batch.order[next]]
                let candidateEnd = candidate.address + UInt64(candidate.count)
                guard candidate.address <= run.end &+ UInt64(batch.coalescingGap),
                      max(run.end, candidateEnd) - run.start <= UInt64(batch.maximumRunLength) else { break }
                run.end = max(run.end, candidateEnd)
                run.last = next
                next += 1
            }
            if run.last > run.first {
                run.coalesced = true
                run.scratchOffset = scratchSize
                scratchSize += Int(run.end - run.start)
            }
            batch.runs.append(run)
            position = next
        }
        if batch.scratch.count < scratchSize {
            batch.scratch.append(contentsOf: repeatElement(0, count: scratchSize - batch.scratch.count))
        }
    }

    /// Sorts `batch.order` by entry address. Below 2^47 and 2^17 entries, address and index are
    /// packed into one integer so the sort compares plain integers.
    func sortByAddress(_ batch: ReadBatch) {
        let order = batch.order
        var sorted = true
        var packable = order.count < (1 << 17)
        var previous: UInt64 = 0
        for index in order {
            let address = batch.entries[index].address
            if address < previous { sorted = false }
            if address >= (1 << 47) { packable = false }
            previous = address
        }
        if sorted { return }
        guard packable else {
            batch.order.sort { batch.entries[$0].address < batch.entries[$1].address }
            return
        }
        batch.keys.removeAll(keepingCapacity: true)
        for index in order { batch.keys.append(batch.entries[index].address << 17 | UInt64(index)) }
        batch.keys.sort()
        for position in batch.keys.indices { batch.order[position] = Int(batch.keys[position] & ((1 << 17) - 1)) }
    }

    /// Takes entries whose first byte lies in no mapping, or in one that cannot be read, out of
    /// `batch.order` and records them as failed; the map is walked once alongside the sorted entries.
    func dropUnreadable(_ batch: ReadBatch, map: MemoryMap, failed: inout [PendingFailure]) {
        var kept = 0
        var regionIndex = 0
        let regions = map.regions
        for position in batch.order.indices {
            let index = batch.order[position]
            let address = batch.entries[index].address
            while regionIndex < regions.count && regions[regionIndex].end <= address { regionIndex += 1 }
            let region = regionIndex < regions.count && regions[regionIndex].contains(address) ? regions[regionIndex] : nil
            if let region, region.permissions.contains(.read), region.kind != .vvar, region.kind != .secretMemory {
                batch.order[kept] = index
                kept += 1
            } else {
                failed.append(PendingFailure(entry: index, address: address, bytesRead: 0, errno: nil))
            }
        }
        batch.order.removeLast(batch.order.count - kept)
    }

    /// Issues `process_vm_readv` for the runs, at most 1024 ranges and 1 GiB per call, resuming after
    /// each failing range.
    func submit(_ batch: ReadBatch, runCount: Int, failed: inout [PendingFailure], retry: inout [Int]) throws(ProcessMemoryError) {
        let maxIOV = 1024
        var local = [iovec](repeating: iovec(), count: min(maxIOV, runCount))
        var remote = [iovec](repeating: iovec(), count: min(maxIOV, runCount))
        let pid = self.pid
        let outcome: ProcessMemoryError? = batch.storage.withUnsafeMutableBytes { storage in
            batch.scratch.withUnsafeMutableBytes { scratch in
                var next = 0
                while next < runCount {
                    // Fill up to 1024 ranges, at most 1 GiB in total.
                    var count = 0
                    var total = 0
                    while next + count < runCount && count < maxIOV {
                        let run = batch.runs[next + count]
                        let length = Int(run.end - run.start)
                        if count > 0 && total + length > AddressSpace.maxChunk { break }
                        let destination: UnsafeMutableRawPointer?
                        if run.coalesced {
                            destination = scratch.baseAddress.map { $0 + run.scratchOffset }
                        } else {
                            destination = storage.baseAddress.map { $0 + batch.entries[batch.order[run.first]].offset }
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
                        return ProcessMemoryError(.badState, pid: pid, systemCall: "process_vm_readv", errno: .noSuchProcess,
                                                  message: "the process is gone")
                    case .failure(let other):
                        return ProcessMemoryError(ErrnoMapping.code(for: other, systemCall: "process_vm_readv"), pid: pid,
                                                  systemCall: "process_vm_readv", errno: other,
                                                  message: "process_vm_readv failed: \(other)")
                    }
                    // Walk the runs this call covered: complete ones are done, the first short one failed.
                    var index = next
                    let end = next + count
                    while index < end {
                        let run = batch.runs[index]
                        let length = Int(run.end - run.start)
                        let valid = min(transferred, length)
                        finish(batch, run: run, valid: valid, storage: storage, scratch: UnsafeRawBufferPointer(scratch),
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
                throw lifecycleError(address: nil, bytesTransferred: 0, systemCall: "process_vm_readv", errno: .noSuchProcess)
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
    func finish(_ batch: ReadBatch, run: ReadBatch.Run, valid: Int, storage: UnsafeMutableRawBufferPointer,
                scratch: UnsafeRawBufferPointer, errno: Errno?, failed: inout [PendingFailure], retry: inout [Int]) {
        guard run.coalesced else {
            let index = batch.order[run.first]
            let entry = batch.entries[index]
            if valid >= entry.count {
                batch.entries[index].outcome = .ok
            } else {
                failed.append(PendingFailure(entry: index, address: entry.address + UInt64(valid), bytesRead: valid, errno: errno))
            }
            return
        }
        for position in run.first...run.last {
            let index = batch.order[position]
            let entry = batch.entries[index]
            let relative = Int(entry.address - run.start)
            if relative + entry.count <= valid {
                if let from = scratch.baseAddress, let to = storage.baseAddress {
                    memcpy(to + entry.offset, from + run.scratchOffset + relative, entry.count)
                }
                batch.entries[index].outcome = .ok
            } else {
                retry.append(position)
            }
        }
    }

    /// Gives each failed entry its code, looking at the map once per hole or region.
    func classifyFailures(_ fds: HandleDescriptors, _ batch: ReadBatch, _ failed: [PendingFailure]) {
        var known: [(span: Range<UInt64>, error: ProcessMemoryError)] = []
        for failure in failed {
            var error: ProcessMemoryError
            if let cached = known.last(where: { $0.span.contains(failure.address) }) {
                error = cached.error
            } else {
                let stop = RawStop(systemCall: "process_vm_readv", errno: failure.errno)
                let verdict = classifyWithSpan(fds, at: failure.address, kind: .read(.respectingProtections),
                                               transferred: failure.bytesRead, stop: stop)
                error = verdict.error
                if let span = verdict.span { known.append((span, verdict.error)) }
            }
            error.address = failure.address
            error.bytesTransferred = failure.bytesRead
            batch.entries[failure.entry].outcome = .failed(error.code, bytesRead: failure.bytesRead)
            batch.failures[failure.entry] = error
        }
    }
}
