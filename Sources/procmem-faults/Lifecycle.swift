import Glibc
import ProcessMemoryTestSupport
import ProcessMemory

// Lifecycle: the target exits, is killed, execs or forks while reads (both modes) and batches run;
// a 1 GiB read while the target is killed; PID reuse with clone3 set_tid, read through the old handle.

let lifecycleCases: [FaultCase] = [
    FaultCase(name: "exit-during-reads", group: "lifecycle", timeout: 240,
              summary: "target runs `exit` while a thread reads (debugger, respecting, batch)") { c, t in
        try lifecycleRace(.exit, iterations: c.n(quick: 15, full: 200), tally: t)
    },
    FaultCase(name: "kill-during-reads", group: "lifecycle", timeout: 240,
              summary: "target SIGKILLed while a thread reads (debugger, respecting, batch)") { c, t in
        try lifecycleRace(.kill, iterations: c.n(quick: 15, full: 200), tally: t)
    },
    FaultCase(name: "exec-during-reads", group: "lifecycle", timeout: 240,
              summary: "target execs a 0xcc-filled image at the same address while a thread reads") { c, t in
        try lifecycleRace(.exec, iterations: c.n(quick: 15, full: 200), tally: t)
    },
    FaultCase(name: "fork-during-reads", group: "lifecycle", timeout: 240,
              summary: "target forks while a thread reads: reads stay on the parent") { c, t in
        try lifecycleRace(.fork, iterations: c.n(quick: 15, full: 200), tally: t)
    },
    FaultCase(name: "kill-during-1gib-read", group: "lifecycle", timeout: 300,
              summary: "1 GiB read (both modes) while another thread SIGKILLs the target") { c, t in
        try bigReadKill(iterations: c.n(quick: 3, full: 20), tally: t)
    },
    FaultCase(name: "pid-reuse", group: "lifecycle", timeout: 600,
              summary: "kill, reap, clone3 set_tid a 0xcc process at the same pid; old handle reads") { c, t in
        try pidReuse(iterations: c.n(quick: 1000, full: 3000), tally: t)
    },
]

enum LifecycleEvent { case exit, kill, exec, fork }

/// Checks bytes that claim to come from the fixture's pattern region at `offset`.
func checkPattern(_ bytes: UnsafeRawBufferPointer, offset: Int, tally: Tally, what: String) {
    var wrong = 0
    var foreign = 0
    for i in 0..<bytes.count where bytes[i] != patternByte(offset + i) {
        wrong += 1
        if bytes[i] == 0xcc { foreign += 1 }
    }
    if wrong > 0 { tally.misread(1, "\(what): \(wrong) wrong bytes (\(foreign) are 0xcc) at pattern+\(offset)") }
}

/// Bytes handed back with a lifecycle error must not carry the foreign 0xcc fill.
func checkNoForeign(_ bytes: UnsafeRawBufferPointer, tally: Tally, what: String) {
    let foreign = countBytes(bytes, equalTo: 0xcc)
    if foreign > 0 { tally.misread(1, "\(what): \(foreign) foreign 0xcc bytes in the buffer after an error") }
}

enum ReadKind: CaseIterable { case debugger, respecting, batch }

