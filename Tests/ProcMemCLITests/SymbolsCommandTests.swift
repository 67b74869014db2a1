import Foundation
import Glibc
import Testing

/// `procmem symbols` and `procmem symbolize` on a running bash, checked against nm -D on the same
/// file and against /proc/PID/maps.
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/nm"), "nm (binutils) is the reference"),
       .enabled(if: FileManager.default.isExecutableFile(atPath: "/bin/bash"), "bash is the program whose symbols are listed"))
struct SymbolsCommandTests {
    /// `bash -c 'echo ready; read line'`, running until its stdin closes.
    final class Bash {
        let process = Process()
        let input = Pipe()
        let output = Pipe()
        init() throws {
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = ["-c", "echo ready; read line"]
            process.standardInput = input
            process.standardOutput = output
            try process.run()
            _ = output.fileHandleForReading.availableData // "ready": bash and its libraries are mapped
        }
        var pid: String { String(process.processIdentifier) }
        func stop() {
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }
    }

    func withBash<R>(_ body: (Bash) throws -> R) throws -> R {
        let bash = try Bash()
        defer { bash.stop() }
        return try body(bash)
    }

    /// nm -D's defined symbols of `path`: name → value (versions dropped).
    func nmDynamic(_ path: String) throws -> [String: UInt64] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nm")
        process.arguments = ["-D", "--defined-only", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        var result: [String: UInt64] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 3, fields[1] != "A", let value = UInt64(fields[0], radix: 16) else { continue }
            result[String(fields[2].split(separator: "@").first ?? fields[2])] = value
        }
        return result
    }

    /// The bash module's path and load address from /proc/PID/maps (its offset-0 mapping).
    func bashMapping(_ pid: String) throws -> (path: String, start: UInt64) {
        let maps = try String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)
        for line in maps.split(separator: "\n") where line.hasSuffix("/bash") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields[2] == "00000000", let start = UInt64(fields[0].split(separator: "-")[0], radix: 16) {
                return (String(fields[5]), start)
            }
        }
        throw CocoaError(.fileReadCorruptFile)
    }

    @Test("symbols --json lists bash's .dynsym exactly as nm -D, moved by the load address in the maps")
    func symbolsMatchNm() throws {
        try withBash { bash in
            let result = try procmem("symbols", bash.pid, "bash!*", "--json")
            #expect(result.status == 0, "\(result.stderr)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any])
            let symbols = try #require(object["symbols"] as? [[String: Any]])
            let (path, start) = try bashMapping(bash.pid)
            let nm = try nmDynamic(path)
            var ours: [String: UInt64] = [:]
            for symbol in symbols {
                let name = try #require(symbol["name"] as? String)
                let address = try #require((symbol["addressValue"] as? NSNumber)?.uint64Value)
                #expect(symbol["module"] as? String == "bash")
                #expect((symbol["address"] as? String) == "0x" + String(address, radix: 16))
                ours[name] = address - start // bash is PIE: its first PT_LOAD is linked at 0
            }
            #expect(!nm.isEmpty)
            #expect(ours == nm, "only ours: \(Set(ours.keys).subtracting(nm.keys).prefix(5)), only nm: \(Set(nm.keys).subtracting(ours.keys).prefix(5))")
            #expect((object["failures"] as? [Any])?.isEmpty == true)
        }
    }

    @Test("symbols prints one row per symbol: address, size, kind, binding, module!name")
    func table() throws {
        try withBash { bash in
            let result = try procmem("symbols", bash.pid, "libc!malloc")
            #expect(result.status == 0, "\(result.stderr)")
            let row = try #require(result.lines.first { $0.hasSuffix(" libc.so.6!malloc") }, "\(result.text)")
            let fields = row.split(separator: " ", omittingEmptySubsequences: true)
            #expect(fields.count == 5 && UInt64(fields[0], radix: 16) != nil && UInt64(fields[1]) ?? 0 > 0)
            #expect(fields[2] == "function" && fields[3] == "global")
            #expect(result.lines.allSatisfy { $0.contains("libc.so.6!") && $0.contains("malloc") })
        }
    }

    @Test("a symbol is an ADDRESS: read PID bash!main+0x10 reads what read PID <nm's address + 0x10> reads")
    func symbolAsAddress() throws {
        try withBash { bash in
            let (path, start) = try bashMapping(bash.pid)
            let main = try #require(try nmDynamic(path)["main"], "bash exports no main") // PIE: add start
            let address = "0x" + String(start + main + 0x10, radix: 16)
            let byNumber = try procmem("read", bash.pid, address, "16", "--raw")
            let byName = try procmem("read", bash.pid, "bash!main+0x10", "16", "--raw")
            let bare = try procmem("read", bash.pid, "main+0x10", "16", "--raw")
            #expect(byNumber.status == 0 && byNumber.stdout.count == 16)
            #expect(byName.status == 0 && byName.stdout == byNumber.stdout, "\(byName.stderr)")
            #expect(bare.status == 0 && bare.stdout == byNumber.stdout, "\(bare.stderr)")
            let unknown = try procmem("read", bash.pid, "no_such_symbol_here", "4")
            #expect(unknown.status == 16 && unknown.stderr.contains("no symbol 'no_such_symbol_here' in any of the"), "\(unknown.stderr)")
        }
    }

    @Test("symbolize names an address as <module!symbol+0x10>, in text and JSON; an unmapped one is '?' and exit 1")
    func symbolize() throws {
        try withBash { bash in
            let (path, start) = try bashMapping(bash.pid)
            let main = try #require(try nmDynamic(path)["main"], "bash exports no main") // PIE: add start
            let address = "0x" + String(start + main + 0x10, radix: 16)
            let text = try procmem("symbolize", bash.pid, address)
            #expect(text.status == 0)
            #expect(text.lines == ["\(address) <bash!main+0x10>"])
            let json = try procmem("symbolize", bash.pid, address, "--json")
            let array = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout)) as? [[String: Any]])
            #expect(array.count == 1)
            #expect(array.first?["symbol"] as? String == "main" && array.first?["module"] as? String == "bash")
            #expect((array.first?["offset"] as? NSNumber)?.intValue == 16 && array.first?["name"] as? String == "<bash!main+0x10>")
            let unmapped = try procmem("symbolize", bash.pid, address, "0x1000")
            #expect(unmapped.status == 1)
            #expect(unmapped.lines == ["\(address) <bash!main+0x10>", "0x1000 ?"])
        }
    }

    @Test("An unknown module is a one-line error with exit status 25; a bad address is a usage error")
    func errors() throws {
        try withBash { bash in
            let missing = try procmem("symbols", bash.pid, "nosuchmodule!x")
            #expect(missing.status == 25)
            #expect(missing.stderrLines.count == 1 && missing.stderr.hasPrefix("procmem: moduleNotFound: "), "\(missing.stderr)")
            let usage = try procmem("symbolize", bash.pid, "0xzz")
            #expect(usage.status == 64)
        }
        let help = try procmem("--help")
        #expect(help.text.contains("23  symbolNotFound") && help.text.contains("24  ambiguousSymbol"))
    }
}
