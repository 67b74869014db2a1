import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing

/// Where the built `procmem` executable is: next to the test binary, or in a directory above it
/// when the tests run from a bundle.
enum Binaries {
    static func url(_ name: String) throws -> URL {
        URL(fileURLWithPath: try BuiltProducts.path(of: name))
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

/// A running `procmem-fixture` (the shared launcher of Sources/ProcessMemoryTestSupport).
typealias Fixture = FixtureProcess

extension FixtureProcess {
    /// The fixture's PID as a `procmem` argument.
    var pidArgument: String { String(pid) }
}

/// Runs `body` with a fresh fixture, which is stopped afterwards.
func withFixture<R>(_ body: (Fixture) throws -> R) throws -> R {
    let fixture = try Fixture()
    defer { fixture.stop() }
    return try body(fixture)
}

/// The bytes of the fixture's `pattern` region: byte i is (i * 7 + i / 4096) & 0xff.
func patternBytes(count: Int) -> [UInt8] {
    (0..<count).map(patternByte)
}
