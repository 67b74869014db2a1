import Foundation
import Glibc
import Testing

/// The layout the fixture process reports as its first line of JSON.
struct FixtureLayout: Decodable {
    struct Region: Decodable {
        var address: UInt64
        var size: UInt64
        var holeOffset: UInt64?
        var holeSize: UInt64?
        var protNoneOffset: UInt64?
        var guardOffset: UInt64?
        var path: String?
        var fileSize: UInt64?
        var fd: Int32?
    }
    struct Located: Decodable {
        var address: UInt64
    }
    struct Planted: Decodable {
        var value: UInt32
        var addresses: [UInt64]
    }
    struct Code: Decodable {
        var address: UInt64
        var bytes: String
    }
    var pid: Int32
    var pageSize: UInt64
    var regions: [String: Region]
    var values: [String: Located]
    var planted: Planted
    var code: Code
    var stack: Located

    func region(_ name: String) throws -> Region {
        try #require(regions[name], "the fixture did not report region \(name)")
    }
    func value(_ name: String) throws -> UInt64 {
        try #require(values[name], "the fixture did not report value \(name)").address
    }
}

/// A running `procmem-fixture` child process, driven through its stdin and stdout.
///
/// Spawned with posix_spawn(3) and reaped only by `reap()`/`stop()`, so tests can observe the
/// zombie state.
final class Fixture {
    let pid: Int32
    let inputFD: Int32
    let outputFD: Int32
    let layout: FixtureLayout
    private var pending: [UInt8] = []
    private var reaped = false

    /// The directory holding the package's built products (next to this test binary).
    static let productsDirectory: URL = {
        var url = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 where !FileManager.default.fileExists(atPath: url.appendingPathComponent("procmem-fixture").path) {
            url = url.deletingLastPathComponent()
        }
        return url
    }()

    /// The fixture to run: `PROCMEM_FIXTURE_EXECUTABLE` when set (Scripts/sanitizers.sh points it at
    /// an uninstrumented build, since the fixture is the target and not the code under test), else
    /// the one built with the tests.
    static var executable: String {
        if let path = ProcessInfo.processInfo.environment["PROCMEM_FIXTURE_EXECUTABLE"], !path.isEmpty { return path }
        return productsDirectory.appendingPathComponent("procmem-fixture").path
    }

    init(arguments: [String] = []) throws {
        var toChild: [Int32] = [0, 0]
        var fromChild: [Int32] = [0, 0]
        guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else { throw FixtureError.spawn(errno) }
        for fd in toChild + fromChild { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        let argv = [Self.executable] + arguments
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, Self.executable, &actions, nil, &cArgs, environ)
        Glibc.close(toChild[0])
        Glibc.close(fromChild[1])
        guard rc == 0 else {
            Glibc.close(toChild[1])
            Glibc.close(fromChild[0])
            throw FixtureError.spawn(rc)
        }
        inputFD = toChild[1]
        outputFD = fromChild[0]
        var lineBuffer: [UInt8] = []
        do {
            let first = try Self.readLine(fd: outputFD, pending: &lineBuffer)
            pending = lineBuffer
            layout = try JSONDecoder().decode(FixtureLayout.self, from: Data(first.utf8))
        } catch {
            Glibc.kill(child, SIGKILL)
            var status: Int32 = 0
            waitpid(child, &status, 0)
            Glibc.close(inputFD)
            Glibc.close(outputFD)
            throw error
        }
        pid = child
    }

    deinit {
        stop()
        Glibc.close(inputFD)
        Glibc.close(outputFD)
    }

    private static func readLine(fd: Int32, pending: inout [UInt8]) throws -> String {
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { throw FixtureError.closed }
            pending.append(contentsOf: chunk[0..<n])
        }
    }

    /// Sends one command and returns its JSON reply.
    @discardableResult
    func command(_ line: String) throws -> [String: Any] {
        try send(line)
        let reply = try Self.readLine(fd: outputFD, pending: &pending)
        let object = try JSONSerialization.jsonObject(with: Data(reply.utf8))
        return try #require(object as? [String: Any], "reply is not an object: \(reply)")
    }

    /// Sends a line without waiting for a reply.
    func send(_ line: String) throws {
        let bytes = Array((line + "\n").utf8)
        let n = bytes.withUnsafeBytes { Glibc.write(inputFD, $0.baseAddress, $0.count) }
        if n != bytes.count { throw FixtureError.closed }
    }

    /// Sends a command and requires `"ok": true`.
    @discardableResult
    func ok(_ line: String) throws -> [String: Any] {
        let reply = try command(line)
        #expect(reply["ok"] as? Bool == true, "fixture refused '\(line)': \(reply)")
        return reply
    }

    /// The bytes at `address` as the fixture itself reads them (through /proc/self/mem).
    func selfRead(_ address: UInt64, _ count: Int) throws -> [UInt8] {
        let reply = try ok("read \(address) \(count)")
        let hex = try #require(reply["hex"] as? String)
        return hexBytes(hex)
    }

    /// Asks the fixture to exit and reaps it.
    func stop() {
        guard !reaped else { return }
        _ = try? send("exit")
        reap()
    }

    /// Kills the fixture with `signal` without reaping it.
    func kill(_ signal: Int32 = SIGKILL) {
        _ = Glibc.kill(pid, signal)
    }

    /// Waits until the fixture is a zombie (killed, not reaped).
    func waitForZombie() {
        for _ in 0..<2000 {
            if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
               let close = stat.lastIndex(of: ")"), stat[stat.index(close, offsetBy: 2)] == "Z" { return }
            usleep(1000)
        }
    }

    /// Waits for the fixture to exit and reaps it.
    func reap() {
        guard !reaped else { return }
        reaped = true
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        // A killed fixture cannot remove its own temporary file.
        if let path = layout.regions["truncatedFile"]?.path { unlink(path) }
    }
}

enum FixtureError: Error { case closed, spawn(Int32) }

func hexBytes(_ hex: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var iterator = hex.utf8.makeIterator()
    while let high = iterator.next(), let low = iterator.next() {
        if let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) { bytes.append(value) }
    }
    return bytes
}

/// The fixture's pattern: byte at offset i.
func patternByte(_ offset: Int) -> UInt8 {
    UInt8((offset &* 7 &+ (offset >> 12)) & 0xff)
}

var isRoot: Bool { geteuid() == 0 }
