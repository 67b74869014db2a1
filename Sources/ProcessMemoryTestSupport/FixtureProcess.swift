import Foundation
import Glibc

/// Where the package's built executables are: the directory of the running binary, or one above it
/// (a test bundle sits a level or two below the products).
public enum BuiltProducts {
    /// The directory holding `name` (a built executable of this package), or nil when none is found.
    public static func directory(containing name: String) -> String? {
        guard var directory = selfExecutableDirectory() else { return nil }
        for _ in 0..<6 {
            if access(directory + "/" + name, X_OK) == 0 { return directory }
            guard let slash = directory.lastIndex(of: "/"), slash != directory.startIndex else { return nil }
            directory = String(directory[..<slash])
        }
        return nil
    }

    /// The path of the built executable `name`; throws when it was not built.
    public static func path(of name: String) throws(FixtureError) -> String {
        guard let directory = directory(containing: name) else {
            throw .missing("\(name) was not found next to \(selfExecutableDirectory() ?? "this executable"): build the whole package")
        }
        return directory + "/" + name
    }

    private static func selfExecutableDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = path.lastIndex(of: "/") else { return nil }
        return String(path[..<slash])
    }
}

/// A running `procmem-fixture`, driven through its stdin and stdout: the one launcher of the library
/// tests, the CLI tests and the fault matrix.
///
/// The fixture prints its ``FixtureLayout`` as its first line, then answers each command line with
/// one JSON object (`{"ok": true, ...}` or `{"ok": false, "error": ...}`). It is reaped only by
/// ``reap()``, ``stop()`` or ``killAndReap()``, so a caller can observe it as a zombie; `deinit` stops it.
public final class FixtureProcess {
    /// The child process: its pipes, signals and reaping.
    public let process: ChildProcess
    /// What the fixture printed about its memory.
    public let layout: FixtureLayout
    /// The executable that was started.
    public let executable: String

    public var pid: Int32 { process.pid }
    public var pageSize: Int { Int(layout.pageSize) }

    /// The fixture to run: `PROCMEM_FIXTURE_EXECUTABLE` when set (Scripts/sanitizers.sh points it at an
    /// uninstrumented build, since the fixture is the target and not the code under test), else the
    /// one built with the running binary.
    public static func executablePath() throws(FixtureError) -> String {
        if let path = ProcessInfo.processInfo.environment["PROCMEM_FIXTURE_EXECUTABLE"], !path.isEmpty { return path }
        return try BuiltProducts.path(of: "procmem-fixture")
    }

    /// Starts the fixture with `arguments`, behind `wrapper` (e.g. `unshare --pid --fork`) when given,
    /// and reads its layout. The fixture's stderr is kept unless `keepStderr` is false.
    public init(arguments: [String] = [], wrapper: [String] = [], keepStderr: Bool = true) throws(FixtureError) {
        executable = try Self.executablePath()
        process = try ChildProcess(wrapper + [executable] + arguments, keepStderr: keepStderr)
        do {
            let first = try process.readLine()
            layout = try JSONDecoder().decode(FixtureLayout.self, from: Data(first.utf8))
        } catch let error as FixtureError {
            process.kill()
            process.reap()
            throw error
        } catch {
            process.kill()
            process.reap()
            throw .refused(command: "(layout)", reply: "\(error)")
        }
    }

    deinit { stop() }

    /// Sends one command and returns its JSON reply, whether or not it says `"ok": true`.
    @discardableResult
    public func command(_ line: String, timeout: Double = 60) throws(FixtureError) -> [String: Any] {
        try process.send(line)
        let reply = try process.readLine(timeout: timeout)
        guard let object = (try? JSONSerialization.jsonObject(with: Data(reply.utf8))) as? [String: Any] else {
            throw .refused(command: line, reply: reply)
        }
        return object
    }

    /// Sends one command and requires `"ok": true` in its reply.
    @discardableResult
    public func ok(_ line: String, timeout: Double = 60) throws(FixtureError) -> [String: Any] {
        let reply = try command(line, timeout: timeout)
        guard reply["ok"] as? Bool == true else { throw .refused(command: line, reply: "\(reply)") }
        return reply
    }

    /// Sends a line without waiting for a reply.
    public func send(_ line: String) throws(FixtureError) {
        try process.send(line)
    }

    /// `map SIZE [PERMS]`: a new region, filled with 0x33; returns its address.
    public func map(_ size: Int, perms: String? = nil) throws(FixtureError) -> UInt64 {
        let line = "map \(size)" + (perms.map { " " + $0 } ?? "")
        let reply = try ok(line)
        guard let address = (reply["address"] as? NSNumber)?.uint64Value else { throw .refused(command: line, reply: "\(reply)") }
        return address
    }

    /// The bytes at `address` as the fixture itself reads them (through /proc/self/mem).
    public func selfRead(_ address: UInt64, _ count: Int) throws(FixtureError) -> [UInt8] {
        let line = "read \(address) \(count)"
        let reply = try ok(line)
        guard let hex = reply["hex"] as? String else { throw .refused(command: line, reply: "\(reply)") }
        return hexBytes(hex)
    }

    /// Sends `signal` (SIGKILL by default) without reaping.
    public func kill(_ signal: Int32 = SIGKILL) { process.kill(signal) }

    /// Waits until the fixture is a zombie (killed, not reaped), for up to two seconds.
    public func waitForZombie() {
        for _ in 0..<2000 {
            if Self.state(of: pid) == UInt8(ascii: "Z") { return }
            usleep(1000)
        }
    }

    /// Waits for the fixture to exit, reaps it, and removes the temporary file it cannot remove when killed.
    public func reap() {
        process.reap()
        removeTemporaryFile()
    }

    /// Asks the fixture to exit and reaps it; kills it if it has not exited within two seconds.
    public func stop() {
        guard !process.reaped else { return }
        _ = try? process.send("exit")
        if !process.reap(timeout: 2) { process.kill(); process.reap() }
        removeTemporaryFile()
    }

    /// Kills and reaps the fixture.
    public func killAndReap() {
        process.kill()
        reap()
    }

    private func removeTemporaryFile() {
        if let path = layout.regions["truncatedFile"]?.path { unlink(path) }
    }

    /// The state letter of /proc/PID/stat (`R`, `S`, `T`, `Z`, ...), or nil.
    private static func state(of pid: Int32) -> UInt8? {
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0, let close = buffer[0..<n].lastIndex(of: UInt8(ascii: ")")), close + 2 < n else { return nil }
        return buffer[close + 2]
    }
}
