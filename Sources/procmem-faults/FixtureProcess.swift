import Foundation
import Glibc

// Child processes driven through pipes: the procmem-fixture (the same approach as the test harness,
// Tests/ProcessMemoryTests/Support/Fixture.swift, copied rather than imported), python3 helpers,
// gdb and unshare. Everything here is reaped by its owner; nothing is left behind.

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ text: String) { description = text }
}

/// The directory holding the package's built products (where this executable lives).
let productsDirectory: String = {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    let path = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "."
    if let slash = path.lastIndex(of: "/") { return String(path[..<slash]) }
    return "."
}()

let fixtureExecutable = productsDirectory + "/procmem-fixture"
let selfExecutable = productsDirectory + "/procmem-faults"

/// A child process with its stdin and stdout on pipes. stderr goes to /dev/null unless asked.
final class Spawned {
    let pid: Int32
    let inputFD: Int32
    let outputFD: Int32
    private var pending: [UInt8] = []
    private(set) var reaped = false
    var exitStatus: Int32 = 0

    init(_ argv: [String], keepStderr: Bool = false, processGroup: Bool = false) throws {
        var toChild: [Int32] = [0, 0]
        var fromChild: [Int32] = [0, 0]
        guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else {
            throw HarnessError("pipe: \(String(cString: strerror(errno)))")
        }
        for fd in toChild + fromChild { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        if !keepStderr { posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if processGroup { flags |= Int32(POSIX_SPAWN_SETPGROUP) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGUSR1, SIGALRM, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(flags))
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawnp(&child, argv[0], &actions, &attributes, &cArgs, environ)
        Glibc.close(toChild[0])
        Glibc.close(fromChild[1])
        guard rc == 0 else {
            Glibc.close(toChild[1])
            Glibc.close(fromChild[0])
            throw HarnessError("posix_spawn \(argv[0]): \(String(cString: strerror(rc)))")
        }
        pid = child
        inputFD = toChild[1]
        outputFD = fromChild[0]
    }

    deinit {
        if !reaped { kill(SIGKILL); reap() }
        Glibc.close(inputFD)
        Glibc.close(outputFD)
    }

    /// One line of output; throws on EOF or after `timeout` seconds.
    func readLine(timeout: Double = 30) throws -> String {
        let deadline = now() + timeout
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            var pfd = pollfd(fd: outputFD, events: Int16(POLLIN), revents: 0)
            let left = deadline - now()
            if left <= 0 { throw HarnessError("pid \(pid): no output within \(timeout) s") }
            let ready = poll(&pfd, 1, Int32(min(left * 1000, 1000)) + 1)
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(outputFD, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw HarnessError("pid \(pid): output closed") }
            pending.append(contentsOf: chunk[0..<n])
        }
    }

    func send(_ line: String) throws {
        let bytes = Array((line + "\n").utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.write(inputFD, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw HarnessError("pid \(pid): input closed") }
            sent += n
        }
    }

    func kill(_ signal: Int32 = SIGKILL) { _ = Glibc.kill(pid, signal) }

    /// Waits for the child and records its status (EINTR-safe).
    func reap() {
        guard !reaped else { return }
        reaped = true
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        exitStatus = status
    }

    /// Reaps if the child has exited within `timeout` seconds; otherwise returns false.
    func reap(timeout: Double) -> Bool {
        if reaped { return true }
        let deadline = now() + timeout
        var status: Int32 = 0
        while now() < deadline {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { reaped = true; exitStatus = status; return true }
            if r < 0 && errno != EINTR { reaped = true; return true }
            usleep(2000)
        }
        return false
    }
}

/// A running procmem-fixture and the layout it printed.
final class FixtureProcess {
    let process: Spawned
    let layout: [String: Any]
    var pid: Int32 { process.pid }
    let pageSize: Int

    init(_ arguments: [String] = [], wrapper: [String] = []) throws {
        process = try Spawned(wrapper + [fixtureExecutable] + arguments)
        let first = try process.readLine()
        guard let object = try? JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any] else {
            throw HarnessError("fixture layout is not JSON: \(first.prefix(200))")
        }
        layout = object
        pageSize = (object["pageSize"] as? NSNumber)?.intValue ?? 4096
    }

    deinit { stop() }

    func region(_ name: String) -> (address: UInt64, size: Int, info: [String: Any])? {
        guard let regions = layout["regions"] as? [String: Any], let r = regions[name] as? [String: Any],
              let address = (r["address"] as? NSNumber)?.uint64Value, let size = (r["size"] as? NSNumber)?.intValue
        else { return nil }
        return (address, size, r)
    }

