import Glibc
import ProcessMemoryTestSupport
import ProcessMemory
import Synchronization

// Long operations: the target exits, is killed, execs or forks while a scan, a directory dump or a
// watch runs, and unmaps or mprotects pages while scans and dumps run.
//
// The target maps a region of 0x33 bytes with the marker 0xCCCCCCCC planted at known addresses. On
// exec, the new image maps its own region at the same addresses, filled entirely with 0xCC: a scan
// that reports a marker anywhere else, a dump whose region file holds a 0xCC byte outside a marker,
// or a watch that reports anything but the original bytes has read the other image (a misread).
// A marker missing from a complete scan, outside every skipped range, is a lost result.

let longOperationCases: [FaultCase] = [
    FaultCase(name: "lifecycle-during-scans", group: "long-operations", timeout: 300,
              summary: "exit, kill, exec (0xcc image at the same addresses) or fork while a scan runs") { c, t in
        try lifecycleDuringLongOperation(.scan, iterations: c.n(quick: 16, full: 160), tally: t)
    },
    FaultCase(name: "lifecycle-during-dumps", group: "long-operations", timeout: 300,
              summary: "exit, kill, exec or fork while a directory dump runs (no stop, ptrace, SIGSTOP)") { c, t in
        try lifecycleDuringLongOperation(.dump, iterations: c.n(quick: 16, full: 160), tally: t)
    },
    FaultCase(name: "lifecycle-during-watch", group: "long-operations", timeout: 300,
              summary: "exit, kill, exec or fork while a watcher polls") { c, t in
        try lifecycleDuringLongOperation(.watch, iterations: c.n(quick: 16, full: 160), tally: t)
    },
    FaultCase(name: "mapping-races-during-scans-dumps", group: "long-operations", timeout: 300,
              summary: "unmap + mprotect pages while scans and dumps run; untouched pages always found") { c, t in
        try mappingRacesDuringScansAndDumps(iterations: c.n(quick: 8, full: 100), tally: t)
    },
]

enum LongOperation { case scan, dump, watch }

/// The marker planted in the target, as bytes.
let markerBytes: [UInt8] = [0xcc, 0xcc, 0xcc, 0xcc]

/// A fixture with one region of 0x33 and the marker at `markers`.
struct MarkedTarget {
    let fixture: FixtureProcess
    let base: UInt64
    let size: Int
    let markers: [UInt64]

    init(size: Int, markerCount: Int) throws {
        fixture = try FixtureProcess.quiet()
        base = try fixture.map(size)
        self.size = size
        let spacing = size / markerCount
        let start = base
        markers = (0..<markerCount).map { k in start + UInt64(k * spacing + 4 * ((k * 389) % (spacing / 8))) }
        for marker in markers { _ = try fixture.ok("write \(marker) cccccccc") }
    }

    /// Checks bytes that claim to be the region's at `address`: 0x33, or a marker's 0xCC.
    func check(_ bytes: UnsafeRawBufferPointer, at address: UInt64, tally: Tally, what: String) {
        guard let bad = firstMismatch(bytes, 0x33) else { return }
        // Slow path from the first byte that is not 0x33: markers are allowed, nothing else.
        var i = bad
        while i < bytes.count {
            let a = address + UInt64(i)
            if bytes[i] == 0x33 { i += 1; continue }
            if bytes[i] == 0xcc, markers.contains(where: { a >= $0 && a < $0 + 4 }) { i += 1; continue }
            tally.misread(1, "\(what): byte 0x\(String(bytes[i], radix: 16)) at region+\(a - base)")
            return
        }
    }
}

