import Dispatch
import Foundation
import Synchronization
import Glibc
import Testing
import ProcessMemoryCore
import ProcessMemorySymbols

/// A C program built here with cc in every variant (with and without -g, stripped and not, PIE and
/// not, a separate debug file by debuglink and by build ID), run, and its symbols compared with
/// nm, readelf and gdb, and with the values in its memory.
@Suite(.enabled(if: Tools.haveCompiler, "cc, strip and objcopy are needed to build the test programs"),
       .enabled(if: Tools.haveBinutils, "nm and readelf are the references the symbols are compared with"))
struct CProgramSymbolTests {
    /// Runs the variant, opens a handle and a symbolizer on it.
    func withProgram<R>(_ variant: String, options: SymbolizerOptions = SymbolizerOptions(),
                        _ body: (String, ProcessHandle, Symbolizer) throws -> R) throws -> R {
        let path = try TestPrograms.path(variant)
        let program = try RunningProgram(path)
        defer { program.stop() }
        let handle = try ProcessHandle(pid: program.pid)
        defer { handle.close() }
        return try body(path, handle, try Symbolizer(handle: handle, options: options))
    }

    /// The load bias from the map and readelf alone: where the first PT_LOAD's page is mapped minus
    /// its link-time address.
    func independentBias(_ path: String, handle: ProcessHandle) throws -> UInt64 {
        let load = try Tools.firstLoad(path)
        let map = try handle.memoryMap()
        let region = try #require(map.regions.first { $0.path == path && $0.offset == load.offset & ~0xfff })
        return region.start - (load.vaddr - (load.offset - region.offset))
    }

    @Test("Unstripped builds: the table equals nm's, addresses equal nm's plus the bias, values read back",
          arguments: ["pie-g", "nopie", "nopie-g"])
    func unstripped(variant: String) throws {
        try withProgram(variant) { path, handle, symbolizer in
            let module = try symbolizer.loaded("prog")
            let ours = Set(module.table.symbols.map { NamedValue(name: $0.name, value: $0.value) })
            let nm = try Tools.nm([path])
            #expect(ours.subtracting(nm).isEmpty && nm.subtracting(ours).isEmpty,
                    "only ours: \(ours.subtracting(nm).sorted { $0.name < $1.name }), only nm: \(nm.subtracting(ours).sorted { $0.name < $1.name })")
            let bias = try independentBias(path, handle: handle)
            #expect(module.loadBias == bias)
            if variant.hasPrefix("nopie") { #expect(bias == 0, "a non-PIE executable runs where it was linked") }
            let compute = try #require(nm.first { $0.name == "compute" })
            #expect(try symbolizer.address(of: "compute") == compute.value + bias)
            #expect(try symbolizer.address(of: "prog!compute+0x4") == compute.value + bias + 4)
            // The values in memory: g_world = 42, s_counter = 7 (a local symbol, only in .symtab).
            #expect(try handle.readInt32(at: symbolizer.address(of: "g_world")) == 42)
            #expect(try handle.readInt32(at: symbolizer.address(of: "s_counter")) == 7)
            let named = try #require(symbolizer.name(for: compute.value + bias + 3))
            #expect(named.description == "<prog!compute+0x3>")
            #expect(named.isInsideSymbol)
        }
    }