    var patternAddress: UInt64 { region("pattern")!.address }
    var patternSize: Int { region("pattern")!.size }

    /// One command; returns the reply object.
    @discardableResult
    func command(_ line: String) throws -> [String: Any] {
        try process.send(line)
        let reply = try process.readLine()
        guard let object = try? JSONSerialization.jsonObject(with: Data(reply.utf8)) as? [String: Any] else {
            throw HarnessError("fixture reply is not JSON: \(reply.prefix(200))")
        }
        return object
    }

    /// A command that must succeed.
    @discardableResult
    func ok(_ line: String) throws -> [String: Any] {
        let reply = try command(line)
        guard reply["ok"] as? Bool == true else { throw HarnessError("fixture refused '\(line)': \(reply)") }
        return reply
    }

    /// `map SIZE [PERMS]`: a new region filled with 0x33.
    func map(_ size: Int, perms: String? = nil) throws -> UInt64 {
        let reply = try ok("map \(size)" + (perms.map { " " + $0 } ?? ""))
        guard let address = (reply["address"] as? NSNumber)?.uint64Value else { throw HarnessError("map: no address") }
        return address
    }

    /// The bytes at `address` as the fixture reads them itself (nil when nothing can be read there).
    func selfRead(_ address: UInt64, _ count: Int) throws -> [UInt8]? {
        let reply = try command("read \(address) \(count)")
        guard reply["ok"] as? Bool == true, let hex = reply["hex"] as? String else { return nil }
        return hexBytes(hex)
    }

    func kill(_ signal: Int32 = SIGKILL) { process.kill(signal) }

    /// Kills (if needed), reaps, and removes the temp file a killed fixture cannot remove itself.
    func stop() {
        guard !process.reaped else { return }
        _ = try? process.send("exit")
        if !process.reap(timeout: 2) { process.kill(); process.reap() }
        cleanupFile()
    }

    func killAndReap() {
        process.kill()
        process.reap()
        cleanupFile()
    }

    func cleanupFile() {
        if let path = region("truncatedFile")?.info["path"] as? String { unlink(path) }
    }
}

/// The fixture's pattern byte at offset `i` of its pattern region (no --fill).
@inline(__always) func patternByte(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: (i &* 7 &+ (i >> 12)) & 0xff) }

func hexBytes(_ hex: String) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(hex.utf8.count / 2)
    func nibble(_ c: UInt8) -> UInt8 {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return 0
        }
    }
    var iterator = hex.utf8.makeIterator()
    while let high = iterator.next(), let low = iterator.next() { bytes.append(nibble(high) << 4 | nibble(low)) }
    return bytes
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// A tiny thread wrapper (pthread, so the runner needs no Foundation threads).
final class Worker {
    private var thread = pthread_t()
    private let body: () -> Void
    private var started = false

    init(_ body: @escaping () -> Void) {
        self.body = body
        let box = Unmanaged.passRetained(self)
        started = pthread_create(&thread, nil, { raw in
            let worker = Unmanaged<Worker>.fromOpaque(raw!).takeRetainedValue()
            worker.body()
            return nil
        }, box.toOpaque()) == 0
        if !started { box.release() }
    }

    var handle: pthread_t { thread }

    func join() { if started { pthread_join(thread, nil); started = false } }
}

/// A flag shared between threads.
final class AtomicFlag: @unchecked Sendable {
    private var value: Int32 = 0
    private var lock = pthread_mutex_t()
    init() { pthread_mutex_init(&lock, nil) }
    func set() { pthread_mutex_lock(&lock); value = 1; pthread_mutex_unlock(&lock) }
    var isSet: Bool { pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }; return value != 0 }
}

/// Waits until `condition` holds, up to `timeout` seconds.
@discardableResult
func waitUntil(_ timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = now() + timeout
    while now() < deadline {
        if condition() { return true }
        usleep(1000)
    }
    return condition()
}

/// Reads /proc/PID/mem directly (not through the library): the oracle for "what the target holds".
func rawProcRead(pid: Int32, address: UInt64, count: Int) -> [UInt8]? {
    let fd = open("/proc/\(pid)/mem", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: count)
    let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(Int64(bitPattern: address))) }
    guard n > 0 else { return nil }
    return Array(buffer[0..<n])
}

func procStatField(_ pid: Int32, _ key: String) -> String? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
        return line.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)
    }
    return nil
}

/// The whole of a file (a /proc file, whose size stat does not tell, or a dump's region file).
func readProcFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { return nil }
        if n == 0 { return bytes }
        bytes.append(contentsOf: chunk[0..<n])
    }
}
