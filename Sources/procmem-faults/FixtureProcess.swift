import Foundation
import Glibc
import ProcessMemoryTestSupport

// The fixture and other child processes (python3 helpers, gdb, unshare) are started with the shared
// launcher in Sources/ProcessMemoryTestSupport (ChildProcess, FixtureProcess), the one the tests use.
// Here: what only the fault matrix needs. Everything started is reaped by its owner.

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ text: String) { description = text }
}

/// The fixture this run starts (the one built next to this executable, or PROCMEM_FIXTURE_EXECUTABLE).
let fixtureExecutable = (try? FixtureProcess.executablePath()) ?? "procmem-fixture"
/// This executable, which runs each case in a child of its own.
let selfExecutable = (try? BuiltProducts.path(of: "procmem-faults")) ?? "procmem-faults"

extension FixtureProcess {
    /// Starts a fixture with its stderr on /dev/null, so it cannot garble the summary table.
    static func quiet(wrapper: [String] = []) throws -> FixtureProcess {
        try FixtureProcess(wrapper: wrapper, keepStderr: false)
    }

    /// The `pattern` region, which every fixture reports (from address 0, size 0 if one ever did not).
    var patternAddress: UInt64 { layout.regions["pattern"]?.address ?? 0 }
    var patternSize: Int { Int(layout.regions["pattern"]?.size ?? 0) }

    /// The bytes at `address` as the fixture reads them itself; nil when the fixture cannot read there.
    func selfReadIfReadable(_ address: UInt64, _ count: Int) throws -> [UInt8]? {
        do {
            return try selfRead(address, count)
        } catch .refused {
            return nil
        }
    }
}

func now() -> Double { monotonicSeconds() }

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
