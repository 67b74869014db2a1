import Foundation
import Glibc
import Testing

/// Where the built `procmem` and `procmem-fixture` executables are: next to the test binary, or in
/// a directory above it when the tests run from a bundle.
enum Binaries {
    static let directory: URL? = {
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
        for _ in 0..<6 {
            if FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("procmem").path) {
                return directory
            }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }()

    static func url(_ name: String) throws -> URL {
        // The fixture is the target, not the code under test: Scripts/sanitizers.sh runs an uninstrumented one.
        if name == "procmem-fixture", let path = ProcessInfo.processInfo.environment["PROCMEM_FIXTURE_EXECUTABLE"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        let directory = try #require(directory, "procmem was not found next to the test binary")
        return directory.appendingPathComponent(name)
    }
}

/// The outcome of one `procmem` run.
struct RunResult {
    var status: Int32
    var stdout: [UInt8]
    var stderr: String
    var text: String { String(decoding: stdout, as: UTF8.self) }
    var lines: [String] { text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty } }
    var stderrLines: [String] { stderr.split(separator: "\n").map(String.init) }
}

/// The outcome of one run with a time limit.
struct TimedRun {
    var status: Int32
    var signal: Int32?
    var timedOut: Bool
    var stdout: [UInt8]
    var stderr: String
}

/// Runs `procmem` in `directory`, killing it after `timeout` seconds.
func runProcmem(_ arguments: [String], timeout: Double, in directory: URL) throws -> TimedRun {
    let process = Process()
    process.executableURL = try Binaries.url("procmem")
    process.arguments = arguments
    process.currentDirectoryURL = directory
    let outURL = directory.appendingPathComponent(".sweep-\(UUID().uuidString).out")
    let errURL = directory.appendingPathComponent(".sweep-\(UUID().uuidString).err")
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
    // Polled rather than signalled by a termination handler: on Linux a Process with a handler
    // stays alive (LeakSanitizer reports every one), and polling every 5 ms costs nothing here.
    let deadline = Date().addingTimeInterval(timeout)
    var timedOut = false
    while process.isRunning {
        if Date() >= deadline {
            timedOut = true
            kill(process.processIdentifier, SIGKILL)
            break
        }
        usleep(5_000)
    }
    process.waitUntilExit()
    try out.close()
    try err.close()
    let signaled = process.terminationReason == .uncaughtSignal
    return TimedRun(status: signaled ? -1 : process.terminationStatus,
                    signal: signaled && !timedOut ? process.terminationStatus : nil, timedOut: timedOut,
                    stdout: try readCapture(outURL.path),
                    stderr: String(decoding: try readCapture(errURL.path), as: UTF8.self))
}

/// The bytes of a captured output file, read with `read(2)`. (`Data(contentsOf:)` leaks its buffer
/// for an empty file in this Foundation, which LeakSanitizer reports once per run of the sweep.)
func readCapture(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        if n == 0 { return bytes }
        bytes += chunk[0..<n]
    }
}

/// Runs `procmem` with `arguments`, capturing stdout and stderr in temporary files.
func procmem(_ arguments: [String]) throws -> RunResult {
    let run = try runProcmem(arguments, timeout: 600, in: FileManager.default.temporaryDirectory)
    try #require(!run.timedOut, "procmem \(arguments.joined(separator: " ")) did not exit within 600 s")
    return RunResult(status: run.status, stdout: run.stdout, stderr: run.stderr)
}

func procmem(_ arguments: String...) throws -> RunResult { try procmem(arguments) }

/// `0x…` for an address.
func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

/// The first line the fixture prints (only the fields these tests use).
struct FixtureLayout: Decodable {
    struct Region: Decodable {
        var address: UInt64
        var size: Int
    }
    struct Value: Decodable {
        var address: UInt64
    }
    var pid: Int32
    var pageSize: Int
    var regions: [String: Region]
    var values: [String: Value]

    func region(_ name: String) throws -> Region { try #require(regions[name], "the fixture has no \(name) region") }
    func value(_ name: String) throws -> UInt64 { try #require(values[name], "the fixture has no \(name) value").address }
}

/// A running `procmem-fixture`: started with pipes, its layout read from its first line, told to
/// `exit` and waited for by ``stop()``.
final class Fixture {
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    let layout: FixtureLayout
    let executable: URL

    init() throws {
        executable = try Binaries.url("procmem-fixture")
        process.executableURL = executable
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let first = Self.readLine(output)
        do {
            layout = try JSONDecoder().decode(FixtureLayout.self, from: Data(first))
        } catch {
            process.terminate()
            process.waitUntilExit()
            throw error
        }
    }

    var pid: String { String(layout.pid) }

    /// Reads from the fixture's stdout up to the end of its next line (the line, without the newline).
    private static func readLine(_ pipe: Pipe) -> Data {
        var data = Data()
        while !data.contains(UInt8(ascii: "\n")) {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            data.append(chunk)
        }
        return Data(data.split(separator: UInt8(ascii: "\n")).first ?? Data())
    }

    /// Sends one command line to the fixture and returns its JSON reply (`{"ok": …}`).
    func command(_ line: String) throws -> [String: Any] {
        try input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
        let object = try JSONSerialization.jsonObject(with: Self.readLine(output))
        return try #require(object as? [String: Any], "bad reply to \(line)")
    }

    func stop() {
        try? input.fileHandleForWriting.write(contentsOf: Data("exit\n".utf8))
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

/// Runs `body` with a fresh fixture, which is stopped afterwards.
func withFixture<R>(_ body: (Fixture) throws -> R) throws -> R {
    let fixture = try Fixture()
    defer { fixture.stop() }
    return try body(fixture)
}

/// The bytes of the fixture's `pattern` region: byte i is (i * 7 + i / 4096) & 0xff.
func patternBytes(count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 7 &+ ($0 >> 12)) & 0xff) }
}
