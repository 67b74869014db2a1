import Foundation
import Glibc
import Testing
import ProcessMemoryCore
import ProcessMemorySymbols

/// Programs not written here: python3 and bash as installed, their libc and ld.so, and the vDSO.
/// The symbols are compared with nm -D and readelf on the same files.
@Suite(.enabled(if: Tools.haveBinutils, "nm and readelf are the references the symbols are compared with"))
struct SystemProgramSymbolTests {
    /// The real executable behind a command name (resolving pyenv-style shims through /usr/bin).
    static func executable(_ name: String) -> String? {
        for candidate in ["/usr/bin/\(name)", "/bin/\(name)"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return (try? FileManager.default.destinationOfSymbolicLink(atPath: candidate)).map {
                $0.hasPrefix("/") ? $0 : "/usr/bin/" + $0
            } ?? candidate
        }
        return nil
    }

    /// Every module of `program` (running) whose file nm can read: our table's symbols equal
    /// nm -D's, or nm's when the file still has a .symtab.
    func compareEveryModule(_ program: RunningProgram) throws -> Int {
        let handle = try ProcessHandle(pid: program.pid)
        defer { handle.close() }
        let symbolizer = try Symbolizer(handle: handle, options: SymbolizerOptions(useSeparateDebugFiles: false))
        var compared = 0
        for module in symbolizer.modules where !module.isVDSO {
            let path = try #require(module.path)
            let loaded = try symbolizer.symbols(of: module)
            let ours = Set(loaded.table.symbols.map { NamedValue(name: $0.name, value: $0.value) })
            var reference = try Tools.nm(["-D", path])
            if Tools.run0("readelf", ["-SW", path]).contains(" .symtab ") { reference.formUnion(try Tools.nm([path])) }
            #expect(ours.subtracting(reference).isEmpty && reference.subtracting(ours).isEmpty,
                    "\(module.name): only ours \(ours.subtracting(reference).prefix(10)), only nm \(reference.subtracting(ours).prefix(10))")
            // Each symbol's run-time address names that symbol again.
            for symbol in loaded.table.symbols.prefix(200) where symbol.size > 0 && symbol.kind != .threadLocal {
                let named = symbolizer.name(for: loaded.address(of: symbol) + symbol.size / 2)
                #expect(named?.symbol?.value == symbol.value, "\(module.name)!\(symbol.name): named \(String(describing: named))")
            }
            compared += 1
        }
        return compared
    }

    @Test("python3: every module's symbols equal nm's, and PyObject_GetAttr is where nm puts it",
          .enabled(if: executable("python3") != nil, "python3 is not installed in /usr/bin"))
    func python() throws {
        let path = try #require(Self.executable("python3"))
        let program = try RunningProgram(path, ["-c", "import sys; print('ready', flush=True); sys.stdin.read()"])
        defer { program.stop() }
        #expect(try compareEveryModule(program) >= 3)
        let handle = try ProcessHandle(pid: program.pid)
        defer { handle.close() }
        let symbolizer = try Symbolizer(handle: handle)
        let address = try symbolizer.address(of: "PyObject_GetAttr")
        let named = try #require(symbolizer.name(for: address + 1))
        #expect(named.symbol?.name == "PyObject_GetAttr" && named.offset == 1)
        // _Py_NoneStruct is an object: its refcount field is readable memory in the process.
        let none = try symbolizer.address(of: "_Py_NoneStruct")
        #expect(try handle.readExactly(from: none, count: 16).count == 16)
    }

    @Test("bash: every module's symbols equal nm's; bash's main and libc's malloc resolve",
          .enabled(if: executable("bash") != nil, "bash is not installed in /usr/bin or /bin"))
    func bash() throws {
        let path = try #require(Self.executable("bash"))
        let program = try RunningProgram(path, ["-c", "echo ready; read line"])
        defer { program.stop() }
        #expect(try compareEveryModule(program) >= 2)
        let handle = try ProcessHandle(pid: program.pid)
        defer { handle.close() }
        let symbolizer = try Symbolizer(handle: handle)
        let libc = try symbolizer.loaded("libc.so.6")
        let libcPath = try #require(libc.module.path)
        let malloc = try #require(try Tools.nm(["-D", libcPath]).first { $0.name == "malloc" })
        #expect(try symbolizer.address(of: "libc.so.6!malloc") == malloc.value + libc.loadBias)
        #expect(try symbolizer.address(of: "libc!malloc+0x10") == malloc.value + libc.loadBias + 16)
        let main = try symbolizer.address(of: "bash!main")
        #expect(symbolizer.name(for: main)?.description == "<bash!main>")
    }

    @Test("The vDSO is read from memory; its symbols equal readelf's on a copy of the same bytes")
    func vdso() throws {
        let program = try RunningProgram("/bin/sh", ["-c", "echo ready; read line"])
        defer { program.stop() }
        let handle = try ProcessHandle(pid: program.pid)
        defer { handle.close() }
        let symbolizer = try Symbolizer(handle: handle)
        let module = try #require(symbolizer.modules.first { $0.isVDSO }, "no [vdso] mapping")
        let loaded = try symbolizer.symbols(of: module)
        let bytes = try handle.readExactly(from: module.start, count: Int(module.end - module.start))
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("vdso-\(getpid()).so")
        try Data(bytes).write(to: copy)
        defer { try? FileManager.default.removeItem(at: copy) }
        let reference = try Tools.nm(["-D", copy.path])
        let ours = Set(loaded.table.symbols.map { NamedValue(name: $0.name, value: $0.value) })
        #expect(!ours.isEmpty && ours == reference, "only ours \(ours.subtracting(reference)), only nm \(reference.subtracting(ours))")
        let clock = try symbolizer.address(of: "[vdso]!__vdso_clock_gettime")
        #expect(module.contains(clock))
        #expect(symbolizer.name(for: clock + 2)?.name.hasSuffix("clock_gettime+0x2") == true)
    }
}

extension Tools {
    /// stdout of a tool, or "" when it cannot run.
    static func run0(_ tool: String, _ arguments: [String]) -> String {
        (try? run(tool, arguments).stdout) ?? ""
    }
}
