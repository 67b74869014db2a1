import Foundation
import Glibc
import ProcessMemoryTestTraits
import Testing

/// A small C "game" built with cc for these tests: globals with symbols (`g_world -> world`,
/// `world+0x18 -> health`, `g_counter` counting up, `g_score`, a 1 MiB `.bss` array), linked
/// against `libnosyms.so`, a library stripped of every symbol. It prints its pid and runs until
/// killed (SIGKILL).
enum SymbolGame {
    static let source = """
        #include <stdio.h>
        #include <stdlib.h>
        #include <unistd.h>
        struct world { long a, b, c; int *health; };
        struct world *g_world;
        volatile int g_counter = 0;
        volatile int g_max_seen = 0;
        int g_score = 0x5EED4242;
        char g_big[1 << 20];
        int main(void) {
            int *health = calloc(1, sizeof *health);
            *health = 100;
            g_world = calloc(1, sizeof *g_world);
            g_world->health = health;
            g_big[12345] = 1;
            printf("%d\\n", getpid());
            fflush(stdout);
            for (;;) {
                g_counter++;
                if (*health > g_max_seen) g_max_seen = *health;
                *health -= 1;
                usleep(10000);
            }
        }
        """
    // Nothing exported (hidden visibility) and, once stripped, no .symtab: a mapped module
    // without a single symbol. Linked with --no-as-needed so that it is mapped all the same.
    static let librarySource = "static volatile int touched;\n__attribute__((constructor)) static void start(void) { touched = 1; }\n"

    /// The directory with `game` and `libnosyms.so`, or why they could not be built.
    static let built: Result<String, ToolFailure> = {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-symbol-output-\(getpid())").path
        do {
            try? FileManager.default.removeItem(atPath: directory)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try source.write(toFile: directory + "/game.c", atomically: true, encoding: .utf8)
            try librarySource.write(toFile: directory + "/nosyms.c", atomically: true, encoding: .utf8)
            try run("cc", ["-shared", "-fPIC", "-O1", "-fvisibility=hidden", "-o", directory + "/libnosyms.so", directory + "/nosyms.c"])
            try run("strip", ["--strip-all", directory + "/libnosyms.so"])
            try run("cc", ["-g", "-O0", "-fPIE", "-pie", "-o", directory + "/game", directory + "/game.c",
                           "-Wl,--no-as-needed", "-L" + directory, "-lnosyms", "-Wl,-rpath," + directory])
            return .success(directory)
        } catch let failure as ToolFailure {
            return .failure(failure)
        } catch {
            return .failure(ToolFailure(description: "\(error)"))
        }
    }()

    struct ToolFailure: Error, CustomStringConvertible {
        var description: String
    }

    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(ToolLookup.path(of: tool), "\(tool) is not installed"))
        process.arguments = arguments
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("symbol-game-\(UUID().uuidString).out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try handle.close()
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0 else {
            throw ToolFailure(description: "\(tool) \(arguments.joined(separator: " ")) failed: \(text)")
        }
        return text
    }

    /// A running game; killed with SIGKILL when the body returns.
    final class Running {
        let process = Process()
        let output = Pipe()
        let directory: String
        var pid: String { String(process.processIdentifier) }

        init() throws {
            directory = try built.get()
            process.executableURL = URL(fileURLWithPath: directory + "/game")
            process.standardOutput = output
            process.standardInput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            _ = output.fileHandleForReading.availableData // its pid: main is running, g_world is set
        }

        func kill() {
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        /// The game's load address (its offset-0 mapping) from /proc/PID/maps.
        func loadAddress() throws -> UInt64 {
            let maps = try String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)
            for line in maps.split(separator: "\n") where line.hasSuffix("/game") {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                if fields[2] == "00000000", let start = UInt64(fields[0].split(separator: "-")[0], radix: 16) { return start }
            }
            throw ToolFailure(description: "game is not in its maps")
        }

        /// The run-time address of `symbol`, from nm on the file plus the load address (PIE linked at 0).
        func address(of symbol: String) throws -> UInt64 {
            let nm = try SymbolGame.run("nm", ["--defined-only", directory + "/game"])
            for line in nm.split(separator: "\n") {
                let fields = line.split(separator: " ")
                if fields.count == 3, fields[2] == symbol, let value = UInt64(fields[0], radix: 16) {
                    return try loadAddress() + value
                }
            }
            throw ToolFailure(description: "nm shows no \(symbol)")
        }
    }

    static func with<R>(_ body: (Running) throws -> R) throws -> R {
        let game = try Running()
        defer { game.kill() }
        return try body(game)
    }
}

