import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing

/// Fixture commands (`map`, `write`, `read`) for building pointer structures, one JSON reply each.
extension Fixture {
    @discardableResult
    func pointerCommand(_ line: String) throws -> [String: Any] {
        let dictionary = try command(line)
        #expect(dictionary["ok"] as? Bool == true, "fixture refused '\(line)': \(dictionary)")
        return dictionary
    }

    func mapPage() throws -> UInt64 {
        try map(4096)
    }

    func storePointer(_ pointer: UInt64, at address: UInt64) throws {
        try ok("write \(address) \(Self.littleEndianHex(pointer))")
    }

    func selfReadHex(_ address: UInt64, _ count: Int) throws -> String {
        try #require(try ok("read \(address) \(count)")["hex"] as? String)
    }

    static func littleEndianHex(_ value: UInt64, bytes: Int = 8) -> String {
        withUnsafeBytes(of: value.littleEndian) { $0.prefix(bytes).map { String(format: "%02x", $0) }.joined() }
    }

    /// The fixture executable's rw-p mapping and the start of its first mapping, from /proc/PID/maps.
    func dataSegment() throws -> (start: UInt64, end: UInt64, moduleStart: UInt64) {
        let maps = try String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)
        let path = URL(fileURLWithPath: executable).resolvingSymlinksInPath().path
        var moduleStart: UInt64?
        for line in maps.split(separator: "\n") where line.hasSuffix(" " + path) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            let range = fields[0].split(separator: "-").compactMap { UInt64($0, radix: 16) }
            guard range.count == 2 else { continue }
            if moduleStart == nil { moduleStart = range[0] }
            if fields[1] == "rw-p", let moduleStart { return (range[0], range[1], moduleStart) }
        }
        throw FixtureError.missing("the fixture has no rw-p mapping of \(path)")
    }
}

/// A `procmem` run in the background, whose stdout is read line by line while it runs (also used
/// by the symbol-output tests).
final class BackgroundProcmem {
    let process = Process()
    private let stdout = Pipe()
    private let stderrURL = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-bg-\(UUID().uuidString).err")
    private var pending = Data()

    init(_ arguments: [String]) throws {
        process.executableURL = try Binaries.url("procmem")
        process.arguments = arguments
        process.standardOutput = stdout
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    deinit {
        if process.isRunning { process.terminate() }
        try? FileManager.default.removeItem(at: stderrURL)
    }

    /// The next line of stdout; `nil` at end of file or after 60 s without one (a safety bound, not a timing check).
    func nextLine() -> String? {
        let fd = stdout.fileHandleForReading.fileDescriptor
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                pending = Data(pending[(newline + 1)...])
                return line
            }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 60_000) == 1 else { return nil }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { return nil }
            pending.append(contentsOf: buffer[0..<count])
        }
    }

    /// Sends SIGINT and waits for the exit status.
    func interrupt() -> Int32 {
        kill(process.processIdentifier, SIGINT)
        return finish()
    }

    func finish() -> Int32 {
        process.waitUntilExit()
        return process.terminationStatus
    }

    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }
}

