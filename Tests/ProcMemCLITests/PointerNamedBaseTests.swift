import Foundation
import Glibc
import ProcessMemoryTestSupport
import ProcessMemoryTestTraits
import Testing

/// Pointer chains whose base is a named global rank before those from an anonymous `.bss` word.
@Suite("pointer scan: named bases first", .requiresTool("gcc"), .requiresTool("objcopy"), .requiresTool("nm"))
struct PointerNamedBaseTests {
    /// Runs `tool` with `arguments`; returns its stdout, requiring exit status 0.
    func run(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(ToolLookup.path(of: tool)))
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "\(tool) \(arguments) failed")
        return String(decoding: data, as: UTF8.self)
    }

    @Test("Two globals point at the same World: the chain from the named one comes first, with its name; the stripped one is anonymous")
    func namedFirst() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-named-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = directory.appendingPathComponent("named.c")
        try """
            #include <stdio.h>
            #include <stdlib.h>
            #include <unistd.h>
            struct Player { int health; };
            struct World { long pad[3]; struct Player *player; };
            struct World *slot_a;
            struct World *slot_b;
            int main(void) {
                struct World *w = calloc(1, sizeof *w);
                w->player = calloc(1, sizeof *w->player);
                w->player->health = 100;
                slot_a = w;
                slot_b = w;
                printf("%p\\n", (void *)&w->player->health);
                fflush(stdout);
                for (;;) pause();
            }
            """.write(to: source, atomically: true, encoding: .utf8)
        let built = directory.appendingPathComponent("built").path
        _ = try run("gcc", ["-O0", "-o", built, source.path])
        // Strip the global at the lower address: the search's tie order puts its chain first, so
        // only the naming rule can put the other one before it.
        var addresses: [String: UInt64] = [:]
        for line in try run("nm", [built]).split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 3, fields[2].hasPrefix("slot_") { addresses[String(fields[2])] = UInt64(fields[0], radix: 16) }
        }
        let a = try #require(addresses["slot_a"])
        let b = try #require(addresses["slot_b"])
        let (stripped, kept) = a < b ? ("slot_a", "slot_b") : ("slot_b", "slot_a")
        let program = directory.appendingPathComponent("named").path
        _ = try run("objcopy", ["--strip-symbol=\(stripped)", built, program])

        let child = try ChildProcess([program])
        defer { child.kill(); child.reap() }
        let target = try child.readLine().trimmingCharacters(in: .whitespacesAndNewlines)
        let pid = String(child.pid)
        let scan = try procmem("pointer", "scan", pid, target, "--depth", "2", "--max-offset", "0x40", "--module", "named")
        #expect(scan.status == 0, "\(scan.stderr)")
        let namedOffset = hex(min(a, b) == a ? b : a)
        let anonymousOffset = hex(min(a, b))
        let namedChain = "named+\(namedOffset) -> +0x18 -> +0x0  <named!\(kept)>"
        let anonymousChain = "named+\(anonymousOffset) -> +0x18 -> +0x0"
        let namedAt = try #require(scan.lines.firstIndex(of: namedChain), "\(scan.lines)")
        let anonymousAt = try #require(scan.lines.firstIndex(of: anonymousChain), "\(scan.lines)")
        #expect(namedAt == 0 && namedAt < anonymousAt, "\(scan.lines)")
        // --json names the base too.
        let json = try procmem("pointer", "scan", pid, target, "--depth", "2", "--max-offset", "0x40", "--module", "named", "--json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout)) as? [String: Any])
        let first = try #require((object["chains"] as? [[String: Any]])?.first)
        #expect(first["symbol"] as? String == "named!\(kept)", "\(first)")
        // Without symbols, the order is the search's: the lower address first.
        let plain = try procmem("pointer", "scan", pid, target, "--depth", "2", "--max-offset", "0x40", "--module", "named", "--no-symbols")
        #expect(plain.lines.first == anonymousChain, "\(plain.lines)")
    }
}
