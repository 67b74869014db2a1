import Foundation
import ProcessMemoryTestSupport
import Testing

/// The fixture's memfd and truncated file: page 0 filled with `first`, then 2048 bytes of `first + 1`.
private func truncatedContents(first: UInt8) -> [UInt8] {
    [UInt8](repeating: first, count: 4096) + [UInt8](repeating: first + 1, count: 2048)
}

/// The descriptor number under which `pid` holds the memfd named `name`.
private func memfdDescriptor(pid: String, name: String) throws -> String {
    let entries = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")
    let match = entries.first { entry in
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(entry)")) == "/memfd:\(name) (deleted)"
    }
    return try #require(match, "pid \(pid) holds no memfd named \(name)")
}

private func jsonObject(_ result: RunResult) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(result.stdout))
    return try #require(object as? [String: Any], "not a JSON object: \(result.text)")
}

@Suite("procmem object")
struct ObjectCommandTests {
    @Test("object read of the memfd region prints exactly the object's bytes")
    func readMemfd() throws {
        try withFixture { fixture in
            let memfd = try fixture.layout.region("memfd")
            let raw = try procmem("object", "read", fixture.pidArgument, hex(memfd.address), "0", "6144", "--raw")
            #expect(raw.status == 0)
            #expect(raw.stdout == truncatedContents(first: 0xC0))
            #expect(raw.stderr.isEmpty)
            // REGION only picks the mapping; OFFSET counts from the object's start.
            let inside = try procmem("object", "read", fixture.pidArgument, hex(memfd.address + 5000), "4094", "4", "--raw")
            #expect(inside.stdout == [0xC0, 0xC0, 0xC1, 0xC1])
            let dump = try procmem("object", "read", fixture.pidArgument, hex(memfd.address), "0x17f0", "16")
            #expect(dump.status == 0)
            #expect(dump.lines == ["00000000000017f0: c1c1 c1c1 c1c1 c1c1 c1c1 c1c1 c1c1 c1c1  ................"])
        }
    }

    @Test("a read past the object's end prints nothing and exits with outOfRange (18)")
    func readPastTheEnd() throws {
        try withFixture { fixture in
            let memfd = try fixture.layout.region("memfd")
            for (offset, length) in [("6144", "1"), ("6143", "2"), ("8192", "16")] {
                let result = try procmem("object", "read", fixture.pidArgument, hex(memfd.address), offset, length, "--raw")
                #expect(result.status == 18)
                #expect(result.stdout.isEmpty)
                #expect(result.stderrLines.first?.hasPrefix("procmem: outOfRange: ") == true)
                #expect(result.stderr.contains("size of 6144 bytes"))
            }
            let json = try procmem("object", "read", fixture.pidArgument, hex(memfd.address), "6000", "200", "--json")
            #expect(json.status == 18)
            let object = try jsonObject(json)
            #expect(object["complete"] as? Bool == false)
            #expect(object["read"] as? Int == 0)
            #expect(object["hex"] as? String == "")
            #expect(object["size"] as? Int == 6144)
            let stop = try #require(object["stop"] as? [String: Any])
            #expect(stop["code"] as? String == "outOfRange")
            #expect(stop["exitCode"] as? Int == 18)
            #expect(stop["address"] as? String == "0x1770")
        }
    }

    @Test("--json describes the read")
    func readJSON() throws {
        try withFixture { fixture in
            let file = try fixture.layout.region("truncatedFile")
            let result = try procmem("object", "read", fixture.pidArgument, hex(file.address), "4094", "4", "--json")
            #expect(result.status == 0)
            let object = try jsonObject(result)
            #expect(object["pid"] as? Int == Int(fixture.pidArgument))
            #expect(object["address"] as? String == hex(file.address))
            #expect(object["source"] as? String == "mapFiles")
            #expect(object["kind"] as? String == "file")
            #expect(object["offset"] as? Int == 4094)
            #expect(object["requested"] as? Int == 4)
            #expect(object["read"] as? Int == 4)
            #expect(object["complete"] as? Bool == true)
            #expect(object["hex"] as? String == "b0b0b1b1")
            #expect(object["stop"] is NSNull)
        }
    }