@Suite("procmem pointer, watch, freeze")
struct PointerWatchCommandTests {
    @Test("pointer resolve follows 2- and 3-hop chains built in the fixture, and names a broken hop")
    func resolve() throws {
        try withFixture { fixture in
            let target = try fixture.layout.value("u32")
            let a = try fixture.mapPage()
            let b = try fixture.mapPage()
            try fixture.storePointer(b, at: a + 0x10)
            try fixture.storePointer(target - 4, at: b + 0x8)

            let two = try procmem("pointer", "resolve", fixture.pidArgument, "\(hex(a))+0x10 -> +0x8")
            #expect(two.status == 0, "\(two.stderr)")
            #expect(two.lines.first == "base \(hex(a + 0x10)) (\(hex(a))+0x10)")
            #expect(two.lines.contains("hop 1: [\(hex(a + 0x10))] = \(hex(b)) +0x8 -> \(hex(b + 8))"))
            #expect(two.lines.last == hex(b + 8))

            let three = try procmem("pointer", "resolve", fixture.pidArgument, "\(hex(a))+0x10 -> +0x8 -> +4", "--as", "u32")
            #expect(three.status == 0, "\(three.stderr)")
            #expect(three.lines.last == "\(hex(target)): 3735928559")

            let json = try procmem("pointer", "resolve", fixture.pidArgument, "\(hex(a + 0x10)) -> 8 -> 4", "--json")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout)) as? [String: Any])
            #expect(object["address"] as? String == hex(target))
            #expect((object["hops"] as? [Any])?.count == 2)

            let hole = try fixture.layout.region("hole")
            let missing = hole.address + UInt64(fixture.layout.pageSize) + 0x40
            try fixture.storePointer(missing, at: a + 0x18)
            let broken = try procmem("pointer", "resolve", fixture.pidArgument, "\(hex(a))+0x18 -> +0 -> +0")
            #expect(broken.status == 16)
            #expect(broken.lines.contains("hop 1: [\(hex(a + 0x18))] = \(hex(missing)) +0x0 -> \(hex(missing))"))
            #expect(broken.stderr.contains("hop 2 of 2"))
            #expect(broken.stderr.contains("the pointer at \(hex(missing)) could not be read (0 of 8 bytes)"))
            #expect(broken.stderr.contains("notFound"))

            let malformed = try procmem("pointer", "resolve", fixture.pidArgument, "\(hex(a)) -> +zz")
            #expect(malformed.status == 64)
        }
    }

    @Test("read, write and object take a pointer chain wherever they take an ADDRESS; a broken hop is named")
    func chainsAsAddresses() throws {
        try withFixture { fixture in
            let target = try fixture.layout.value("u32")
            let a = try fixture.mapPage()
            let b = try fixture.mapPage()
            try fixture.storePointer(b, at: a + 0x10)
            try fixture.storePointer(target - 4, at: b + 0x8)
            let chain = "\(hex(a))+0x10 -> +0x8 -> +4"

            let read = try procmem("read", fixture.pidArgument, chain, "--as", "u32")
            #expect(read.status == 0, "\(read.stderr)")
            #expect(read.lines == ["\(hex(target)): 3735928559"], "\(read.text)")

            let write = try procmem("write", fixture.pidArgument, chain, "--value", "7", "--as", "u32")
            #expect(write.status == 0, "\(write.stderr)")
            let back = try procmem("read", fixture.pidArgument, hex(target), "--as", "u32")
            #expect(back.lines == ["\(hex(target)): 7"], "\(back.text)")

            let object = try procmem("object", "info", fixture.pidArgument, "\(hex(a))+0x10 -> +0x0")
            // The chain ends in an anonymous page, which has no object: the chain was resolved first.
            #expect(object.status != 64 && !object.stderr.contains("invalid"), "the chain was not accepted as REGION: \(object.stderr)")
            #expect(object.stderr.contains("anonymous") || object.stderr.contains("object"), "\(object.stderr)")

            let hole = try fixture.layout.region("hole")
            let missing = hole.address + UInt64(fixture.layout.pageSize) + 0x40
            try fixture.storePointer(missing, at: a + 0x18)
            let broken = try procmem("read", fixture.pidArgument, "\(hex(a))+0x18 -> +0 -> +0", "--as", "u64")
            #expect(broken.status == 16)
            #expect(broken.stderr.contains("hop 2 of 2"), "\(broken.stderr)")
            #expect(broken.stderr.contains("the pointer at \(hex(missing)) could not be read (0 of 8 bytes)"))

            let malformed = try procmem("write", fixture.pidArgument, "\(hex(a)) -> +zz", "--value", "1", "--as", "u8")
            #expect(malformed.status == 64)
            #expect(malformed.stderr.contains("hop 1"))
        }
    }

    @Test("pointer scan finds the chain rooted in the fixture binary's data segment within depth 2")
    func scan() throws {
        try withFixture { fixture in
            let target = try fixture.layout.value("u32")
            let data = try fixture.dataSegment()
            let slot = data.end - 64
            let a = try fixture.mapPage()
            try fixture.storePointer(a, at: slot)
            try fixture.storePointer(target - 8, at: a + 0x30)
            let expected = "procmem-fixture+\(hex(slot - data.moduleStart)) -> +0x30 -> +0x8"

            let result = try procmem("pointer", "scan", fixture.pidArgument, hex(target), "--depth", "2", "--max-offset", "0x100",
                                     "--max-results", "1000")
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.lines.contains(expected), "\(result.lines)")
            #expect(result.stderr.contains("pointers indexed"))

            let resolved = try procmem("pointer", "resolve", fixture.pidArgument, expected, "--as", "u32")
            #expect(resolved.lines.last == "\(hex(target)): 3735928559")

            let json = try procmem("pointer", "scan", fixture.pidArgument, hex(target), "--depth", "2", "--max-offset", "0x100",
                                   "--max-results", "1000", "--json")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout)) as? [String: Any])
            let chains = try #require(object["chains"] as? [[String: Any]])
            #expect(chains.contains { $0["chain"] as? String == expected && $0["module"] as? String == "procmem-fixture" })
            #expect(try procmem("pointer", "scan", fixture.pidArgument, hex(target), "--depth", "0").status == 64)
        }
    }

    @Test("pointer scan --save lists every chain (two roots sharing nodes), and pointer rescan narrows the list")
    func scanSaveRescan() throws {
        try withFixture { fixture in
            let target = try fixture.layout.value("u32")
            let data = try fixture.dataSegment()
            let (s1, s2, s3) = (data.end - 64, data.end - 56, data.end - 48)
            let a = try fixture.mapPage()
            let b = try fixture.mapPage()
            try fixture.storePointer(a, at: s1)
            try fixture.storePointer(target - 8, at: a + 0x30)
            try fixture.storePointer(b, at: s2)
            try fixture.storePointer(b, at: s3)
            try fixture.storePointer(target - 4, at: b + 0x18)
            let two = "procmem-fixture+\(hex(s1 - data.moduleStart)) -> +0x30 -> +0x8"
            let fromS2 = "procmem-fixture+\(hex(s2 - data.moduleStart)) -> +0x18 -> +0x4"
            let fromS3 = "procmem-fixture+\(hex(s3 - data.moduleStart)) -> +0x18 -> +0x4"
            let list = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-chains-\(UUID().uuidString)").path
            let narrowed = list + ".kept"
            defer {
                try? FileManager.default.removeItem(atPath: list)
                try? FileManager.default.removeItem(atPath: narrowed)
            }

            let scan = try procmem("pointer", "scan", fixture.pidArgument, hex(target), "--depth", "2", "--max-offset", "0x100", "--save", list)
            #expect(scan.status == 0, "\(scan.stderr)")
            for chain in [two, fromS2, fromS3] { #expect(scan.lines.contains(chain), "\(chain) missing: \(scan.lines)") }
            // Same length: the last offsets compare first (+0x4 before +0x8), then the bases.
            let order = [fromS2, fromS3, two].compactMap { scan.lines.firstIndex(of: $0) }
            #expect(order.count == 3 && order == order.sorted(), "offsets from the last hop back, then base: \(scan.lines)")
            let saved = try String(contentsOfFile: list, encoding: .utf8)
            #expect(saved.hasPrefix("# procmem pointer chains\n# format: 64-bit little endian\n# target: \(hex(target))\n"))
            #expect(saved.split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init) == scan.lines)

            let truncated = try procmem("pointer", "scan", fixture.pidArgument, hex(target), "--depth", "2", "--max-offset", "0x100",
                                        "--max-results", "1", "--json")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(truncated.stdout)) as? [String: Any])
            #expect(object["truncated"] as? Bool == true)
            #expect((object["chains"] as? [Any])?.count == 1)
            #expect(object["pointerSize"] as? Int == 8)
            #expect(truncated.stderr.contains("truncated at --max-results 1"), "\(truncated.stderr)")

            // Break the chain through A; the two through B still lead to the target.
            try fixture.storePointer(0, at: s1)
            let byTarget = try procmem("pointer", "rescan", fixture.pidArgument, list, "--target", hex(target), "--save", narrowed)
            #expect(byTarget.status == 0, "\(byTarget.stderr)")
            #expect(!byTarget.lines.contains(two))
            #expect(byTarget.lines.contains(fromS2) && byTarget.lines.contains(fromS3), "\(byTarget.lines)")
            #expect(byTarget.stderr.contains("kept \(byTarget.lines.count) of \(scan.lines.count) chains"), "\(byTarget.stderr)")
            let byValue = try procmem("pointer", "rescan", fixture.pidArgument, narrowed, "--value", "0xdeadbeef", "--as", "u32", "--json")
            let kept = try #require(try JSONSerialization.jsonObject(with: Data(byValue.stdout)) as? [String: Any])
            #expect(kept["chains"] as? [String] == byTarget.lines)
            #expect(try procmem("pointer", "rescan", fixture.pidArgument, list).status == 64, "needs --target or --value")
            #expect(try procmem("pointer", "scan", fixture.pidArgument, hex(target), "--pointer-size", "2").status == 64)
        }
    }

    @Test("watch prints a change made by the fixture with old and new value, and stops on SIGINT with status 0")
    func watch() throws {
        try withFixture { fixture in
            let address = try fixture.layout.value("u32")
            let watch = try BackgroundProcmem(["watch", fixture.pidArgument, hex(address), "--as", "u32", "--interval", "20ms"])
            let initial = try #require(watch.nextLine())
            #expect(initial.hasSuffix(" \(hex(address)): 3735928559 (initial)"), "\(initial)")
            #expect(initial.hasSuffix("Z \(hex(address)): 3735928559 (initial)"))
            try fixture.ok("write \(address) 2a000000")
            let change = try #require(watch.nextLine())
            #expect(change.hasSuffix(" \(hex(address)): 3735928559 -> 42"), "\(change)")
            #expect(watch.interrupt() == 0)
            #expect(watch.stderr.contains("watch stopped after"))
            #expect(watch.stderr.contains("1 change"))
        }
    }

    @Test("freeze keeps a value that the fixture overwrites, and stops on SIGINT with status 0")
    func freeze() throws {
        try withFixture { fixture in
            let address = try fixture.layout.value("u32")
            let freeze = try BackgroundProcmem(["freeze", fixture.pidArgument, hex(address), "7", "--as", "u32", "--interval", "10ms"])
            let first = try #require(freeze.nextLine())
            #expect(first.hasSuffix(" \(hex(address)): 7 (was 3735928559)"), "\(first)")
            #expect(try fixture.selfReadHex(address, 4) == "07000000")
            try fixture.ok("write \(address) 2a000000")
            let restored = try #require(freeze.nextLine())
            #expect(restored.hasSuffix(": 7 (was 42)"), "\(restored)")
            var value = ""
            for _ in 0..<1000 {
                value = try fixture.selfReadHex(address, 4)
                if value == "07000000" { break }
                usleep(10_000)
            }
            #expect(value == "07000000")
            #expect(freeze.interrupt() == 0)
            #expect(freeze.stderr.contains("freeze stopped after"))

            let again = try BackgroundProcmem(["freeze", fixture.pidArgument, hex(address), "7", "--as", "u32"])
            #expect(again.nextLine()?.hasSuffix(" \(hex(address)): 7 (already held)") == true)
            #expect(again.interrupt() == 0)
        }
    }

    @Test("watch and freeze take several entries, each with its own type and value, pointer chains included")
    func severalEntries() throws {
        try withFixture { fixture in
            let u32 = try fixture.layout.value("u32")
            let u8 = try fixture.layout.value("u8")
            let a = try fixture.mapPage()
            try fixture.storePointer(u32 - 8, at: a)
            let freeze = try BackgroundProcmem(["freeze", fixture.pidArgument, "--entry", "u32:\(hex(a)) -> +8=7",
                                                "--entry", "u8:\(hex(u8))=0x11", "--interval", "10ms"])
            let first = try #require(freeze.nextLine())
            let second = try #require(freeze.nextLine())
            #expect(first.hasSuffix(" \(hex(u32)): 7 (was 3735928559)"), "\(first)")
            #expect(second.hasSuffix(" \(hex(u8)): 17 (was 171)"), "\(second)")
            #expect(try fixture.selfReadHex(u32, 4) == "07000000")
            #expect(try fixture.selfReadHex(u8, 1) == "11")
            #expect(freeze.interrupt() == 0)

            let watch = try BackgroundProcmem(["watch", fixture.pidArgument, "--entry", "u8:\(hex(u8))",
                                               "--entry", "i32:\(hex(a)) -> +8", "--interval", "10ms"])
            let lines = [watch.nextLine(), watch.nextLine()].compactMap { $0 }
            #expect(lines.contains { $0.hasSuffix(" \(hex(u8)): 17 (initial)") }, "\(lines)")
            #expect(lines.contains { $0.hasSuffix(" \(hex(u32)): 7 (initial)") }, "\(lines)")
            try fixture.pointerCommand("write \(u32) feffffff")
            let change = try #require(watch.nextLine())
            #expect(change.hasSuffix(" \(hex(u32)): 7 -> -2"), "\(change)")
            #expect(watch.interrupt() == 0)

            let json = try BackgroundProcmem(["watch", fixture.pidArgument, hex(u8), "--as", "u8", "--json", "--interval", "10ms"])
            let line = try #require(json.nextLine())
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(Set(object.keys) == ["time", "address", "old", "new"], "\(line)")
            #expect(object["old"] is NSNull)
            #expect((object["new"] as? NSNumber)?.intValue == 17)
            #expect(object["address"] as? String == hex(u8))
            #expect(json.interrupt() == 0)

            #expect(try procmem("freeze", fixture.pidArgument, "--entry", "u32:\(hex(u32))").status == 64)
            #expect(try procmem("watch", fixture.pidArgument, "--entry", "nosuchtype:\(hex(u32))").status == 64)
        }
    }

    @Test("watch on a process that exits ends with the badState status and a clear message")
    func watchedProcessExits() throws {
        let fixture = try Fixture()
        let address = try fixture.layout.value("u8")
        let watch = try BackgroundProcmem(["watch", fixture.pidArgument, hex(address), "--as", "u8", "--interval", "10ms"])
        #expect(watch.nextLine()?.hasSuffix(": 171 (initial)") == true)
        fixture.stop()
        #expect(watch.finish() == 14)
        #expect(watch.stderr.contains("procmem: badState: the process"), "\(watch.stderr)")
        #expect(watch.stderr.contains("watch stopped after"))
    }

    @Test("pointer resolve in a shell: a [stack]-based chain through auxv's AT_EXECFN leads to the program's path")
    func shellExecfn() throws {
        let shell = try ShellProcess()
        defer { shell.stop() }
        let pointer = try #require(shell.auxv[31], "no AT_EXECFN")
        let slot = try #require(shell.auxvOffset) + 8 + 16 * (try #require(shell.auxvIndex(of: 31)))
        let result = try procmem("pointer", "resolve", String(shell.pid), "[stack]+\(hex(UInt64(slot))) -> +0", "--as", "cstring")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.lines.last == "\(hex(pointer)): \"/bin/sh\"")
    }

    @Test("pointer scan in a shell finds static pointers to its environment array, and each one resolves")
    func shellEnviron() throws {
        let shell = try ShellProcess()
        defer { shell.stop() }
        let auxv = try #require(shell.auxvOffset)
        // The stack holds argc, argv[], NULL, envp[], NULL, then auxv: envp[0] is below the auxv.
        let variables = try #require(try FileHandle(forReadingAtPath: "/proc/\(shell.pid)/environ")?.readToEnd())
        let count = variables.filter { $0 == 0 }.count
        let envp = shell.stackStart + UInt64(auxv) - 8 - 8 * UInt64(count)
        let result = try procmem("pointer", "scan", String(shell.pid), hex(envp), "--depth", "1", "--max-offset", "0")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.lines.isEmpty, "no static pointer to environ's array: \(result.stderr)")
        for line in result.lines {
            // A chain, then `  <module!symbol>` when its base lies inside a symbol (__environ, here).
            let chain = line.components(separatedBy: "  <").first ?? line
            #expect(chain.hasSuffix(" -> +0x0"))
            #expect(line == chain || line.hasSuffix(">"), "\(line)")
            #expect(try procmem("pointer", "resolve", String(shell.pid), chain).lines.last == hex(envp), "\(chain)")
        }
    }
}

