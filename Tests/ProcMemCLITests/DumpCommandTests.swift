import Foundation
import Glibc
import ProcessMemoryTestSupport
import ProcessMemoryTestTraits
import Testing

/// `procmem dump` and `procmem diff` against the fixture and against real programs, with gdb.
@Suite("procmem dump and diff")
struct DumpCommandTests {
    static let gdb = ToolLookup.path(of: "gdb")

    static func scratch(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("procmem-cli-\(name)-\(UUID().uuidString)").path
    }

    static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
        try? FileManager.default.removeItem(atPath: path + ".json")
    }

    /// Runs `executable` with `arguments`; returns status and stdout+stderr.
    static func run(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Sends one command to the fixture and returns its reply.
    static func command(_ fixture: Fixture, _ line: String) throws -> [String: Any] {
        try fixture.command(line)
    }

    static func isRunning(_ pid: String) -> Bool {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return !tasks.isEmpty && tasks.allSatisfy { tid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return true }
            let state = stat[stat.index(close, offsetBy: 2)]
            return state != "T" && state != "t"
        }
    }

    static func index(_ path: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
        return try #require(object as? [String: Any])
    }

    @Test("gdb loads a core of the fixture and shows its known values", .requiresTool("gdb"))
    func coreLoadsInGDB() throws {
        let gdb = try #require(Self.gdb)
        try withFixture { fixture in
            let core = Self.scratch("core")
            defer { Self.remove(core) }
            let result = try procmem("dump", fixture.pidArgument, "--core", core)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stderr.isEmpty, "quiet when stderr is not a terminal: \(result.stderr)")
            #expect(Self.isRunning(fixture.pidArgument))
            let u32 = try fixture.layout.value("u32")
            let cstring = try fixture.layout.value("cstring")
            let (status, output) = try Self.run(gdb, ["-batch", "-nx", "-ex", "x/4xw \(hex(u32))", "-ex", "x/s \(hex(cstring))",
                                                      fixture.executable, core])
            #expect(status == 0, "\(output)")
            #expect(output.contains("0xdeadbeef"), "\(output)")
            #expect(output.contains("\"procmem fixture says hello\""), "\(output)")
            let sidecar = try Self.index(core + ".json")
            #expect(sidecar["complete"] as? Bool == true)
            #expect(sidecar["format"] as? String == "procmem-core")
        }
    }

    @Test("gdb loads a core of a Python process and shows a marker string at its address",
          .requiresTool("gdb"), .requiresTool("python3"))
    func coreOfRealProgram() throws {
        let gdb = try #require(Self.gdb)
        let python = try #require(ToolLookup.path(of: "python3"))
        let marker = "procmem-core-marker-7f3a9c"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", "import sys, time; m = bytearray(b'\(marker)'); print('ready', flush=True); time.sleep(120)"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        defer {
            // SIGKILL: a child spawned from a test thread may inherit a mask that blocks SIGTERM.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let core = Self.scratch("python")
        defer { Self.remove(core) }
        let pid = String(process.processIdentifier)
        let result = try procmem("dump", pid, "--core", core)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(Self.isRunning(pid))
        // Find the marker in a PT_LOAD and turn its file offset into an address.
        let data = try Data(contentsOf: URL(fileURLWithPath: core), options: .alwaysMapped)
        let bytes = [UInt8](data)
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) } }
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) } }
        let phoff = Int(u64(32))
        let count = Int(UInt16(bytes[56]) | UInt16(bytes[57]) << 8)
        let needle = Data(marker.utf8)
        var address: UInt64?
        var searchFrom = data.startIndex
        while address == nil, let found = data.range(of: needle, in: searchFrom..<data.endIndex) {
            let offset = UInt64(found.lowerBound)
            for index in 0..<count where u32(phoff + index * 56) == 1 {
                let at = phoff + index * 56
                let (fileOffset, vaddr, size) = (u64(at + 8), u64(at + 16), u64(at + 32))
                if fileOffset <= offset && offset + UInt64(needle.count) <= fileOffset + size {
                    address = vaddr + (offset - fileOffset)
                }
            }
            searchFrom = found.upperBound
        }
        let found = try #require(address, "the marker is in a PT_LOAD")
        let exe = URL(fileURLWithPath: python).resolvingSymlinksInPath().path
        let (status, text) = try Self.run(gdb, ["-batch", "-nx", "-ex", "x/s \(hex(found))", exe, core])
        #expect(status == 0, "\(text)")
        #expect(text.contains("\"\(marker)"), "\(text)")
    }

    @Test("Ctrl-C during a dump resumes the target and leaves a dump marked partial")
    func interruptedDump() throws {
        try withFixture { fixture in
            let reply = try Self.command(fixture, "map \(2 << 30)")
            let address = try #require((reply["address"] as? NSNumber)?.uint64Value)
            let directory = Self.scratch("interrupt")
            defer { Self.remove(directory) }
            let process = Process()
            process.executableURL = try Binaries.url("procmem")
            process.arguments = ["dump", fixture.pidArgument, "--output", directory]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Interrupt once the big region's file exists, that is, while it is being dumped (in
            // the new regions directory, which takes the place of regions/ when the dump ends).
            let digits = String(address, radix: 16)
            let bigFile = String(repeating: "0", count: max(0, 12 - digits.count)) + digits + ".bin"
            func started() -> Bool {
                let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
                return entries.contains { $0.hasPrefix(".regions.procmem-") && FileManager.default.fileExists(atPath: directory + "/" + $0 + "/" + bigFile) }
            }
            while process.isRunning && !started() { usleep(200) }
            process.interrupt()
            process.waitUntilExit()
            #expect(process.terminationStatus == 1)
            let index = try Self.index(directory + "/index.json")
            #expect(index["complete"] as? Bool == false)
            #expect(index["partialReason"] as? String == "interrupted")
            #expect(Self.isRunning(fixture.pidArgument))
            #expect(try Self.command(fixture, "ping")["ok"] as? Bool == true)
        }
    }

    @Test("procmem diff lists exactly the value written between two dumps, and compares with the live process")
    func diffBetweenDumps() throws {
        try withFixture { fixture in
            let first = Self.scratch("diff-a")
            let second = Self.scratch("diff-b")
            defer {
                Self.remove(first)
                Self.remove(second)
            }
            #expect(try procmem("dump", fixture.pidArgument, "--output", first, "--stop", "signal").status == 0)
            let u32 = try fixture.layout.value("u32")
            #expect(try procmem("write", fixture.pidArgument, hex(u32), "--as", "u32", "--value", "0x11223344").status == 0)
            #expect(try procmem("dump", fixture.pidArgument, "--output", second).status == 0)
            let diff = try procmem("diff", first, second, "--json")
            #expect(diff.status == 0, "\(diff.stderr)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(diff.stdout)) as? [String: Any])
            // Outside the fixture's own regions the kernel may change bytes by itself: it rewrites
            // the rseq area's cpu_id fields when the thread resumes on the other CPU.
            let fixtureRanges = fixture.layout.regions.values.map { $0.address..<($0.address + UInt64($0.size)) }
            func inFixture(_ change: [String: Any]) -> Bool {
                guard let start = (change["start"] as? String).flatMap({ UInt64($0.dropFirst(2), radix: 16) }) else { return false }
                return fixtureRanges.contains { $0.contains(start) }
            }
            let changed = try #require(object["changed"] as? [[String: Any]]).filter(inFixture)
            #expect(changed.count == 1, "\(diff.text)")
            #expect(changed.first?["start"] as? String == hex(u32))
            #expect(changed.first?["end"] as? String == hex(u32 + 4))
            #expect((object["onlyInA"] as? [Any])?.isEmpty == true)
            #expect((object["onlyInB"] as? [Any])?.isEmpty == true)
            let live = try procmem("diff", first, fixture.pidArgument)
            #expect(live.status == 0)
            #expect(live.lines.contains("changed \(hex(u32))-\(hex(u32 + 4)) (4 bytes)"), "\(live.text)")
            #expect(live.lines.count <= 3, "at most the value and the two rseq cpu fields: \(live.text)")
        }
    }

    @Test("bad arguments and a missing process give distinct exit codes")
    func errors() throws {
        #expect(try procmem("dump", "999999999", "--output", "/tmp/x").status == 16)
        #expect(try procmem("dump", "1").status == 64)
        #expect(try procmem("diff", "/nonexistent-a", "/nonexistent-b").status == 10)
    }
}