    @Test("Stripped builds: the table equals nm -D's; names only in .symtab are not found, and the error says where it looked",
          arguments: ["pie-stripped", "nopie-stripped", "rdynamic-stripped"])
    func stripped(variant: String) throws {
        try withProgram(variant) { path, handle, symbolizer in
            let module = try symbolizer.loaded("prog")
            let ours = Set(module.table.symbols.map { NamedValue(name: $0.name, value: $0.value) })
            let nm = try Tools.nm(["-D", path])
            #expect(ours.subtracting(nm).isEmpty && nm.subtracting(ours).isEmpty,
                    "only ours: \(ours.subtracting(nm).sorted { $0.name < $1.name }), only nm -D: \(nm.subtracting(ours).sorted { $0.name < $1.name })")
            #expect(module.table.symbols.allSatisfy { $0.source == .dynsym })
            if variant == "rdynamic-stripped" {
                // -rdynamic exports every global: g_world survives stripping, s_counter does not.
                #expect(try handle.readInt32(at: symbolizer.address(of: "prog!g_world")) == 42)
            }
            if let error = symbolError({ () throws(SymbolError) in try symbolizer.address(of: "s_counter") }) {
                #expect(error.code == .symbolNotFound)
                #expect(error.searchedModules.contains("prog") && error.searchedModules.contains("libc.so.6"))
                #expect(error.message.contains("searched:"))
            }
        }
    }

    @Test("A module with no symbols at all is named in the not-found error")
    func moduleWithoutSymbols() throws {
        // libempty.so, stripped, exports only empty_anchor; ask it for something else.
        try withProgram("pie-g") { _, _, symbolizer in
            let empty = try symbolizer.loaded("libempty.so")
            #expect(empty.table.symbols.map(\.name) == ["empty_anchor"])
            if let error = symbolError({ () throws(SymbolError) in try symbolizer.address(of: "libempty!hidden_helper") }) {
                #expect(error.code == .symbolNotFound)
                #expect(error.searchedModules == ["libempty.so"])
            }
        }
    }

    @Test("The same global in the executable and a library is ambiguous; MODULE! picks one")
    func ambiguous() throws {
        try withProgram("pie-g") { (_, handle, symbolizer) throws in
            if let error = symbolError({ () throws(SymbolError) in try symbolizer.address(of: "dup_symbol") }) {
                #expect(error.code == .ambiguousSymbol)
                #expect(error.candidates.count == 2)
                #expect(error.candidates.contains { $0.hasPrefix("prog!dup_symbol") })
                #expect(error.candidates.contains { $0.hasPrefix("libdup.so!dup_symbol") })
            }
            #expect(try handle.readInt32(at: symbolizer.address(of: "prog!dup_symbol")) == 1)
            #expect(try handle.readInt32(at: symbolizer.address(of: "libdup!dup_symbol")) == 2)
            #expect(symbolError({ () throws(SymbolError) in try symbolizer.address(of: "nosuchmodule!main") })?.code == .moduleNotFound)
        }
    }

    @Test("A stripped executable's symbols come from its .gnu_debuglink file, and only when the CRC matches")
    func debugLink() throws {
        let path = try TestPrograms.path("debuglink")
        let debugPath = (path as NSString).deletingLastPathComponent + "/prog.debug"
        try withProgram("debuglink") { _, handle, symbolizer in
            let module = try symbolizer.loaded("prog")
            #expect(module.debugFile == debugPath)
            #expect(try handle.readInt32(at: symbolizer.address(of: "s_counter")) == 7)
            #expect(module.table.symbols(named: "s_counter").first?.source == .debugFile)
        }
        // The same program with a debug file whose bytes changed: the CRC no longer matches.
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-debuglink-\(getpid())").path
        try? FileManager.default.removeItem(atPath: copy)
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: copy) }
        try FileManager.default.copyItem(atPath: path, toPath: copy + "/prog")
        var debug = try Data(contentsOf: URL(fileURLWithPath: debugPath))
        debug.append(0)
        try debug.write(to: URL(fileURLWithPath: copy + "/prog.debug"))
        let program = try RunningProgram(copy + "/prog")
        defer { program.stop() }
        let handle = try ProcessHandle(pid: program.pid)
        defer { handle.close() }
        // A fresh cache entry: the build ID is the same as the good run's, so the options differ.
        let symbolizer = try Symbolizer(handle: handle, options: SymbolizerOptions(debugDirectories: ["/nonexistent-crc-test"]))
        let module = try symbolizer.loaded("prog")
        #expect(module.debugFile == nil)
        #expect(module.notes.contains { $0.contains("CRC") }, "notes: \(module.notes)")
        #expect(throws: SymbolError.self) { try symbolizer.address(of: "s_counter") }
    }

    @Test("A separate debug file is found by build ID under a debug directory")
    func buildID() throws {
        let path = try TestPrograms.path("buildid")
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-debugroot-\(getpid())").path
        try? FileManager.default.removeItem(atPath: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let readelf = try Tools.run("readelf", ["-n", path]).stdout
        let line = try #require(readelf.split(separator: "\n").first { $0.contains("Build ID:") })
        let id = try #require(line.split(separator: " ").last.map(String.init))
        let directory = "\(root)/.build-id/\(id.prefix(2))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: (path as NSString).deletingLastPathComponent + "/prog.debug",
                                         toPath: "\(directory)/\(id.dropFirst(2)).debug")
        try withProgram("buildid", options: SymbolizerOptions(debugDirectories: [root])) { _, handle, symbolizer in
            let module = try symbolizer.loaded("prog")
            #expect(module.buildIDHex == id)
            #expect(module.debugFile == "\(directory)/\(id.dropFirst(2)).debug")
            #expect(try handle.readInt32(at: symbolizer.address(of: "s_counter")) == 7)
        }
    }

    @Test("gdb's info symbol names the same symbol and offset",
          .enabled(if: Tools.path("gdb") != nil, "gdb is not installed"), arguments: ["pie-g", "nopie"])
    func gdbAgrees(variant: String) throws {
        try withProgram(variant) { path, handle, symbolizer in
            let compute = try symbolizer.address(of: "compute")
            let gWorld = try symbolizer.address(of: "g_world")
            for address in [compute + 5, gWorld + 2] {
                let ours = try #require(symbolizer.name(for: address))
                let gdb = try Tools.run("gdb", ["-batch", "-nx", "-p", String(handle.pid), "-ex", "info symbol 0x\(String(address, radix: 16))"])
                let line = try #require(gdb.stdout.split(separator: "\n").first { $0.contains(" in section ") }, "gdb said: \(gdb.stdout) \(gdb.stderr)")
                // "compute + 5 in section .text" (of /path when not the main program)
                let words = line.split(separator: " ")
                let offset = words.count > 2 && words[1] == "+" ? UInt64(words[2]) ?? 0 : 0
                #expect(String(words[0]) == ours.symbol?.name && offset == ours.offset, "gdb: \(line); ours: \(ours)")
            }
        }
    }

    @Test("Lookups by address and by name go on while another thread refreshes the module list")
    func refreshRace() throws {
        try withProgram("pie-g") { (_, _, symbolizer) throws in
            let compute = try symbolizer.address(of: "compute")
            let names = Counter()
            DispatchQueue.concurrentPerform(iterations: 4) { worker in
                for _ in 0..<300 {
                    if worker == 0 {
                        try? symbolizer.refresh()
                    } else if symbolizer.name(for: compute + 1)?.symbol?.name == "compute",
                              (try? symbolizer.address(of: "prog!compute")) == compute {
                        names.value.withLock { $0 += 1 }
                    }
                }
            }
            // Every lookup named the same symbol: a refresh keeps the tables of modules that stayed.
            #expect(names.value.withLock { $0 } == 900)
        }
    }

    /// The error `body` throws; records an issue and returns nil when it succeeds.
    func symbolError(_ body: () throws(SymbolError) -> UInt64, sourceLocation: SourceLocation = #_sourceLocation) -> SymbolError? {
        do {
            let address = try body()
            Issue.record("resolved to 0x\(String(address, radix: 16)) where an error was expected", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    @Test("Tables are cached by build ID: a second symbolizer on another process reuses libc's")
    func cacheByBuildID() throws {
        try withProgram("nopie") { _, _, first in
            try withProgram("nopie") { _, _, second in
                let a = try first.loaded("libc.so.6")
                let b = try second.loaded("libc.so.6")
                #expect(a.buildID != nil && a.buildID == b.buildID)
                #expect(a.table.symbols.count == b.table.symbols.count)
                // Same bytes at different load addresses (ASLR): the biases differ, the table is shared.
                #expect(try first.address(of: "libc.so.6!malloc") - a.loadBias == (try second.address(of: "libc.so.6!malloc")) - b.loadBias)
            }
        }
    }
}

/// MiniDebugInfo made the way Fedora makes it: a stripped executable whose `.gnu_debugdata` is an
/// xz-compressed ELF with the local symbols `.dynsym` lacks.
@Suite(.enabled(if: Tools.haveCompiler && Tools.haveBinutils, "cc, objcopy, strip and nm build and check the program"),
       .enabled(if: Tools.path("xz") != nil, "xz makes the .gnu_debugdata section"),
       .enabled(if: MiniDebugInfoProbe.available, "liblzma.so.5 is not installed: MiniDebugInfo cannot be read"))
struct MiniDebugInfoTests {
    @Test("A stripped executable's .gnu_debugdata supplies compute and s_counter")
    func miniDebugInfo() throws {
        let source = try TestPrograms.path("pie-g")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-minidebug-\(getpid())").path
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let exe = directory + "/prog"
        try FileManager.default.copyItem(atPath: source, toPath: exe)
        try "compute\ns_counter\n".write(toFile: directory + "/keep", atomically: true, encoding: .utf8)
        for step in [["objcopy", "--only-keep-debug", exe, exe + ".dbg"],
                     ["objcopy", "-S", "--remove-section", ".comment", "--keep-symbols=\(directory)/keep", exe + ".dbg", directory + "/mini"],
                     ["strip", "--strip-all", exe],
                     ["xz", "-k", directory + "/mini"],
                     ["objcopy", "--add-section", ".gnu_debugdata=\(directory)/mini.xz", exe]] {
            let output = try Tools.run(step[0], Array(step.dropFirst()))
            try #require(output.status == 0, "\(step.joined(separator: " ")): \(output.stderr)")
        }
        #expect(try Tools.nm([exe]).isEmpty, "the executable still has a .symtab")
        let program = try RunningProgram(exe)
        defer { program.stop() }
        let handle = try ProcessHandle(pid: program.pid)
        defer { handle.close() }
        let symbolizer = try Symbolizer(handle: handle, options: SymbolizerOptions(useSeparateDebugFiles: false))
        let module = try symbolizer.loaded("prog")
        #expect(module.table.symbols(named: "s_counter").first?.source == .miniDebugInfo)
        #expect(try handle.readInt32(at: symbolizer.address(of: "prog!s_counter")) == 7)
        let compute = try #require(try Tools.nm([source]).first { $0.name == "compute" })
        #expect(try symbolizer.address(of: "compute") == compute.value + module.loadBias)
    }
}

enum MiniDebugInfoProbe {
    static var available: Bool {
        guard let library = dlopen("liblzma.so.5", RTLD_NOW | RTLD_LOCAL) else { return false }
        dlclose(library)
        return true
    }
}

final class Counter: Sendable {
    let value = Mutex(0)
}
