import Foundation
import ProcessMemoryTestSupport
import Testing

@Suite("procmem errors and exit codes")
struct ErrorTests {
    /// A PID with no process behind it.
    static func unusedPID() throws -> Int32 {
        let maxText = (try? String(contentsOfFile: "/proc/sys/kernel/pid_max", encoding: .utf8)) ?? "32768"
        let pidMax = Int32(maxText.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 32768
        let candidate = stride(from: pidMax - 1, to: 300, by: -1).first { !FileManager.default.fileExists(atPath: "/proc/\($0)") }
        return try #require(candidate)
    }

    @Test("an unknown PID exits with notFound (16) and one error line")
    func unknownPID() throws {
        let pid = try Self.unusedPID()
        let result = try procmem("read", String(pid), "0x1000", "4")
        #expect(result.status == 16)
        #expect(result.stdout.isEmpty)
        let lines = result.stderrLines
        #expect(lines.first?.hasPrefix("procmem: notFound: ") == true)
        #expect(lines.first?.contains("pid \(pid)") == true)
        // One line: the condition, the pid and address, and what to do next.
        #expect(lines.count == 1)
        #expect(lines.first?.contains("; hint: ") == true)
    }

    @Test("a malformed address is a usage error (64) with a clear message", arguments: ["0xZZ", "12abc", "[heap", "[heap]+zz"])
    func malformedAddress(_ address: String) throws {
        try withFixture { fixture in
            let result = try procmem("read", fixture.pidArgument, address, "4")
            #expect(result.status == 64)
            #expect(result.stdout.isEmpty)
            #expect(result.stderr.contains("invalid ADDRESS '\(address)'"))
        }
    }

    @Test("an unknown region name exits with notFound (16)")
    func unknownRegion() throws {
        try withFixture { fixture in
            let result = try procmem("read", fixture.pidArgument, "no-such-library.so+0x10", "4")
            #expect(result.status == 16)
            #expect(result.stderr.contains("no region named no-such-library.so"))
            #expect(result.stderr.contains("procmem maps \(fixture.pidArgument)"))
        }
    }

    @Test("protect mode stops at PROT_NONE with protectionFailure (17); [vdso] writes are refused (11)")
    func protections() throws {
        try withFixture { fixture in
            let protNone = try fixture.layout.region("protNone")
            let page = UInt64(fixture.layout.pageSize)
            let read = try procmem("read", fixture.pidArgument, hex(protNone.address + page), "16", "--mode", "protect")
            #expect(read.status == 17)
            let debugger = try procmem("read", fixture.pidArgument, hex(protNone.address + page), "16", "--raw")
            #expect(debugger.stdout == [UInt8](repeating: 0x16, count: 16))
            let vdso = try procmem("write", fixture.pidArgument, "[vdso]", "--hex", "00")
            #expect(vdso.status == 11)
        }
    }

    @Test("procmem --help lists every exit code")
    func helpListsExitCodes() throws {
        let result = try procmem("--help")
        #expect(result.status == 0)
        let expected: [(Int, String)] = [
            (0, "success"), (1, "partial"), (10, "invalidArguments"), (11, "accessDenied"), (12, "badHandle"),
            (13, "wrongType"), (14, "badState"), (15, "execed"), (16, "notFound"), (17, "protectionFailure"),
            (18, "outOfRange"), (19, "noMemory"), (20, "notSupported"), (21, "io"), (22, "invalidBuffer"), (64, "usage"),
        ]
        for (status, name) in expected {
            let row = result.lines.first { line in
                let words = line.split(separator: " ")
                return words.count >= 2 && words[0] == "\(status)" && words[1] == name
            }
            #expect(row != nil, "no row for \(status) \(name)")
        }
    }

    @Test("--version prints the version; a mistyped subcommand names the closest one (64)")
    func versionAndSuggestion() throws {
        let version = try procmem("--version")
        #expect(version.status == 0)
        #expect(version.lines.count == 1 && version.lines.first?.first?.isNumber == true, "\(version.text)")
        let typo = try procmem("mpas", "1")
        #expect(typo.status == 64)
        #expect(typo.stderr.contains("did you mean 'maps'?"), "\(typo.stderr)")
        let nested = try procmem("pointer", "reslove", "1", "0x10")
        #expect(nested.status == 64)
        #expect(nested.stderr.contains("did you mean 'resolve'?"), "\(nested.stderr)")
    }
}
