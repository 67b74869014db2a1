import Glibc
import ProcessMemoryTestSupport
import ProcessMemory

// Limits: file mappings with pages past EOF; deleted files; a low RLIMIT_NOFILE; EINTR storms.

let limitsCases: [FaultCase] = [
    FaultCase(name: "file-pages-past-eof", group: "limits", timeout: 120,
              summary: "shared file and memfd mappings cut short: exact partial counts, both modes, batch") { c, t in
        try pastEOF(iterations: c.n(quick: 20, full: 100), tally: t)
    },
    FaultCase(name: "deleted-file-mapping", group: "limits", timeout: 120,
              summary: "the mapped file is unlinked: map says deleted, bytes still read") { c, t in
        try deletedFile(iterations: c.n(quick: 10, full: 40), tally: t)
    },
    FaultCase(name: "rlimit-nofile", group: "limits", timeout: 120,
              summary: "low RLIMIT_NOFILE: opening handles fails with noMemory, old handles keep working") { c, t in
        try descriptorExhaustion(iterations: c.n(quick: 10, full: 40), tally: t)
    },
    FaultCase(name: "eintr-signal-storm", group: "limits", timeout: 180,
              summary: "SIGALRM timer + SIGUSR1 storm (no SA_RESTART) during reads, writes, batches, maps, opens") { c, t in
        try signalStorm(iterations: c.n(quick: 300, full: 1500), tally: t)
    },
]

func pastEOF(iterations: Int, tally: Tally) throws {
    let fixture = try FixtureProcess.quiet()
    defer { fixture.stop() }
    let page = fixture.pageSize
    for iteration in 0..<iterations {
        for name in ["truncatedFile", "memfd"] {
            tally.attempt { () throws -> String? in
                guard let region = fixture.layout.regions[name], let fileSize = region.fileSize.map({ Int($0) }) else {
                    return "no \(name) region"
                }
                let first: UInt8 = name == "memfd" ? 0xC0 : 0xB0
                let readable = (fileSize + page - 1) / page * page
                func expected(_ offset: Int) -> UInt8 { offset >= fileSize ? 0 : first &+ UInt8(offset / page) }
                let handle = try ProcessHandle(pid: fixture.pid)
                let start = (iteration * 97) % page
                for mode in ReadMode.allCases {
                    let t = try handle.readTransfer(from: region.address + UInt64(start), count: Int(region.size) - start, mode: mode)
                    for (i, b) in t.bytes.enumerated() where b != expected(start + i) {
                        tally.misread(1, "\(name) \(mode) byte \(start + i)")
                        break
                    }
                    if t.bytes.count != readable - start {
                        tally.lost(abs(readable - start - t.bytes.count), "\(name) \(mode): \(t.bytes.count) bytes, \(readable - start) readable")
                    }
                    if let code = t.stop?.code, code != .outOfRange { tally.note("\(name) \(mode) stop: \(code)") }
                    if t.stop == nil { return "\(mode) read past EOF did not stop" }
                }
                // A batch: one entry straddles the last readable page and the first one past EOF.
                let batch = ReadBatch()
                batch.add(address: region.address + UInt64(readable - 300), count: 1000)
                batch.add(address: region.address, count: 64)
                batch.add(address: region.address + UInt64(readable + 16), count: 64)
                try handle.read(batch)
                if case .failed(_, let n) = batch.outcome(0), n == 300 {} else {
                    tally.lost(1, "\(name) batch straddling EOF: \(batch.outcome(0)), expected 300 bytes")
                }
                if batch.outcome(1) != .ok || batch.bytes(1) != (0..<64).map(expected) { return "batch head entry" }
                if case .failed = batch.outcome(2) {} else { return "batch entry past EOF: \(batch.outcome(2))" }
                batch.withBytes(0) { raw in
                    for (i, b) in raw.enumerated() where b != expected(readable - 300 + i) {
                        tally.misread(1, "\(name) batch byte"); break
                    }
                }
                return nil
            }
        }
    }
}

extension ProcessHandle {
    /// A partial read returning the bytes read and the stop.
    func readTransfer(from address: UInt64, count: Int, mode: ReadMode) throws -> (bytes: [UInt8], stop: ProcessMemoryError?) {
        var buffer = [UInt8](repeating: 0, count: count)
        let t = try buffer.withUnsafeMutableBytes { try readTransfer(from: address, into: $0, mode: mode) }
        return (Array(buffer[0..<t.bytesTransferred]), t.stop)
    }
}