/// One read of the pattern region in `kind`. Returns nil when the read completed, else the error code
/// (a partial read returns its stop code after its prefix was checked). Unclear outcomes are noted.
func readPatternOnce(_ handle: ProcessHandle, base: UInt64, size: Int, kind: ReadKind, round: Int,
                     buffer: UnsafeMutableRawBufferPointer, tally: Tally) -> ProcessMemoryError.Code? {
    let offset = (round &* 4099) % (size / 2)
    let count = min(size - offset, 16 << 10 + round % 4096)
    let target = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])
    target.initializeMemory(as: UInt8.self, repeating: 0)  // so stale bytes are never taken for returned ones
    switch kind {
    case .debugger, .respecting:
        let mode: ReadMode = kind == .debugger ? .debugger : .respectingProtections
        do {
            let transfer = try handle.readTransfer(from: base + UInt64(offset), into: target, mode: mode)
            checkPattern(UnsafeRawBufferPointer(rebasing: target[0..<transfer.bytesTransferred]), offset: offset,
                         tally: tally, what: "\(mode) read")
            guard let stop = transfer.stop else { return nil }
            if stop.code.isLifecycle {
                if transfer.bytesTransferred != 0 { tally.note("lifecycle stop with \(transfer.bytesTransferred) bytes") }
                checkNoForeign(UnsafeRawBufferPointer(target), tally: tally, what: "\(mode) read")
            } else {
                tally.note("\(mode) partial: \(stop.code) after \(transfer.bytesTransferred)")
            }
            return stop.code
        } catch {
            checkNoForeign(UnsafeRawBufferPointer(target), tally: tally, what: "\(mode) read")
            if !error.code.isLifecycle { tally.note("\(mode) read threw \(error.code)") }
            return error.code
        }
    case .batch:
        let batch = ReadBatch()
        var entries: [(Int, Int)] = []
        for k in 0..<8 {
            let o = (offset + k * 1537) % (size - 600)
            entries.append((o, 64 + (k * 77) % 500))
            batch.add(address: base + UInt64(o), count: 64 + (k * 77) % 500)
        }
        do {
            try handle.read(batch)
            var code: ProcessMemoryError.Code?
            for (i, (o, _)) in entries.enumerated() {
                batch.withBytes(i) { checkPattern($0, offset: o, tally: tally, what: "batch entry") }
                if case .failed(let c, _) = batch.outcome(i) {
                    code = c
                    tally.note("batch entry failed: \(c)")
                }
            }
            return code
        } catch {
            for i in 0..<entries.count { batch.withBytes(i) { checkNoForeign($0, tally: tally, what: "batch") } }
            if !error.code.isLifecycle { tally.note("batch threw \(error.code)") }
            return error.code
        }
    }
}

func lifecycleRace(_ event: LifecycleEvent, iterations: Int, tally: Tally) throws {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buffer.deallocate() }
    for iteration in 0..<iterations {
        tally.attempt { () throws -> String? in
            let fixture = try FixtureProcess.quiet()
            defer { fixture.killAndReap() }
            let base = fixture.patternAddress
            let size = fixture.patternSize
            let handle = try ProcessHandle(pid: fixture.pid)
            let stop = AtomicFlag()
            let sawError = AtomicFlag()
            var firstError: ProcessMemoryError.Code?
            var reads = 0
            let reader = Worker {
                var round = iteration
                while !stop.isSet {
                    let kind = ReadKind.allCases[round % 3]
                    if let code = readPatternOnce(handle, base: base, size: size, kind: kind, round: round,
                                                  buffer: buffer, tally: tally) {
                        firstError = code
                        sawError.set()
                        return
                    }
                    reads += 1
                    round += 1
                }
            }
            usleep(UInt32(500 + (iteration * 733) % 4000))
            var forked: Int32 = 0
            switch event {
            case .exit:
                try fixture.process.send("exit")
                fixture.process.reap()
            case .kill:
                fixture.kill()
                fixture.process.reap()
            case .exec:
                try fixture.ok("exec \(fixtureExecutable) --detached --fill 0xcc --pattern-at \(base)")
            case .fork:
                let reply = try fixture.ok("fork")
                forked = Int32(truncatingIfNeeded: (reply["pid"] as? Int) ?? 0)
                usleep(20_000)
                stop.set()
            }
            if !waitUntil(5, { sawError.isSet || stop.isSet }) { stop.set() }
            reader.join()
            if forked > 0 { kill(forked, SIGKILL) }
            // After the event, every access through the handle gives the one clear error.
            var failure: String?
            switch event {
            case .exit, .kill:
                if let code = firstError, !code.isLifecycle { failure = "first error after \(event) was \(code)" }
                if firstError == nil { failure = "reader never saw the exit" }
                for kind in ReadKind.allCases {
                    let code = readPatternOnce(handle, base: base, size: size, kind: kind, round: 1, buffer: buffer, tally: tally)
                    if code != .badState { failure = "\(kind) after \(event): \(code.map { "\($0)" } ?? "success")" }
                }
                let state = try? handle.state()
                if state != .gone && state != .zombie { failure = "state after \(event): \(String(describing: state))" }
            case .exec:
                // Wait until the new image holds its 0xcc pattern at the same address.
                let replaced = waitUntil(3) { rawProcRead(pid: fixture.pid, address: base, count: 16) == [UInt8](repeating: 0xcc, count: 16) }
                if !replaced { tally.note("new image not confirmed") }
                if let code = firstError, !code.isLifecycle { failure = "first error after exec was \(code)" }
                for kind in ReadKind.allCases {
                    let code = readPatternOnce(handle, base: base, size: size, kind: kind, round: 2, buffer: buffer, tally: tally)
                    if code != .execed { failure = "\(kind) after exec: \(code.map { "\($0)" } ?? "success")" }
                }
                if (try? handle.state()) != .execed { failure = "state after exec is not execed" }
                // reopen follows the new image: now the 0xcc bytes are the right answer.
                if replaced {
                    try handle.reopen()
                    let bytes = try handle.readExactly(from: base, count: 256)
                    if bytes != [UInt8](repeating: 0xcc, count: 256) { tally.misread(1, "after reopen: not the new image") }
                }
            case .fork:
                if let code = firstError { failure = "a read failed during fork: \(code)" }
                for kind in ReadKind.allCases {
                    if let code = readPatternOnce(handle, base: base, size: size, kind: kind, round: 3, buffer: buffer, tally: tally) {
                        failure = "\(kind) after fork: \(code)"
                    }
                }
                if (try? handle.state()) != .alive { failure = "state after fork is not alive" }
            }
            if reads == 0 && event != .fork { tally.note("event before the first read") }
            return failure
        }
    }
}

