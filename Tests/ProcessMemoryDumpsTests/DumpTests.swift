import Foundation
import Glibc
import ProcessMemoryTestSupport
import Synchronization
import Testing
import ProcessMemoryCore
import ProcessMemoryDumps

/// Dumps to a directory and to a core file: integrity against /proc/PID/mem, unreadable ranges,
/// partial dumps, and the target always resumed.
@Suite("Dumps")
struct DumpTests {
    /// The default chunk, and one of three pages: many chunks read ahead, and chunks that start
    /// with `process_vm_readv` and finish a PROT_NONE page through `/proc/PID/mem`.
    static let chunkSizes = [8 << 20, 3 * 4096]

    @Test("every byte of a directory dump equals what the stopped process holds", arguments: chunkSizes)
    func directoryDumpMatchesProcess(chunkSize: Int) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let directory = DumpSupport.scratch("integrity")
        defer { DumpSupport.remove(directory) }
        try handle.withStopped(.signal) { _ in
            let index = try handle.dump(toDirectory: directory, options: DumpOptions(stopMethod: .none, chunkSize: chunkSize))
            #expect(index.complete)
            #expect(index.bytesDumped > 0)
            var compared = 0
            for segment in index.regions.flatMap(\.segments) {
                let count = Int(segment.end - segment.start)
                let file = try #require(segment.file)
                let dumped = try DumpSupport.fileBytes(directory + "/" + file, at: segment.fileOffset, count: count)
                let live = try #require(DumpSupport.rawRead(pid: fixture.pid, segment.start, count), "0x\(String(segment.start, radix: 16)) is readable")
                #expect(dumped.count == count)
                #expect(DumpSupport.checksum(dumped) == DumpSupport.checksum(live), "segment at 0x\(String(segment.start, radix: 16))")
                compared += count
            }
            #expect(UInt64(compared) == index.bytesDumped)
            // The PROT_NONE page, which process_vm_readv cannot read, was dumped (and compared above).
            let protNone = try fixture.layout.region("protNone")
            let page = fixture.layout.pageSize
            let protNonePage = protNone.address + (protNone.protNoneOffset ?? page)
            #expect(DumpSupport.hasData(index, protNonePage..<(protNonePage + page)))
            // The known value, through the index.
            let u32 = try fixture.layout.value("u32")
            let segment = try #require(index.regions.flatMap(\.segments).first { $0.start <= u32 && u32 < $0.end })
            let bytes = try DumpSupport.fileBytes(directory + "/" + (segment.file ?? ""), at: segment.fileOffset + (u32 - segment.start), count: 4)
            #expect(bytes == [0xef, 0xbe, 0xad, 0xde])
        }
        #expect(DumpSupport.isRunning(fixture.pid))
    }

    @Test("guard, secret, past-EOF and (protection-respecting) PROT_NONE ranges are listed, not written")
    func unreadableRangesAreListed() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let page = fixture.layout.pageSize
        var unreadable: [(String, Range<UInt64>)] = []
        if let guardRegion = fixture.layout.regions["guard"], let offset = guardRegion.guardOffset {
            unreadable.append(("guard", (guardRegion.address + offset)..<(guardRegion.address + offset + page)))
        }
        if let secret = fixture.layout.regions["secret"] {
            unreadable.append(("secret", secret.address..<(secret.address + secret.size)))
        }
        let truncated = try fixture.layout.region("truncatedFile")
        let fileSize = try #require(truncated.fileSize)
        let eof = (fileSize + page - 1) / page * page
        unreadable.append(("truncatedFile", (truncated.address + eof)..<(truncated.address + truncated.size)))
        let protNone = try fixture.layout.region("protNone")
        let protNonePage = (protNone.address + (protNone.protNoneOffset ?? page))..<(protNone.address + 2 * page)

        for mode in [ReadMode.debugger, .respectingProtections] {
            let directory = DumpSupport.scratch("unreadable")
            defer { DumpSupport.remove(directory) }
            let index = try handle.dump(toDirectory: directory, options: DumpOptions(readMode: mode))
            #expect(index.complete)
            for (name, range) in unreadable {
                #expect(DumpSupport.isListedAsFailed(index, range), "\(name) (\(mode)) is listed as failed")
                #expect(!DumpSupport.hasData(index, range), "\(name) (\(mode)) has no data")
            }
            // The readable part of the truncated file is there.
            #expect(DumpSupport.hasData(index, truncated.address..<(truncated.address + eof)))
            if mode == .respectingProtections {
                #expect(DumpSupport.isListedAsFailed(index, protNonePage))
                #expect(!DumpSupport.hasData(index, protNonePage))
                #expect(index.failedRanges.contains { $0.start == protNonePage.lowerBound && $0.code == .protectionFailure })
            } else {
                #expect(DumpSupport.hasData(index, protNonePage), "the debugger mode reads PROT_NONE pages")
            }
            // No file holds more than its segment: nothing was zero-filled.
            var onDisk: UInt64 = 0
            for segment in index.regions.flatMap(\.segments) {
                let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/" + (segment.file ?? ""))
                onDisk += (attributes[.size] as? NSNumber)?.uint64Value ?? 0
            }
            #expect(onDisk == index.bytesDumped)
            // The index on disk says the same.
            let stored = try DumpIndex.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/index.json"))))
            #expect(stored == index)
            #expect(DumpSupport.isRunning(fixture.pid))
        }
    }

    @Test("every PT_LOAD of a core equals the stopped process's memory; unreadable ranges have no bytes",
          arguments: chunkSizes)
    func coreMatchesProcess(chunkSize: Int) throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let core = DumpSupport.scratch("core")
        defer { DumpSupport.remove(core) }
        try handle.withStopped(.signal) { _ in
            let index = try handle.dumpCore(to: core, options: DumpOptions(stopMethod: .none, chunkSize: chunkSize))
            #expect(index.complete)
            let (loads, notes, type) = try DumpSupport.loads(ofCore: core)
            #expect(type == 4)
            #expect(notes == 1)
            #expect(loads.count >= index.regions.count)
            for load in loads where load.fileSize > 0 {
                let dumped = try DumpSupport.fileBytes(core, at: load.offset, count: Int(load.fileSize))
                let live = try #require(DumpSupport.rawRead(pid: fixture.pid, load.address, Int(load.fileSize)))
                #expect(DumpSupport.checksum(dumped) == DumpSupport.checksum(live), "PT_LOAD at 0x\(String(load.address, radix: 16))")
            }
            // Every failed range is a PT_LOAD without bytes.
            for failed in index.failedRanges {
                #expect(loads.contains { $0.address == failed.start && $0.memorySize == failed.end - failed.start && $0.fileSize == 0 })
            }
            #expect(loads.filter { $0.fileSize > 0 }.reduce(0) { $0 + $1.fileSize } == index.bytesDumped)
        }
        #expect(DumpSupport.isRunning(fixture.pid))
    }

    @Test("a dump cancelled midway is written, marked partial, and the target resumed")
    func cancelledDumpIsPartial() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        try fixture.ok("map \(32 << 20)")
        let directory = DumpSupport.scratch("cancel")
        defer { DumpSupport.remove(directory) }
        let polls = Atomic<Int>(0)
        let options = DumpOptions(chunkSize: 1 << 20, cancellation: Cancellation {
            polls.add(1, ordering: .relaxed).newValue > 5
        })
        let index = try handle.dump(toDirectory: directory, options: options)
        #expect(!index.complete)
        #expect(index.partialReason == "interrupted")
        #expect(index.regions.contains { $0.processedUpTo < $0.end })
        let stored = try DumpIndex.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/index.json"))))
        #expect(stored.complete == false)
        #expect(DumpSupport.isRunning(fixture.pid))
    }

    @Test("a target killed during a dump gives a partial dump that says why")
    func targetExitsDuringDump() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        try fixture.ok("map \(32 << 20)")
        let directory = DumpSupport.scratch("exit")
        defer { DumpSupport.remove(directory) }
        var polls = 0
        let options = DumpOptions(stopMethod: .signal, chunkSize: 1 << 20, progress: { _ in
            polls += 1
            if polls == 5 {
                fixture.kill(SIGKILL)
                fixture.waitForZombie()
            }
        })
        do {
            let index = try handle.dump(toDirectory: directory, options: options)
            #expect(!index.complete)
            #expect(index.partialReason?.contains("badState") == true, "\(index.partialReason ?? "nil")")
        } catch {
            #expect(error.code == .badState)
        }
        fixture.reap()
    }

    @Test("the target is resumed when the dump fails after stopping it")
    func resumedAfterError() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        for method in [StopMethod.ptrace, .signal] {
            // /dev/full accepts the open and fails every write with ENOSPC.
            #expect(throws: ProcessMemoryError.self) {
                try handle.dumpCore(to: "/dev/full", options: DumpOptions(stopMethod: method))
            }
            #expect(DumpSupport.isRunning(fixture.pid), "\(method)")
            struct Failure: Error {}
            #expect(throws: Failure.self) {
                try handle.withStopped(method) { _ in throw Failure() }
            }
            #expect(DumpSupport.isRunning(fixture.pid), "\(method)")
        }
    }
}
