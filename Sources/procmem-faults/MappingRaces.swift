import Glibc
import ProcessMemoryTestSupport
import ProcessMemory

// Mapping races: the target unmaps and mprotects pages of a region (driven through the fixture's
// commands from this thread) while a second thread reads, batches and writes it. Every result must
// be complete and correct, an exact partial (stopping on a page boundary, since the kernel changes
// whole pages), or a clear error; writes must never land outside the reported prefix.
// "Remap" is a fresh `map` per iteration: the fixture cannot map at a chosen address.

let mappingRaceCases: [FaultCase] = [
    FaultCase(name: "unmap-mprotect-races", group: "mapping-races", timeout: 300,
              summary: "unmap + mprotect pages while reads, batches and writes run") { c, t in
        try mappingRace(unmaps: true, iterations: c.n(quick: 25, full: 400), tally: t)
    },
    FaultCase(name: "mprotect-flip-races", group: "mapping-races", timeout: 300,
              summary: "mprotect flips only: debugger reads must stay complete") { c, t in
        try mappingRace(unmaps: false, iterations: c.n(quick: 25, full: 400), tally: t)
    },
]

func mappingRace(unmaps: Bool, iterations: Int, tally: Tally) throws {
    let fixture = try FixtureProcess.quiet()
    defer { fixture.stop() }
    let page = fixture.pageSize
    let pages = 64
    let size = pages * page
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
    defer { scratch.deallocate() }
    let fill = [UInt8](repeating: 0x44, count: 8 * page)
    for iteration in 0..<iterations {
        tally.attempt { () throws -> String? in
            let base = try fixture.map(size)
            let handle = try ProcessHandle(pid: fixture.pid, rights: .readWrite)
            let writeStart = base + UInt64(40 * page + 100)
            let writeCount = 8 * page - 200
            var maxWritten = 0
            var failure: String?
            let stop = AtomicFlag()

            /// Content and exactness of `n` bytes read at `address`, stopped (or not) by `stop`.
            func check(_ bytes: UnsafeRawBufferPointer, at address: UInt64, requested: Int,
                       stopCode: ProcessMemoryError.Code?, what: String) {
                for i in 0..<bytes.count {
                    let a = address + UInt64(i)
                    let inWrite = a >= writeStart && a < writeStart + UInt64(writeCount)
                    if bytes[i] != 0x33 && !(inWrite && bytes[i] == 0x44) {
                        tally.misread(1, "\(what): byte 0x\(String(bytes[i], radix: 16)) at region+\(a - base)")
                        break
                    }
                }
                guard let code = stopCode else { return }
                if !what.hasPrefix("quiet") { tally.note("partial \(what.split(separator: " ").first ?? ""): \(code)") }
                if code.isLifecycle || code == .invalidArguments || code == .invalidBuffer { failure = "\(what): \(code) on a live target" }
                let end = address + UInt64(bytes.count)
                // /proc/PID/mem copies in PAGE_SIZE chunks counted from the start address, taking the mmap
                // lock per chunk: a page that vanishes between two chunks stops the call at a chunk boundary.
                let chunkBoundary = !what.hasPrefix("batch") && !what.contains("respectingProtections read")
                    && bytes.count % page == 0
                if bytes.count > 0 && chunkBoundary && end % UInt64(page) != 0 {
                    tally.note("\(what) stopped at a 4 KiB chunk boundary mid-page (page changed between chunks)")
                } else if bytes.count > 0 && end % UInt64(page) != 0 {
                    tally.lost(Int(UInt64(page) - end % UInt64(page)), "\(what): partial stopped mid-page at region+\(end - base)")
                }
                if !unmaps && what.hasPrefix("debugger") { failure = "\(what): partial (\(code)) with nothing unmapped" }
            }

            let worker = Worker {
                var round = 0
                while !stop.isSet {
                    switch round % 4 {
                    case 0, 1:
                        let mode: ReadMode = round % 8 < 4 ? .debugger : .respectingProtections
                        let offset = (round * 911) % (2 * page)
                        let count = size - offset - (round % 3) * 333
                        let target = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<count])
                        do {
                            let t = try handle.readTransfer(from: base + UInt64(offset), into: target, mode: mode)
                            check(UnsafeRawBufferPointer(rebasing: target[0..<t.bytesTransferred]), at: base + UInt64(offset),
                                  requested: count, stopCode: t.stop?.code, what: "\(mode) read")
                        } catch {
                            failure = "read threw \(error)"
                        }
                    case 2:
                        let batch = ReadBatch()
                        for k in 0..<48 {
                            batch.add(address: base + UInt64(k * size / 48 + (k * 37) % page), count: 700 + (k * 211) % 2400)
                        }
                        do {
                            try handle.read(batch)
                            for k in 0..<48 {
                                let (address, count) = batch.entry(k)
                                var code: ProcessMemoryError.Code?
                                if case .failed(let c, let read) = batch.outcome(k) {
                                    code = c
                                    if read == 0 { code = nil }  // failed at its first byte: nothing to check
                                }
                                if batch.outcome(k) == .pending { failure = "batch entry left pending" }
                                batch.withBytes(k) {
                                    check($0, at: address, requested: count, stopCode: code, what: "batch entry")
                                }
                            }
                        } catch {
                            failure = "batch threw \(error)"
                        }
                    default:
                        let mode: WriteMode = round % 8 < 4 ? .debugger : .respectingProtections
                        do {
                            let t = try fill.withUnsafeBytes {
                                try handle.writeTransfer(UnsafeRawBufferPointer(rebasing: $0[0..<writeCount]), to: writeStart, mode: mode)
                            }
                            maxWritten = max(maxWritten, t.bytesTransferred)
                            if let stopError = t.stop {
                                if stopError.code.isLifecycle { failure = "write: \(stopError.code) on a live target" }
                                let end = writeStart + UInt64(t.bytesTransferred)
                                if t.bytesTransferred > 0 && t.bytesTransferred % page == 0 && end % UInt64(page) != 0 {
                                    tally.note("write stopped at a 4 KiB chunk boundary mid-page (page changed between chunks)")
                                } else if t.bytesTransferred > 0 && end % UInt64(page) != 0 {
                                    tally.lost(1, "write \(mode) stopped mid-page: \(t.bytesTransferred) of \(writeCount) bytes at region+\(writeStart - base), \(stopError)")
                                }
                                tally.note("write \(mode) partial: \(stopError.code)")
                            }
                        } catch {
                            if errorCode(error).isLifecycle { failure = "write threw \(error)" }
                        }
                    }
                    round += 1
                }
            }
            // The driver: mprotect (and unmap) pages while the worker runs.
            var unmapped = Set<Int>()
            for step in 0..<30 {
                let k = (iteration * 13 + step * 29) % (pages - 2)
                let count = 1 + step % 3
                let address = base + UInt64(k * page)
                if unmaps && step % 5 == 4 {
                    _ = try fixture.command("unmap \(address) \(page)")
                    unmapped.insert(k)
                } else {
                    let perms = ["---", "r--", "rw-"][(step + iteration) % 3]
                    _ = try fixture.command("protect \(address) \(count * page) \(perms)")
                }
                usleep(UInt32(100 + (step * 53) % 400))
            }
            stop.set()
            worker.join()
            // Quiet now: a partial read must stop exactly where the map says.
            let map = try handle.memoryMap()
            var firstUnmapped = pages
            var firstUnreadable = pages
            for p in 0..<pages {
                let region = map.region(containing: base + UInt64(p * page))
                if region == nil { firstUnmapped = min(firstUnmapped, p) }
                if region == nil || !(region!.permissions.contains(.read)) { firstUnreadable = min(firstUnreadable, p) }
                if region == nil && !unmapped.contains(p) { failure = "page \(p) missing from the map" }
            }
            for (mode, expected) in [(ReadMode.debugger, firstUnmapped), (.respectingProtections, firstUnreadable)] {
                let t = try handle.readTransfer(from: base, into: UnsafeMutableRawBufferPointer(rebasing: scratch[0..<size]), mode: mode)
                check(UnsafeRawBufferPointer(rebasing: scratch[0..<t.bytesTransferred]), at: base, requested: size,
                      stopCode: nil, what: "quiet \(mode) read")
                if t.bytesTransferred != expected * page {
                    tally.lost(abs(expected * page - t.bytesTransferred),
                               "quiet \(mode) read: \(t.bytesTransferred) bytes, the map says \(expected * page)")
                }
            }
            // Writes: bytes outside [writeStart, writeStart + maxWritten) must still be 0x33.
            for p in 0..<pages where !unmapped.contains(p) {
                let address = base + UInt64(p * page)
                guard let bytes = try fixture.selfReadIfReadable(address, page) else { continue }
                for (i, b) in bytes.enumerated() {
                    let a = address + UInt64(i)
                    let inPrefix = a >= writeStart && a < writeStart + UInt64(maxWritten)
                    if b == 0x44 && !inPrefix { tally.lost(1, "a write landed outside its reported prefix"); break }
                    if b != 0x33 && b != 0x44 { tally.lost(1, "foreign byte in the region"); break }
                }
            }
            _ = try? fixture.command("unmap \(base) \(size)")
            return failure
        }
    }
}