/// A 1 GiB region read in one call (both modes) while another thread SIGKILLs the target.
func bigReadKill(iterations: Int, tally: Tally) throws {
    let size = 1 << 30
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
    defer { buffer.deallocate() }
    for iteration in 0..<iterations {
        tally.attempt { () throws -> String? in
            let fixture = try FixtureProcess.quiet()
            defer { fixture.killAndReap() }
            let base = try fixture.map(size)
            let handle = try ProcessHandle(pid: fixture.pid)
            let mode: ReadMode = iteration % 2 == 0 ? .debugger : .respectingProtections
            let delay = UInt32((iteration * 37_000) % 150_000)
            let killer = Worker {
                usleep(delay)
                fixture.kill()
            }
            memset(buffer.baseAddress!, 0xee, 64)
            var failure: String?
            do {
                let transfer = try handle.readTransfer(from: base, into: buffer, mode: mode)
                let n = transfer.bytesTransferred
                if let bad = firstMismatch(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), 0x33) {
                    tally.misread(1, "1 GiB \(mode) read: byte \(bad) is 0x\(String(buffer[bad], radix: 16))")
                }
                if let stop = transfer.stop {
                    tally.note("\(mode): \(stop.code), \(n) bytes")
                    if !stop.code.isLifecycle && n == 0 { failure = "unclear error \(stop.code)" }
                    if stop.code.isLifecycle, firstMismatch(UnsafeRawBufferPointer(rebasing: buffer[0..<4096]), 0) != nil {
                        failure = "lifecycle error but the buffer was not cleared"
                    }
                } else {
                    tally.note("\(mode): complete before the kill")
                }
            } catch {
                if !errorCode(error).isLifecycle { failure = "threw \(error)" } else { tally.note("\(mode): threw \(error)") }
            }
            killer.join()
            // The teardown window (the mm is freed before the process becomes a zombie): every read is a
            // clear lifecycle error, never bytes.
            var states = Set<String>()
            let small = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<4096])
            let deadline = now() + 2
            while now() < deadline {
                for readMode in ReadMode.allCases {
                    small.initializeMemory(as: UInt8.self, repeating: 0x99)
                    do {
                        let t = try handle.readTransfer(from: base, into: small, mode: readMode)
                        if t.stop == nil || !t.stop!.code.isLifecycle || t.bytesTransferred != 0 {
                            failure = "read after SIGKILL: \(t.stop.map { "\($0.code)" } ?? "complete"), \(t.bytesTransferred) bytes"
                        }
                    } catch {
                        if !errorCode(error).isLifecycle { failure = "read after SIGKILL threw \(error)" }
                    }
                    if let bad = firstMismatch(UnsafeRawBufferPointer(small), 0), small[bad] == 0x33 {
                        tally.misread(1, "bytes handed out after SIGKILL")
                    }
                }
                let state = (try? handle.state()).map { $0.rawValue } ?? "error"
                states.insert(state)
                if state == "zombie" || state == "gone" { break }
            }
            tally.note("states after kill: " + states.sorted().joined(separator: ","))
            fixture.process.reap()
            return failure
        }
    }
}

