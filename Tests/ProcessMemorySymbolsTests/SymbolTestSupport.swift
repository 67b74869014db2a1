import Foundation
import Glibc
import Testing
import ProcessMemoryCore
import ProcessMemorySymbols

/// External tools the symbol tests compare against, found on PATH.
enum Tools {
    static func path(_ name: String) -> String? {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for directory in directories where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
            return "\(directory)/\(name)"
        }
        return nil
    }

    static var haveCompiler: Bool { path("cc") != nil && path("strip") != nil && path("objcopy") != nil }
    static var haveBinutils: Bool { path("nm") != nil && path("readelf") != nil }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `tool` with `arguments`, output captured in temporary files (no pipe can fill up).
    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> Output {
        let executable = try #require(path(tool) ?? (tool.hasPrefix("/") ? tool : nil), "\(tool) is not on PATH")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let directory = FileManager.default.temporaryDirectory
        let outURL = directory.appendingPathComponent("tool-\(UUID().uuidString).out")
        let errURL = directory.appendingPathComponent("tool-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        return Output(status: process.terminationStatus,
                      stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }

    /// `nm` output as (name without @version, value) pairs of defined symbols, leaving out absolute
    /// ones (type A) and debugger-only ones (N).
    static func nm(_ arguments: [String]) throws -> Set<NamedValue> {
        let output = try run("nm", ["--defined-only"] + arguments)
        try #require(output.status == 0, "nm \(arguments) failed: \(output.stderr)")
        var result = Set<NamedValue>()
        for line in output.stdout.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count == 3, let value = UInt64(fields[0], radix: 16) else { continue }
            let type = fields[1]
            if type == "A" || type == "a" || type == "N" || type == "n" { continue }
            let name = fields[2].split(separator: "@", maxSplits: 1).first.map(String.init) ?? String(fields[2])
            result.insert(NamedValue(name: name, value: value))
        }
        return result
    }

    /// The first `PT_LOAD`'s `p_offset` and `p_vaddr` from `readelf -lW`.
    static func firstLoad(_ path: String) throws -> (offset: UInt64, vaddr: UInt64) {
        let output = try run("readelf", ["-lW", path])
        for line in output.stdout.split(separator: "\n") where line.trimmingCharacters(in: .whitespaces).hasPrefix("LOAD") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count > 2, let offset = UInt64(fields[1].dropFirst(2), radix: 16), let vaddr = UInt64(fields[2].dropFirst(2), radix: 16) {
                return (offset, vaddr)
            }
        }
        throw ToolError("readelf -lW \(path) shows no LOAD segment")
    }
}

struct ToolError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

struct NamedValue: Hashable, CustomStringConvertible {
    var name: String
    var value: UInt64
    var description: String { "\(name)=0x\(String(value, radix: 16))" }
}

/// A program started with a pipe on its stdin: it runs until the pipe is closed.
final class RunningProgram {
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    var pid: Int32 { process.processIdentifier }

    /// Starts `path` and waits for its first line of output (so it has finished loading).
    init(_ path: String, _ arguments: [String] = [], environment: [String: String]? = nil, waitForLine: Bool = true) throws {
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        if waitForLine {
            var data = Data()
            while !data.contains(UInt8(ascii: "\n")) {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                data.append(chunk)
            }
        }
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
    }
}

/// C programs built once per test run in a temporary directory: `prog.c` linked against
/// `libdup.so` (which also defines `dup_symbol`) and `libempty.so` (no exported symbols, stripped).
enum TestPrograms {
    static let programSource = """
        #include <stdio.h>
        #include <unistd.h>
        int g_world = 42;
        static volatile int s_counter = 7;
        int dup_symbol = 1;
        extern int lib_value(void);
        extern int empty_anchor(void);
        __attribute__((noinline)) int compute(int x) { return x * g_world + s_counter + empty_anchor(); }
        int main(void) {
            printf("%d\\n", compute(3) + lib_value());
            fflush(stdout);
            char c;
            while (read(0, &c, 1) > 0) {}
            return s_counter;
        }
        """
    static let dupSource = "int dup_symbol = 2;\nint lib_value(void) { return dup_symbol; }\n"
    // One exported function that the stripped library still has to keep in .dynsym; nothing else.
    static let emptySource = "__attribute__((visibility(\"hidden\"))) int hidden_helper(void) { return 1; }\nint empty_anchor(void) { return hidden_helper() - 1; }\n"