/// The scan, dump or watch of one try: its outcome text for the notes, and a failure or nil.
func lifecycleDuringLongOperation(_ operation: LongOperation, iterations: Int, tally: Tally) throws {
    let events: [LifecycleEvent] = [.exit, .kill, .exec, .fork]
    let size = 64 << 20
    for iteration in 0..<iterations {
        let event = events[iteration % events.count]
        tally.attempt { () throws -> String? in
            let target = try MarkedTarget(size: size, markerCount: 16)
            defer { target.fixture.killAndReap() }
            let handle = try ProcessHandle(pid: target.fixture.pid)
            defer { handle.close() }
            let stop = AtomicFlag()
            let finished = AtomicFlag()
            var failure: String?
            var outcome = ""
            let stopMethod: StopMethod = event == .kill ? [StopMethod.none, .ptrace, .signal][(iteration / 4) % 3] : .none
            let scratch = "/dev/shm/procmem-faults-\(getpid())-\(iteration)"
            defer { removeTree(scratch) }
            let worker = Worker {
                defer { finished.set() }
                switch operation {
                case .scan: (outcome, failure) = scanOnce(target, handle: handle, event: event, tally: tally)
                case .dump: (outcome, failure) = dumpOnce(target, handle: handle, event: event, stopMethod: stopMethod,
                                                          directory: scratch, tally: tally)
                case .watch: (outcome, failure) = watchUntilStopped(target, handle: handle, event: event, stop: stop, tally: tally)
                }
            }
            // The event, at a different moment of the operation each try.
            usleep(UInt32(1000 + (iteration * 7919) % 40_000))
            let early = finished.isSet
            var forked: Int32 = 0
            switch event {
            case .exit:
                if stopMethod == .none { try target.fixture.process.send("exit") } else { target.fixture.kill() }
            case .kill:
                target.fixture.kill()
            case .exec:
                _ = try target.fixture.ok("exec \(fixtureExecutable) --detached --fill 0xcc --pattern-at \(target.base) --pattern-size \(size)")
            case .fork:
                let reply = try target.fixture.ok("fork")
                forked = Int32(truncatingIfNeeded: (reply["pid"] as? Int) ?? 0)
            }
            if event == .exec {
                // The new image must be in place before a watch is told to stop, so that it polls it.
                if !waitUntil(5, { rawProcRead(pid: target.fixture.pid, address: target.base, count: 16) == [UInt8](repeating: 0xcc, count: 16) }) {
                    tally.note("new image not confirmed")
                }
            }
            usleep(20_000)
            stop.set()
            if !waitUntil(60, { finished.isSet }) { return "the \(operation) did not finish within 60 s of the \(event)" }
            worker.join()
            if forked > 0 { kill(forked, SIGKILL) }
            if event == .exit || event == .kill { target.fixture.process.reap() }
            tally.note("\(event): \(early ? "finished before the event" : outcome)")
            return failure.map { "\(event): \($0)" }
        }
    }
}

/// Scans the marked region for the marker.
func scanOnce(_ target: MarkedTarget, handle: ProcessHandle, event: LifecycleEvent, tally: Tally) -> (String, String?) {
    do {
        let query = ScanQuery.value(try ScanValue("0xcccccccc", as: .u32))
        let scanner = Scanner(handle: handle, options: ScanOptions(chunkSize: 1 << 20))
        let region = MemoryRegion(start: target.base, end: target.base + UInt64(target.size), permissions: [.read, .write],
                                  isShared: false, path: nil)
        let result = try scanner.scan(query, regions: [region])
        let found = Set(result.matches.matches.map(\.address))
        for address in found where !target.markers.contains(address) {
            tally.misread(1, "scan: a match at region+\(address - target.base), where no marker is")
        }
        let missing = target.markers.filter { marker in
            !found.contains(marker) && !result.skipped.contains { marker >= $0.start && marker < $0.end }
        }
        if !missing.isEmpty { tally.lost(missing.count * 4, "scan: \(missing.count) markers neither found nor skipped") }
        if !result.skipped.isEmpty {
            let codes = Set(result.skipped.map { "\($0.reason.code)" }).sorted().joined(separator: ",")
            // A dead or replaced process must end the scan with its error, not pass for an unmapped region.
            if event != .fork { return ("complete with skipped ranges (\(codes))", "the scan reported \(codes) for a \(event)") }
            return ("complete with skipped ranges (\(codes))", "a scan of a live, unchanged region skipped ranges")
        }
        return ("scan complete", found.count == target.markers.count ? nil : "complete scan found \(found.count) of \(target.markers.count)")
    } catch {
        let code = errorCode(error)
        if event == .fork { return ("scan threw \(error)", "a scan failed during a fork") }
        if code.isLifecycle { return ("scan threw \(code.map { "\($0)" } ?? "?")", nil) }
        return ("scan threw \(error)", "unclear error \(error)")
    }
}