    @Test("the PROT_NONE'd memfd region is still read through its object")
    func readProtNone() throws {
        let fixture = try Fixture()
        defer { fixture.stop() }
        let memfd = try fixture.layout.region("memfd")
        // The reply comes once the protection is in place.
        try fixture.ok("protect \(memfd.address) \(memfd.size) ---")
        let result = try procmem("object", "read", fixture.pidArgument, hex(memfd.address), "4096", "2048", "--raw")
        #expect(result.status == 0)
        #expect(result.stdout == [UInt8](repeating: 0xC1, count: 2048))
    }

    @Test("anonymous memory has no object: wrongType (13) with a hint")
    func anonymousIsWrongType() throws {
        try withFixture { fixture in
            let pattern = try fixture.layout.region("pattern")
            let result = try procmem("object", "read", fixture.pidArgument, hex(pattern.address), "0", "16")
            #expect(result.status == 13)
            #expect(result.stdout.isEmpty)
            #expect(result.stderrLines.first?.hasPrefix("procmem: wrongType: ") == true)
            #expect(result.stderr.contains("no backing object"))
            #expect(result.stderr.contains("; hint: "))
            let info = try procmem("object", "info", fixture.pidArgument, hex(pattern.address))
            #expect(info.status == 13)
        }
    }

    @Test("object info of the memfd region, as text and JSON")
    func infoMemfd() throws {
        try withFixture { fixture in
            let memfd = try fixture.layout.region("memfd")
            let text = try procmem("object", "info", fixture.pidArgument, hex(memfd.address + 4096))
            #expect(text.status == 0)
            #expect(text.lines.contains("object:  memfd procmem-fixture"))
            #expect(text.lines.contains("size:    6144 bytes"))
            #expect(text.lines.contains("seals:   F_SEAL_SEAL"))
            #expect(text.lines.contains("rights:  read"))
            #expect(text.lines.contains("address: \(hex(memfd.address + 4096)) is object offset 0x1000"))

            let result = try procmem("object", "info", fixture.pidArgument, hex(memfd.address + 4096), "--json")
            #expect(result.status == 0)
            let object = try jsonObject(result)
            #expect(object["kind"] as? String == "memfd")
            #expect(object["name"] as? String == "procmem-fixture")
            #expect(object["path"] as? String == "/memfd:procmem-fixture (deleted)")
            #expect(object["size"] as? Int == 6144)
            #expect(object["seals"] as? [String] == ["F_SEAL_SEAL"])
            #expect(object["rights"] as? String == "read")
            #expect(object["device"] as? String == "00:01")
            #expect(object["objectOffset"] as? Int == 4096)
            #expect((object["inode"] as? Int ?? 0) > 0)
            let region = try #require(object["region"] as? [String: Any])
            #expect(region["start"] as? String == hex(memfd.address))
            #expect(region["shared"] as? Bool == true)
        }
    }