func deletedFile(iterations: Int, tally: Tally) throws {
    for _ in 0..<iterations {
        tally.attempt { () throws -> String? in
            let fixture = try FixtureProcess.quiet()
            defer { fixture.killAndReap() }
            guard let region = fixture.layout.regions["truncatedFile"], let path = region.path else { return "no file" }
            let handle = try ProcessHandle(pid: fixture.pid)
            guard unlink(path) == 0 else { return "unlink failed" }
            let map = try handle.memoryMap()
            guard let mapped = map.region(containing: region.address) else { return "region gone from the map" }
            if !mapped.isDeleted { return "region not marked deleted: \(mapped)" }
            if mapped.path != path { tally.note("path reads \(mapped.path ?? "nil")") }
            let bytes = try handle.readExactly(from: region.address, count: fixture.pageSize)
            if bytes != [UInt8](repeating: 0xB0, count: fixture.pageSize) { tally.misread(1, "deleted file bytes") }
            try fixture.ok("write \(region.address + 10) 0102")
            if try handle.readExactly(from: region.address + 9, count: 4) != [0xB0, 1, 2, 0xB0] { tally.misread(1, "after write") }
            return nil
        }
    }
}

func descriptorExhaustion(iterations: Int, tally: Tally) throws {
    let fixture = try FixtureProcess.quiet()
    defer { fixture.stop() }
    var original = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &original)
    defer { var o = original; setrlimit(Int32(RLIMIT_NOFILE.rawValue), &o) }
    let base = fixture.patternAddress
    let size = fixture.patternSize
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
    defer { buffer.deallocate() }
    for iteration in 0..<iterations {
        tally.attempt { () throws -> String? in
            var handles: [ProcessHandle] = [try ProcessHandle(pid: fixture.pid)]
            // The lowest free descriptor tells how many are open; leave room for a few handles.
            let probe = dup(0)
            close(probe)
            var low = rlimit(rlim_cur: rlim_t(Int(probe) + 6 + iteration % 9), rlim_max: original.rlim_max)
            guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &low) == 0 else { return "setrlimit failed" }
            defer { var o = original; setrlimit(Int32(RLIMIT_NOFILE.rawValue), &o) }
            var exhausted: ProcessMemoryError?
            for _ in 0..<64 {
                do { handles.append(try ProcessHandle(pid: fixture.pid)) } catch let e as ProcessMemoryError { exhausted = e; break } catch { return "open threw \(error)" }
            }
            guard let error = exhausted else { return "never ran out of descriptors" }
            if error.code != .noMemory { return "open under EMFILE gave \(error.code): \(error.message)" }
            if iteration == 0 { tally.note("open: \(error.code) (\(error.errno.map { "\($0)" } ?? "-"))") }
            do {
                _ = try handles[0].duplicate()
                // Might fit when the last open failed late; then the next one must fail cleanly.
                _ = try handles[0].duplicate()
            } catch {
                if errorCode(error) != .noMemory { return "duplicate under EMFILE gave \(error)" }
            }
            // Everything already open keeps working.
            for (round, kind) in ReadKind.allCases.enumerated() {
                if let code = readPatternOnce(handles.last!, base: base, size: size, kind: kind, round: round, buffer: buffer, tally: tally) {
                    return "\(kind) read under EMFILE: \(code)"
                }
            }
            if (try handles[0].memoryMap()).region(containing: base) == nil { return "map under EMFILE" }
            if (try? handles[0].regionDetails()) == nil { tally.note("regionDetails under EMFILE fails") }
            handles.removeLast().close()
            handles.append(try ProcessHandle(pid: fixture.pid))  // a freed descriptor is usable again
            return nil
        }
    }
}

nonisolated(unsafe) var signalsDelivered = 0

func signalStorm(iterations: Int, tally: Tally) throws {
    let fixture = try FixtureProcess.quiet()
    defer { fixture.stop() }
    let size = 1 << 20
    let base = try fixture.map(size)
    let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
    // Handlers installed without SA_RESTART: every slow call they interrupt returns EINTR.
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in signalsDelivered &+= 1 }
    action.sa_flags = 0
    // Each signal blocks the other while its handler runs: a SIGALRM landing inside the SIGUSR1
    // handler would otherwise modify the counter while it is being modified, which a debug build
    // traps as an exclusivity violation ("Fatal access conflict detected").
    sigemptyset(&action.sa_mask)
    sigaddset(&action.sa_mask, SIGUSR1)
    sigaddset(&action.sa_mask, SIGALRM)
    sigaction(SIGUSR1, &action, nil)
    sigaction(SIGALRM, &action, nil)
    var timer = itimerval(it_interval: timeval(tv_sec: 0, tv_usec: 200), it_value: timeval(tv_sec: 0, tv_usec: 200))
    setitimer(__itimer_which_t(ITIMER_REAL.rawValue), &timer, nil)
    let stop = AtomicFlag()
    let mainThread = pthread_self()
    let storm = Worker {
        while !stop.isSet {
            pthread_kill(mainThread, SIGUSR1)
            usleep(20)
        }
    }
    defer {
        stop.set()
        storm.join()
        var off = itimerval()
        setitimer(__itimer_which_t(ITIMER_REAL.rawValue), &off, nil)
    }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
    defer { buffer.deallocate() }
    var pattern = [UInt8](repeating: 0, count: 64 << 10)
    for iteration in 0..<iterations {
        tally.attempt { () throws -> String? in
            let offset = (iteration * 65536) % (size - pattern.count)
            let value = UInt8(truncatingIfNeeded: iteration &* 31 &+ 1)
            for i in pattern.indices { pattern[i] = value &+ UInt8(truncatingIfNeeded: i) }
            try handle.writeExactly(pattern, to: base + UInt64(offset))
            for mode in ReadMode.allCases {
                try handle.readExactly(from: base, into: buffer, mode: mode)
                let raw = UnsafeRawBufferPointer(buffer)
                let before = firstMismatch(UnsafeRawBufferPointer(rebasing: raw[0..<offset]), 0x33)
                let after = firstMismatch(UnsafeRawBufferPointer(rebasing: raw[(offset + pattern.count)...]), 0x33)
                let middle = pattern.withUnsafeBytes { memcmp($0.baseAddress!, raw.baseAddress! + offset, pattern.count) }
                if before != nil || after != nil || middle != 0 {
                    tally.misread(1, "\(mode) read under signals")
                }
            }
            let batch = ReadBatch()
            for k in 0..<64 { batch.add(address: base + UInt64(offset + k * 1024), count: 1024) }
            try handle.read(batch)
            for k in 0..<64 where batch.bytes(k) != Array(pattern[(k * 1024)..<(k * 1024 + 1024)]) {
                tally.misread(1, "batch under signals")
            }
            if (try handle.memoryMap()).region(containing: base) == nil { return "map under signals" }
            let other = try ProcessHandle(pid: fixture.pid)
            if try other.state() != .alive { return "state under signals" }
            other.close()
            // Restore the region so the next round's check holds.
            let fill = [UInt8](repeating: 0x33, count: pattern.count)
            try handle.writeExactly(fill, to: base + UInt64(offset))
            return nil
        }
    }
    tally.note("\(signalsDelivered) signals delivered")
}