/// Kill and reap the target, create a 0xcc process at the same pid (clone3 set_tid, through a helper
/// fixture) with its pattern at the same address, then read through the old handle.
func pidReuse(iterations: Int, tally: Tally) throws {
    let helper = try FixtureProcess.quiet()
    defer { helper.stop() }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
    defer { buffer.deallocate() }
    var confirmed = 0
    for _ in 0..<iterations {
        tally.attempt { () throws -> String? in
            let fixture = try FixtureProcess.quiet()
            let pid = fixture.pid
            let base = fixture.patternAddress
            let size = fixture.patternSize
            let handle = try ProcessHandle(pid: pid)
            let writer = try ProcessHandle(pid: pid, rights: .readWrite)
            if readPatternOnce(handle, base: base, size: size, kind: .debugger, round: 0, buffer: buffer, tally: tally) != nil {
                fixture.killAndReap()
                return "the live read failed"
            }
            fixture.killAndReap()
            let reply = try helper.command("spawn-at \(pid) --fill 0xcc --pattern-at \(base)")
            guard reply["ok"] as? Bool == true, (reply["pid"] as? Int) == Int(pid) else {
                tally.note("spawn-at failed: \(reply["error"] ?? "?")")
                return nil
            }
            defer { kill(pid, SIGKILL) }  // the helper ignores SIGCHLD: the kernel reaps it
            if waitUntil(3, { rawProcRead(pid: pid, address: base, count: 16) == [UInt8](repeating: 0xcc, count: 16) }) {
                confirmed += 1
            } else {
                tally.note("reuse not confirmed")
            }
            var failure: String?
            for (round, kind) in ReadKind.allCases.enumerated() {
                memset(buffer.baseAddress!, 0, buffer.count)
                let code = readPatternOnce(handle, base: base, size: size, kind: kind, round: round, buffer: buffer, tally: tally)
                checkNoForeign(UnsafeRawBufferPointer(buffer), tally: tally, what: "\(kind) after reuse")
                if code != .badState { failure = "\(kind) after reuse: \(code.map { "\($0)" } ?? "success")" }
            }
            if let bytes = try? handle.read(from: base, count: 64, mode: .respectingProtections) {
                tally.misread(1, "array read after reuse returned \(bytes.count) bytes")
            }
            if let map = try? handle.memoryMap() {
                tally.misread(1, "memoryMap after reuse returned \(map.count) regions (the new process's)")
            }
            if (try? handle.state()) != .gone { failure = "state after reuse is not gone" }
            // reopen and a narrowing duplicate open new descriptors: they must not bind to the new process.
            if (try? handle.reopen()) != nil {
                failure = "reopen after reuse succeeded"
                if let bytes = try? handle.read(from: base, count: 64), bytes.contains(0xcc) {
                    tally.misread(1, "read after reopen returned the new process's bytes")
                }
            }
            if let narrowed = try? writer.duplicate(rights: .read) {
                if let bytes = try? narrowed.read(from: base, count: 64), bytes.contains(0xcc) {
                    tally.misread(1, "a narrowed duplicate reads the new process")
                } else {
                    tally.note("duplicate(rights: .read) after reuse succeeded (reads fail)")
                }
            }
            // A write through the old handle must not land in the new process.
            let junk = [UInt8](repeating: 0x5a, count: 32)
            if (try? writer.write(junk, to: base)) != nil { failure = "write after reuse succeeded" }
            if let now = rawProcRead(pid: pid, address: base, count: 32), now != [UInt8](repeating: 0xcc, count: 32) {
                tally.lost(32, "write through the old handle changed the new process")
            }
            if (try? handle.duplicate()) != nil, (try? handle.duplicate().read(from: base, count: 16)) != nil {
                tally.misread(1, "a duplicate of the old handle reads the new process")
            }
            return failure
        }
    }
    tally.note("reuse confirmed \(confirmed)/\(iterations)")
}