/// Dumps the process to `directory` and checks the marked region's files.
func dumpOnce(_ target: MarkedTarget, handle: ProcessHandle, event: LifecycleEvent, stopMethod: StopMethod,
              directory: String, tally: Tally) -> (String, String?) {
    do {
        let index = try handle.dump(toDirectory: directory, options: DumpOptions(stopMethod: stopMethod))
        let end = target.base + UInt64(target.size)
        var failure: String?
        var covered: UInt64 = 0
        for region in index.regions where region.start < end && region.end > target.base {
            for segment in region.segments {
                guard let file = segment.file else { failure = "a directory dump segment without a file"; continue }
                let bytes = (readProcFile(directory + "/" + file) ?? [])
                if bytes.count != Int(segment.end - segment.start) {
                    tally.lost(abs(bytes.count - Int(segment.end - segment.start)), "dump: \(file) holds \(bytes.count) bytes, its segment \(segment.end - segment.start)")
                    continue
                }
                bytes.withUnsafeBytes { target.check($0, at: segment.start, tally: tally, what: "dump \(stopMethod)") }
                covered += segment.end - segment.start
            }
        }
        if index.complete {
            if covered != UInt64(target.size) {
                tally.lost(Int(UInt64(target.size) - covered), "dump: a complete dump holds \(covered) of the region's \(target.size) bytes")
            }
            if event != .fork && index.partialReason != nil { failure = "complete dump with a partial reason" }
            return ("dump complete", failure)
        }
        guard let reason = index.partialReason, !reason.isEmpty else { return ("partial dump", "a partial dump that does not say why") }
        if event == .fork { return ("partial dump: \(reason)", "a dump was cut short by a fork") }
        return ("partial dump (\(stopMethod))", failure)
    } catch {
        let code = errorCode(error)
        if event == .fork { return ("dump threw \(error)", "a dump failed during a fork") }
        if code.isLifecycle { return ("dump threw \(code.map { "\($0)" } ?? "?") (\(stopMethod))", nil) }
        return ("dump threw \(error)", "unclear error \(error)")
    }
}

/// Polls a watcher over a marker and a plain word until `stop`, checking every value it reports.
func watchUntilStopped(_ target: MarkedTarget, handle: ProcessHandle, event: LifecycleEvent, stop: AtomicFlag,
                       tally: Tally) -> (String, String?) {
    let plain = target.base + 64
    let watcher = Watcher(handle: handle, targets: [.init(address: target.markers[1], size: 4), .init(address: plain, size: 8)])
    let expected: [[UInt8]] = [markerBytes, [UInt8](repeating: 0x33, count: 8)]
    var polls = 0
    do {
        while !stop.isSet {
            for change in try watcher.poll() {
                switch change.new {
                case .bytes(let bytes):
                    if bytes != expected[change.target] {
                        tally.misread(1, "watch: target \(change.target) reported \(bytes.prefix(8).map { String($0, radix: 16) })")
                    }
                case .unreadable(let error):
                    if event == .fork { return ("watch: unreadable \(error.code)", "a watched value became unreadable during a fork") }
                    if !error.code.isLifecycle { return ("watch: unreadable \(error.code)", "unclear error \(error)") }
                    return ("watch: unreadable \(error.code)", nil)
                }
            }
            polls += 1
            usleep(200)
        }
        if event == .fork { return ("watch ran through the fork (\(polls) polls)", nil) }
        return ("watch never saw the \(event)", "a watcher polled on after the \(event) without an error")
    } catch {
        if event == .fork { return ("watch threw \(error)", "a watch failed during a fork") }
        if error.code.isLifecycle { return ("watch threw \(error.code)", nil) }
        return ("watch threw \(error)", "unclear error \(error)")
    }
}