private func object(_ result: RunResult) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any], "\(result.text) \(result.stderr)")
}

@Suite("Symbols in output, symbol chains in freeze and watch",
       .requiresTool("cc"), .requiresTool("nm"), .requiresTool("strip"))
struct SymbolOutputTests {
    @Test("freeze PID \"game!g_world -> +0x18 -> +0x0\" holds a value the game keeps lowering")
    func freezeThroughSymbolChain() throws {
        try SymbolGame.with { game in
            let chain = "game!g_world -> +0x18 -> +0x0"
            let resolved = try procmem("pointer", "resolve", game.pid, chain, "--json")
            let health = try #require(try object(resolved)["address"] as? String, "\(resolved.stderr)")
            let freeze = try BackgroundProcmem(["freeze", game.pid, chain, "500", "--as", "i32", "--interval", "5ms"])
            let first = try #require(freeze.nextLine())
            #expect(first.contains(" \(health): 500 (was "), "\(first)")
            // The game lowers it every 10 ms, after noting the highest value it saw; freeze writes
            // it back each time. A second write means the game has seen 500 through its own pointer.
            let again = try #require(freeze.nextLine())
            let was = again.split(separator: "(was ").last.flatMap { Int($0.dropLast()) }
            #expect(again.contains(" \(health): 500 (was ") && (was ?? 500) < 500, "\(again)")
            #expect(freeze.interrupt() == 0)
            let seen = try procmem("read", game.pid, "g_max_seen", "--as", "i32", "--no-symbols")
            #expect(seen.lines.first?.hasSuffix(": 500") == true, "\(seen.text) \(seen.stderr)")
            #expect(freeze.stderr.contains("freeze stopped after"))
        }
    }

    @Test("watch PID g_counter --as i32 names the address by nm's symbol and sees it count up")
    func watchSymbol() throws {
        try SymbolGame.with { game in
            let address = hex(try game.address(of: "g_counter"))
            let watch = try BackgroundProcmem(["watch", game.pid, "g_counter", "--as", "i32", "--interval", "20ms"])
            let initial = try #require(watch.nextLine())
            #expect(initial.contains(" \(address) <game!g_counter>: ") && initial.hasSuffix(" (initial)"), "\(initial)")
            let change = try #require(watch.nextLine())
            let numbers = change.split(separator: ": ").last?.split(separator: " -> ").compactMap { Int($0) } ?? []
            #expect(change.contains(" \(address) <game!g_counter>: ") && numbers.count == 2 && numbers[1] > numbers[0], "\(change)")
            #expect(watch.interrupt() == 0)

            let json = try BackgroundProcmem(["watch", game.pid, "g_counter", "--as", "i32", "--json"])
            let line = try #require(json.nextLine())
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(parsed["address"] as? String == address && parsed["symbol"] as? String == "game!g_counter", "\(line)")
            #expect(json.interrupt() == 0)

            let plain = try BackgroundProcmem(["watch", game.pid, "g_counter", "--as", "i32", "--no-symbols"])
            let unnamed = try #require(plain.nextLine())
            #expect(unnamed.contains(" \(address): ") && !unnamed.contains("<"), "\(unnamed)")
            #expect(plain.interrupt() == 0)
        }
    }