    @Test("the truncated file: its path as REGION, and seals null on a filesystem without them")
    func infoTruncatedFile() throws {
        try withFixture { fixture in
            let file = try fixture.layout.region("truncatedFile")
            let path = "/tmp/procmem-fixture-\(fixture.pidArgument).bin"
            let maps = try procmem("maps", fixture.pidArgument, "--json")
            let regions = try #require(try JSONSerialization.jsonObject(with: Data(maps.stdout)) as? [[String: Any]])
            let actualPath = try #require(regions.first { $0["start"] as? String == hex(file.address) }?["path"] as? String)
            let result = try procmem("object", "info", fixture.pidArgument, actualPath, "--json")
            #expect(result.status == 0)
            let object = try jsonObject(result)
            #expect(object["kind"] as? String == "file")
            #expect(object["name"] as? String == actualPath)
            #expect(object["size"] as? Int == 6144)
            if actualPath == path { #expect(object["seals"] is NSNull, "/tmp is ext4 here, which has no seals") }
            let read = try procmem("object", "read", fixture.pidArgument, actualPath, "6140", "4", "--raw")
            #expect(read.stdout == [0xB1, 0xB1, 0xB1, 0xB1])
        }
    }

    @Test("a memfd path /proc/PID/fd/N is an object source for read and info")
    func procFDPath() throws {
        try withFixture { fixture in
            let fd = try memfdDescriptor(pid: fixture.pidArgument, name: "procmem-fixture")
            let path = "/proc/\(fixture.pidArgument)/fd/\(fd)"
            let read = try procmem("object", "read", path, "4090", "10", "--raw")
            #expect(read.status == 0)
            #expect(read.stdout == [UInt8](repeating: 0xC0, count: 6) + [UInt8](repeating: 0xC1, count: 4))
            let past = try procmem("object", "read", path, "6144", "1")
            #expect(past.status == 18)
            let info = try procmem("object", "info", path, "--json")
            #expect(info.status == 0)
            let object = try jsonObject(info)
            #expect(object["pid"] as? Int == Int(fixture.pidArgument))
            #expect(object["source"] as? String == "path")
            #expect(object["kind"] as? String == "memfd")
            #expect(object["size"] as? Int == 6144)
            #expect(object["address"] is NSNull)
        }
    }

    @Test("object write changes the object exactly, and the target sees it through its mapping")
    func writeMemfd() throws {
        try withFixture { fixture in
            let memfd = try fixture.layout.region("memfd")
            let write = try procmem("object", "write", fixture.pidArgument, hex(memfd.address), "6142", "--hex", "dead")
            #expect(write.status == 0)
            #expect(write.lines == ["wrote 2 bytes at object offset 0x17fe"])
            let read = try procmem("read", fixture.pidArgument, hex(memfd.address + 6142), "2", "--raw")
            #expect(read.stdout == [0xDE, 0xAD])
            let past = try procmem("object", "write", fixture.pidArgument, hex(memfd.address), "6143", "--hex", "0102")
            #expect(past.status == 18)
            #expect(past.stdout.isEmpty)
            let unchanged = try procmem("object", "read", fixture.pidArgument, hex(memfd.address), "6142", "2", "--raw")
            #expect(unchanged.stdout == [0xDE, 0xAD])
            let info = try procmem("object", "info", fixture.pidArgument, hex(memfd.address), "--json")
            #expect(try jsonObject(info)["size"] as? Int == 6144)
        }
    }

    @Test("malformed arguments are usage errors (64)")
    func usage() throws {
        try withFixture { fixture in
            let memfd = try fixture.layout.region("memfd")
            for arguments in [
                ["object", "read", fixture.pidArgument, hex(memfd.address), "0"],
                ["object", "read", fixture.pidArgument, hex(memfd.address), "zz", "4"],
                ["object", "read", fixture.pidArgument, hex(memfd.address), "0", "0"],
                ["object", "read", fixture.pidArgument, "[heap", "0", "4"],
                ["object", "info"],
                ["object", "write", fixture.pidArgument, hex(memfd.address), "0", "--hex", "xyz"],
                ["object", "create", "name", "-1"],
            ] {
                let result = try procmem(arguments)
                #expect(result.status == 64, "\(arguments)")
                #expect(result.stdout.isEmpty, "\(arguments)")
            }
        }
    }

    @Test("object create --fill prints the new memfd")
    func create() throws {
        let text = try procmem("object", "create", "procmem-cli", "100", "--fill", "de ad", "--seal-size")
        #expect(text.status == 0)
        #expect(text.lines.first == "memfd procmem-cli: 100 bytes, seals F_SEAL_SHRINK|F_SEAL_GROW")
        #expect(text.lines.last?.hasPrefix("path: /proc/") == true)
        let json = try procmem("object", "create", "procmem-cli", "16", "--json", "--seal-writes")
        #expect(json.status == 0)
        let object = try jsonObject(json)
        #expect(object["name"] as? String == "procmem-cli")
        #expect(object["size"] as? Int == 16)
        #expect(object["seals"] as? [String] == ["F_SEAL_WRITE"])
        #expect((object["path"] as? String)?.hasPrefix("/proc/") == true)
    }

    @Test("object create --hold keeps the memfd readable by others until stdin closes")
    func createHold() throws {
        let process = Process()
        process.executableURL = try Binaries.url("procmem")
        process.arguments = ["object", "create", "procmem-held", "64", "--fill", "5a a5", "--hold", "--json"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let object = try #require(try JSONSerialization.jsonObject(with: line) as? [String: Any])
        let path = try #require(object["path"] as? String)
        #expect(path == "/proc/\(process.processIdentifier)/fd/\(object["fd"] as? Int ?? -1)")
        let read = try procmem("object", "read", path, "60", "4", "--raw")
        #expect(read.status == 0)
        #expect(read.stdout == [0x5A, 0xA5, 0x5A, 0xA5])
        let write = try procmem("object", "write", path, "0", "--hex", "01")
        #expect(write.status == 0)
        #expect(try procmem("object", "read", path, "0", "2", "--raw").stdout == [0x01, 0xA5])
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}