/// `/bin/sh -c "read line"`, waiting on stdin: a real program not written here, with its auxv and stack.
private final class ShellProcess {
    let process = Process()
    let stdin = Pipe()
    let pid: Int32
    /// AT_* key → value, from /proc/PID/auxv.
    private(set) var auxv: [UInt64: UInt64] = [:]
    private var auxvBytes: [UInt8] = []
    let stackStart: UInt64
    let stack: [UInt8]

    init() throws {
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "read line"]
        process.standardInput = stdin
        try process.run()
        pid = process.processIdentifier
        // Process.run may return before the child has exec'd: wait (with a generous bound) for the shell.
        let shellPath = URL(fileURLWithPath: "/bin/sh").resolvingSymlinksInPath().path
        for _ in 0..<1000 {
            let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")
            if exe == shellPath, let file = FileHandle(forReadingAtPath: "/proc/\(pid)/auxv"), let data = try? file.readToEnd() {
                try? file.close()
                auxvBytes = [UInt8](data)
                for entry in stride(from: 0, to: auxvBytes.count - 15, by: 16) {
                    auxv[Self.word(auxvBytes, entry)] = Self.word(auxvBytes, entry + 8)
                }
                if auxv[31] != nil { break }
            }
            usleep(10_000)
        }
        let maps = try String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)
        let line = try #require(maps.split(separator: "\n").first { $0.hasSuffix("[stack]") })
        let bounds = line.split(separator: " ")[0].split(separator: "-").compactMap { UInt64($0, radix: 16) }
        let mem = try #require(FileHandle(forReadingAtPath: "/proc/\(pid)/mem"))
        try mem.seek(toOffset: bounds[0])
        stack = [UInt8](try mem.read(upToCount: Int(bounds[1] - bounds[0])) ?? Data())
        try mem.close()
        stackStart = bounds[0]
    }

    /// Where the auxv vector lies in the stack (its first 64 bytes matched), as an offset from the stack's start.
    var auxvOffset: Int? {
        let prefix = Array(auxvBytes.prefix(64))
        guard prefix.count == 64 else { return nil }
        return stride(from: 0, to: stack.count - 63, by: 8).first { Array(stack[$0..<($0 + 64)]) == prefix }
    }

    /// The index of `key`'s entry in the auxv vector.
    func auxvIndex(of key: UInt64) -> Int? {
        stride(from: 0, to: auxvBytes.count - 15, by: 16).first { Self.word(auxvBytes, $0) == key }.map { $0 / 16 }
    }

    func stop() {
        try? stdin.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    private static func word(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
        bytes[offset..<(offset + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }
}