let lowMemoryCases: [FaultCase] = [
    FaultCase(name: "rlimit-as-low-memory", group: "limits", timeout: 120,
              summary: "low RLIMIT_AS: reads into caller buffers, batches, maps and opens still work") { c, t in
        try lowMemory(iterations: c.n(quick: 20, full: 100), arrayRead: false, tally: t)
    },
    FaultCase(name: "rlimit-as-array-read", group: "limits", timeout: 120,
              summary: "low RLIMIT_AS: read(from:count:) of 1 GiB must throw noMemory, not trap") { c, t in
        try lowMemory(iterations: 1, arrayRead: true, tally: t)
    },
]

/// Runs `body` with RLIMIT_AS set to the current size plus `headroom` bytes.
func withAddressSpaceLimit<R>(headroom: Int, _ body: () throws -> R) throws -> R {
    var original = rlimit()
    getrlimit(Int32(RLIMIT_AS.rawValue), &original)
    let sizeKB = Int(procStatField(getpid(), "VmSize")?.split(separator: " ").first ?? "") ?? 0
    var low = rlimit(rlim_cur: rlim_t(sizeKB * 1024 + headroom), rlim_max: original.rlim_max)
    guard sizeKB > 0, setrlimit(Int32(RLIMIT_AS.rawValue), &low) == 0 else { throw HarnessError("setrlimit(RLIMIT_AS)") }
    defer { var o = original; setrlimit(Int32(RLIMIT_AS.rawValue), &o) }
    return try body()
}

func lowMemory(iterations: Int, arrayRead: Bool, tally: Tally) throws {
    let fixture = try FixtureProcess.quiet()
    defer { fixture.stop() }
    let size = 64 << 20
    let base = try fixture.map(size)
    let handle = try ProcessHandle(pid: fixture.pid)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
    defer { buffer.deallocate() }
    memset(buffer.baseAddress!, 0, size)  // touched now: no allocation later
    for _ in 0..<iterations {
        tally.attempt { () throws -> String? in
            try withAddressSpaceLimit(headroom: 96 << 20) { () throws -> String? in
                if arrayRead {
                    do {
                        let bytes = try handle.read(from: base, count: 1 << 30)
                        return "a 1 GiB array read under a 96 MiB headroom returned \(bytes.count) bytes"
                    } catch {
                        if errorCode(error) != .noMemory { return "1 GiB array read threw \(error), not noMemory" }
                        return nil
                    }
                }
                for mode in ReadMode.allCases {
                    try handle.readExactly(from: base, into: buffer, mode: mode)
                    if firstMismatch(UnsafeRawBufferPointer(buffer), 0x33) != nil { tally.misread(1, "\(mode) read under low memory") }
                }
                let batch = ReadBatch()
                for k in 0..<256 { batch.add(address: base + UInt64(k * 4096 * 8), count: 256) }
                try handle.read(batch)
                for k in 0..<256 where batch.bytes(k) != [UInt8](repeating: 0x33, count: 256) { tally.misread(1, "batch under low memory") }
                if (try handle.memoryMap()).region(containing: base) == nil { return "map under low memory" }
                let other = try ProcessHandle(pid: fixture.pid)
                other.close()
                return nil
            }
        }
    }
}