    /// The variants: name → compiler flags and what happens after linking.
    enum Post { case none, strip, debugLink, buildIDOnly }
    static let variants: [String: (flags: [String], post: Post)] = [
        "pie-g": (["-g", "-O1", "-fPIE", "-pie"], .none),
        "nopie": (["-O1", "-fno-pie", "-no-pie"], .none),
        "nopie-g": (["-g", "-O0", "-fno-pie", "-no-pie"], .none),
        "pie-stripped": (["-O1", "-fPIE", "-pie"], .strip),
        "nopie-stripped": (["-O1", "-fno-pie", "-no-pie"], .strip),
        "rdynamic-stripped": (["-O1", "-fPIE", "-pie", "-rdynamic"], .strip),
        "debuglink": (["-g", "-O1", "-fPIE", "-pie"], .debugLink),
        "buildid": (["-g", "-O1", "-fPIE", "-pie", "-Wl,--build-id"], .buildIDOnly),
    ]

    /// The directory holding every variant, or the build error.
    static let built: Result<URL, ToolError> = {
        do {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-symbols-\(getpid())")
            try? FileManager.default.removeItem(at: directory)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let d = directory.path
            try programSource.write(toFile: "\(d)/prog.c", atomically: true, encoding: .utf8)
            try dupSource.write(toFile: "\(d)/dup.c", atomically: true, encoding: .utf8)
            try emptySource.write(toFile: "\(d)/empty.c", atomically: true, encoding: .utf8)
            try check(Tools.run("cc", ["-shared", "-fPIC", "-O1", "-o", "\(d)/libdup.so", "\(d)/dup.c"]))
            try check(Tools.run("cc", ["-shared", "-fPIC", "-O1", "-o", "\(d)/libempty.so", "\(d)/empty.c"]))
            try check(Tools.run("strip", ["-s", "\(d)/libempty.so"]))
            for (name, variant) in variants {
                let sub = "\(d)/\(name)"
                try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
                let exe = "\(sub)/prog"
                try check(Tools.run("cc", variant.flags + ["-o", exe, "\(d)/prog.c", "-Wl,--no-as-needed", "-L\(d)", "-ldup", "-lempty",
                                                           "-Wl,-rpath,\(d)"]))
                switch variant.post {
                case .none: break
                case .strip: try check(Tools.run("strip", ["-s", exe]))
                case .debugLink:
                    try check(Tools.run("objcopy", ["--only-keep-debug", exe, "\(sub)/prog.debug"]))
                    try check(Tools.run("strip", ["-s", exe]))
                    try check(Tools.run("objcopy", ["--add-gnu-debuglink=\(sub)/prog.debug", exe]))
                case .buildIDOnly:
                    try check(Tools.run("objcopy", ["--only-keep-debug", exe, "\(sub)/prog.debug"]))
                    try check(Tools.run("strip", ["-s", exe]))
                }
            }
            return .success(directory)
        } catch let error as ToolError {
            return .failure(error)
        } catch {
            return .failure(ToolError("\(error)"))
        }
    }()

    static func check(_ output: Tools.Output) throws {
        guard output.status == 0 else { throw ToolError("a build step failed: \(output.stderr)") }
    }

    static func path(_ variant: String) throws -> String {
        try built.get().appendingPathComponent(variant).appendingPathComponent("prog").path
    }

    static var directory: String { (try? built.get().path) ?? "/nonexistent" }
}

extension Symbolizer {
    /// The loaded symbols of the first module whose name is `name`.
    func loaded(_ name: String) throws -> ModuleSymbols {
        let module = try #require(modules.first { $0.name == name }, "no module \(name) in \(modules.map(\.name))")
        return try symbols(of: module)
    }
}

extension ProcessHandle {
    func readInt32(at address: UInt64) throws -> Int32 {
        let bytes = try readExactly(from: address, count: 4)
        return bytes.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
    }
}