    @Test("read: a header names the symbol above the hexdump, --as lines name each value, JSON has \"symbol\"; heap memory gets no name")
    func read() throws {
        try SymbolGame.with { game in
            let scoreAddress = try game.address(of: "g_score")
            let score = hex(scoreAddress)
            let dump = try procmem("read", game.pid, "g_score", "8")
            #expect(dump.status == 0 && dump.lines.first == "\(score) <game!g_score>:", "\(dump.text)")
            #expect(dump.lines.count == 2 && dump.lines[1].contains("4242 ed5e"), "\(dump.text)")
            let typed = try procmem("read", game.pid, "g_score", "2", "--as", "u16", "--hex")
            #expect(typed.lines == ["\(score) <game!g_score>: 0x4242", "\(hex(scoreAddress + 2)) <game!g_score+0x2>: 0x5eed"],
                    "\(typed.text)")
            let json = try object(try procmem("read", game.pid, "g_score+1", "2", "--json"))
            #expect(json["symbol"] as? String == "game!g_score+0x1" && json["address"] as? String == hex(scoreAddress + 1))
            // --as --json: each value names its own symbol.
            let values = try object(try procmem("read", game.pid, "g_score", "2", "--as", "u16", "--json"))
            #expect(values["symbols"] as? [String] == ["game!g_score", "game!g_score+0x2"], "\(values)")
            #expect(values["symbol"] as? String == "game!g_score")
            let heapValues = try object(try procmem("read", game.pid, "game!g_world -> +0x18 -> +0", "1", "--as", "i32", "--json"))
            #expect((heapValues["symbols"] as? [Any])?.first is NSNull, "\(heapValues)")
            let off = try procmem("read", game.pid, "g_score", "8", "--no-symbols")
            #expect(off.status == 0 && off.lines.count == 1 && !off.text.contains("<"), "\(off.text)")
            let offJSON = try object(try procmem("read", game.pid, "g_score", "8", "--json", "--no-symbols"))
            #expect(offJSON["symbol"] == nil && offJSON["address"] as? String == score)
            // The end of the chain is heap memory: no symbol holds it, so no name is made up.
            let heap = try procmem("read", game.pid, "game!g_world -> +0x18 -> +0", "4")
            #expect(heap.status == 0 && heap.lines.count == 1 && !heap.text.contains("<"), "\(heap.text)")
            let heapJSON = try object(try procmem("read", game.pid, "game!g_world -> +0x18 -> +0", "4", "--json"))
            #expect(heapJSON["symbol"] == nil)
        }
    }

    @Test("scan names a match inside a symbol in text and JSON, and not with --no-symbols")
    func scan() throws {
        try SymbolGame.with { game in
            let score = hex(try game.address(of: "g_score"))
            let text = try procmem("scan", game.pid, "0x5EED4242", "--as", "u32")
            #expect(text.status == 0)
            let line = try #require(text.lines.first { $0.hasPrefix(score) }, "\(text.text)")
            #expect(line.hasPrefix("\(score) <game!g_score>: 1592607298  ["), "\(line)")
            let json = try object(try procmem("scan", game.pid, "0x5EED4242", "--as", "u32", "--json"))
            let matches = try #require(json["matches"] as? [[String: Any]])
            let match = try #require(matches.first { $0["address"] as? String == score })
            #expect(match["symbol"] as? String == "game!g_score")
            #expect(match["value"] != nil && match["width"] != nil && match["region"] != nil)
            let off = try procmem("scan", game.pid, "0x5EED4242", "--as", "u32", "--no-symbols")
            #expect(off.lines.contains { $0.hasPrefix("\(score): 1592607298  [") }, "\(off.text)")
            let offJSON = try object(try procmem("scan", game.pid, "0x5EED4242", "--as", "u32", "--json", "--no-symbols"))
            #expect((offJSON["matches"] as? [[String: Any]])?.allSatisfy { $0["symbol"] == nil } == true)
        }
    }

    @Test("pointer scan names each chain's base, pointer resolve its base and end; --no-symbols leaves them out")
    func pointerBases() throws {
        try SymbolGame.with { game in
            let gWorld = try game.address(of: "g_world")
            let resolved = try object(try procmem("pointer", "resolve", game.pid, "game!g_world -> +0x0", "--json"))
            let world = try #require(resolved["address"] as? String)
            #expect(resolved["baseSymbol"] as? String == "game!g_world" && resolved["base"] as? String == hex(gWorld))
            #expect(resolved["addressSymbol"] == nil) // heap
            let text = try procmem("pointer", "resolve", game.pid, "game!g_world -> +0x0")
            #expect(text.lines.first == "base \(hex(gWorld)) <game!g_world> (game!g_world)", "\(text.text)")

            let scan = try procmem("pointer", "scan", game.pid, world, "--depth", "1", "--max-offset", "0")
            #expect(scan.status == 0, "\(scan.stderr)")
            let offset = gWorld - (try game.loadAddress())
            #expect(scan.lines.contains("game+\(hex(offset)) -> +0x0  <game!g_world>"), "\(scan.text)")
            let json = try object(try procmem("pointer", "scan", game.pid, world, "--depth", "1", "--max-offset", "0", "--json"))
            let chains = try #require(json["chains"] as? [[String: Any]])
            let chain = try #require(chains.first { $0["chain"] as? String == "game+\(hex(offset)) -> +0x0" })
            #expect(chain["symbol"] as? String == "game!g_world" && chain["module"] as? String == "game")
            let off = try procmem("pointer", "scan", game.pid, world, "--depth", "1", "--max-offset", "0", "--no-symbols")
            #expect(off.lines.contains("game+\(hex(offset)) -> +0x0"), "\(off.text)")

            // rescan names the kept chains the same way.
            let list = FileManager.default.temporaryDirectory.appendingPathComponent("symbol-chains-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: list) }
            #expect(try procmem("pointer", "scan", game.pid, world, "--depth", "1", "--max-offset", "0", "--save", list).status == 0)
            let rescan = try procmem("pointer", "rescan", game.pid, list, "--target", world)
            #expect(rescan.lines.contains("game+\(hex(offset)) -> +0x0  <game!g_world>"), "\(rescan.text) \(rescan.stderr)")
            let rescanJSON = try object(try procmem("pointer", "rescan", game.pid, list, "--target", world, "--json"))
            let chainList = try #require(rescanJSON["chains"] as? [String])
            let symbols = try #require(rescanJSON["symbols"] as? [Any])
            let position = try #require(chainList.firstIndex(of: "game+\(hex(offset)) -> +0x0"))
            #expect(symbols.count == chainList.count && symbols[position] as? String == "game!g_world")
        }
    }

    @Test("dump --output: the index gives each region's module, and the symbol holding its start where one does")
    func dumpIndex() throws {
        try SymbolGame.with { game in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("symbol-dump-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let dump = try procmem("dump", game.pid, "--output", directory)
            #expect(dump.status == 0, "\(dump.stderr)")
            let index = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/index.json"))) as? [String: Any])
            let regions = try #require(index["regions"] as? [[String: Any]])
            let gameRegions = regions.filter { ($0["path"] as? String)?.hasSuffix("/game") == true }
            #expect(!gameRegions.isEmpty && gameRegions.allSatisfy { $0["module"] as? String == "game" })
            // g_big fills the .bss past the file's last page: the anonymous mapping there is game's
            // and starts inside g_big.
            let big = try game.address(of: "g_big")
            let bss = try #require(regions.first { region in
                guard region["path"] == nil || region["path"] is NSNull, let start = UInt64((region["start"] as? String ?? "").dropFirst(2), radix: 16) else { return false }
                return start >= big && start < big + (1 << 20)
            }, "no anonymous region starts inside g_big")
            let start = try #require(UInt64((bss["start"] as? String ?? "").dropFirst(2), radix: 16))
            #expect(bss["module"] as? String == "game")
            #expect(bss["symbol"] as? String == (start == big ? "game!g_big" : "game!g_big+\(hex(start - big))"), "\(bss)")
            #expect(regions.contains { ($0["path"] as? String) == "[heap]" && $0["module"] == nil && $0["symbol"] == nil })

            let plain = directory + "-plain"
            defer { try? FileManager.default.removeItem(atPath: plain) }
            let off = try procmem("dump", game.pid, "--output", plain, "--no-symbols")
            #expect(off.status == 0, "\(off.stderr)")
            let offIndex = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: plain + "/index.json"))) as? [String: Any])
            #expect((offIndex["regions"] as? [[String: Any]])?.allSatisfy { $0["module"] == nil && $0["symbol"] == nil } == true)
        }
    }

    @Test("an unknown name lists the modules searched and those without symbols; the status stays notFound's (16)")
    func unknownSymbol() throws {
        try SymbolGame.with { game in
            let result = try procmem("read", game.pid, "no_such_symbol", "4")
            #expect(result.status == 16)
            #expect(result.stderrLines.count == 1, "\(result.stderr)")
            #expect(result.stderr.contains("notFound: cannot resolve 'no_such_symbol'"), "\(result.stderr)")
            let searched = try #require(result.stderr.split(separator: "(searched: ").last?.split(separator: ")").first, "\(result.stderr)")
            let modules = Set(searched.split(separator: ", ").map(String.init))
            #expect(modules.isSuperset(of: ["game", "libnosyms.so", "libc.so.6"]), "\(result.stderr)")
            #expect(result.stderr.contains("without symbols: libnosyms.so (no .symtab or .dynsym)"), "\(result.stderr)")
            let inModule = try procmem("read", game.pid, "libc.so.6!no_such_symbol", "4")
            #expect(inModule.status == 16 && inModule.stderr.contains("no symbol 'no_such_symbol' in libc.so.6 (searched: libc.so.6)"), "\(inModule.stderr)")
            let chain = try procmem("watch", game.pid, "game!no_such -> +8", "--as", "u32")
            #expect(chain.status == 16 && chain.stderr.contains("no symbol 'no_such' in game"), "\(chain.stderr)")
        }
    }
}