/// Unmaps and mprotects pages of the first half of a marked region while scans and dumps of it run.
func mappingRacesDuringScansAndDumps(iterations: Int, tally: Tally) throws {
    for iteration in 0..<iterations {
        tally.attempt { () throws -> String? in
            let pages = 256
            let target = try MarkedTarget(size: pages * 4096, markerCount: 32)
            defer { target.fixture.killAndReap() }
            let page = target.fixture.pageSize
            guard page == 4096 else { tally.skipped = "page size \(page)"; return nil }
            let handle = try ProcessHandle(pid: target.fixture.pid)
            defer { handle.close() }
            let touchedEnd = target.base + UInt64(pages / 2 * page)
            let stop = AtomicFlag()
            var failure: String?
            let rounds = Atomic<Int>(0)
            let scratch = "/dev/shm/procmem-faults-races-\(getpid())-\(iteration)"
            defer { removeTree(scratch) }
            let worker = Worker {
                while !stop.isSet {
                    if rounds.load(ordering: .relaxed) % 2 == 0 {
                        // Scan what the map shows now; the driver changes it meanwhile.
                        do {
                            let map = try handle.memoryMap()
                            let regions = map.regions.filter { $0.start < target.base + UInt64(target.size) && $0.end > target.base }
                            let scanner = Scanner(handle: handle, options: ScanOptions(chunkSize: 64 << 10))
                            let result = try scanner.scan(.value(try ScanValue("0xcccccccc", as: .u32)), regions: regions)
                            let found = Set(result.matches.matches.map(\.address))
                            for address in found where !target.markers.contains(address) {
                                tally.misread(1, "scan: a match at region+\(address - target.base), where no marker is")
                            }
                            // Markers in the untouched half are always found; the others are found or skipped
                            // (or their page was unmapped or unreadable when the map was taken).
                            for marker in target.markers where marker >= touchedEnd && !found.contains(marker) {
                                tally.lost(4, "scan: a marker in the untouched half was not found")
                            }
                            for marker in target.markers where marker < touchedEnd && !found.contains(marker) {
                                let listed = regions.contains { marker >= $0.start && marker < $0.end && $0.permissions.contains(.read) }
                                if listed && !result.skipped.contains(where: { marker >= $0.start && marker < $0.end }) {
                                    tally.note("scan: a marker whose page changed after the map was read was not found (not skipped)")
                                }
                            }
                            if !result.skipped.isEmpty { tally.note("scan skipped \(Set(result.skipped.map { "\($0.reason.code)" }).sorted())") }
                        } catch {
                            failure = "scan threw \(error)"
                        }
                    } else {
                        do {
                            removeTree(scratch)
                            let index = try handle.dump(toDirectory: scratch, options: DumpOptions(stopMethod: .none))
                            if !index.complete { failure = "a dump of a live target was partial: \(index.partialReason ?? "")" }
                            var untouched: UInt64 = 0
                            for region in index.regions where region.start < target.base + UInt64(target.size) && region.end > target.base {
                                for segment in region.segments {
                                    let bytes = (readProcFile(scratch + "/" + (segment.file ?? "")) ?? [])
                                    bytes.withUnsafeBytes { target.check($0, at: segment.start, tally: tally, what: "dump") }
                                    if bytes.count != Int(segment.end - segment.start) { tally.lost(1, "dump: a region file is short") }
                                    let low = max(segment.start, touchedEnd)
                                    let high = min(segment.end, target.base + UInt64(target.size))
                                    if high > low { untouched += high - low }
                                }
                            }
                            if untouched < UInt64(target.size / 2) {
                                tally.lost(Int(UInt64(target.size / 2) - untouched), "dump: the untouched half is not all in the dump")
                            }
                        } catch {
                            failure = "dump threw \(error)"
                        }
                    }
                    rounds.add(1, ordering: .relaxed)
                }
            }
            // The driver: mprotect and unmap pages of the first half, at least 40 times and until a
            // scan and a dump have both run to their end meanwhile (a dump of the whole fixture is slow).
            var step = 0
            while step < 40 || (rounds.load(ordering: .relaxed) < 3 && step < 5000) {
                defer { step += 1 }
                let k = (iteration * 13 + step * 29) % (pages / 2 - 3)
                let address = target.base + UInt64(k * page)
                if step % 6 == 5 {
                    _ = try target.fixture.command("unmap \(address) \(page)")
                } else {
                    let perms = ["---", "r--", "rw-"][(step + iteration) % 3]
                    _ = try target.fixture.command("protect \(address) \((1 + step % 3) * page) \(perms)")
                }
                usleep(UInt32(200 + (step * 53) % 800))
            }
            stop.set()
            worker.join()
            if rounds.load(ordering: .relaxed) < 3 { tally.note("fewer than one scan and one dump ran during the races") }
            return failure
        }
    }
}

/// Removes a dump directory (its `regions/` files, the index, the directory).
func removeTree(_ path: String) {
    for directory in [path + "/regions", path] {
        guard let dir = opendir(directory) else { continue }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { unlink(directory + "/" + name) }
        }
        closedir(dir)
        rmdir(directory)
    }
}
