import Glibc

/// Why a fixture or helper process could not be started or driven.
public enum FixtureError: Error, CustomStringConvertible, Sendable {
    /// A system call failed while starting the process (the errno, or posix_spawn's result).
    case spawn(Int32)
    /// The process closed its output or input.
    case closed
    /// No line of output within the time allowed.
    case timedOut(pid: Int32, seconds: Double)
    /// The fixture answered a command with `"ok": false`, or with something that is not JSON.
    case refused(command: String, reply: String)
    /// The layout lacks something asked for.
    case missing(String)

    public var description: String {
        switch self {
        case .spawn(let code): return "could not start the process: \(String(cString: strerror(code)))"
        case .closed: return "the process closed its pipe"
        case .timedOut(let pid, let seconds): return "pid \(pid): no output within \(seconds) s"
        case .refused(let command, let reply): return "the fixture refused '\(command)': \(reply)"
        case .missing(let what): return what
        }
    }
}

/// A child process with its stdin and stdout on pipes, read a line at a time.
///
/// Started with posix_spawnp(3) with an empty signal mask and default SIGUSR1, SIGALRM, SIGPIPE and
/// SIGCHLD handlers (a child spawned from a test thread would otherwise inherit that thread's mask).
/// It is reaped only by ``reap()`` or ``reap(timeout:)``, so a caller can observe the zombie state;
/// `deinit` kills and reaps a child nobody reaped.
public final class ChildProcess {
    public let pid: Int32
    public let inputFD: Int32
    public let outputFD: Int32
    private var pending: [UInt8] = []
    public private(set) var reaped = false
    /// The wait status recorded by the reap.
    public private(set) var exitStatus: Int32 = 0

    /// Starts `argv` (searched in PATH). stderr goes to /dev/null unless `keepStderr`; with
    /// `processGroup` the child leads a new process group.
    public init(_ argv: [String], keepStderr: Bool = false, processGroup: Bool = false) throws(FixtureError) {
        guard let program = argv.first else { throw .spawn(EINVAL) }
        var toChild: [Int32] = [0, 0]
        var fromChild: [Int32] = [0, 0]
        guard pipe(&toChild) == 0 else { throw .spawn(errno) }
        guard pipe(&fromChild) == 0 else {
            let code = errno
            Glibc.close(toChild[0])
            Glibc.close(toChild[1])
            throw .spawn(code)
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
        let rc = posix_spawnp(&child, program, &actions, &attributes, &cArgs, environ)
        Glibc.close(toChild[0])
        Glibc.close(fromChild[1])
        guard rc == 0 else {
            Glibc.close(toChild[1])
            Glibc.close(fromChild[0])
            throw .spawn(rc)
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

    /// One line of output, without its newline; throws on EOF or after `timeout` seconds.
    public func readLine(timeout: Double = 60) throws(FixtureError) -> String {
        let deadline = monotonicSeconds() + timeout
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            let left = deadline - monotonicSeconds()
            if left <= 0 { throw .timedOut(pid: pid, seconds: timeout) }
            var pfd = pollfd(fd: outputFD, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(min(left * 1000, 1000)) + 1)
            if ready <= 0 { continue }  // EINTR or no data yet: check the deadline again
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(outputFD, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw .closed }
            pending.append(contentsOf: chunk[0..<n])
        }
    }

    /// Writes `line` and a newline to the child's stdin.
    public func send(_ line: String) throws(FixtureError) {
        let bytes = Array((line + "\n").utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.write(inputFD, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw .closed }
            sent += n
        }
    }

    /// Sends `signal` (SIGKILL by default) without reaping.
    public func kill(_ signal: Int32 = SIGKILL) { _ = Glibc.kill(pid, signal) }

    /// Waits for the child and records its status (EINTR-safe).
    public func reap() {
        guard !reaped else { return }
        reaped = true
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        exitStatus = status
    }

    /// Reaps the child if it exits within `timeout` seconds; returns whether it did.
    public func reap(timeout: Double) -> Bool {
        if reaped { return true }
        let deadline = monotonicSeconds() + timeout
        var status: Int32 = 0
        while monotonicSeconds() < deadline {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { reaped = true; exitStatus = status; return true }
            if r < 0 && errno != EINTR { reaped = true; return true }
            usleep(2000)
        }
        return false
    }
}

/// CLOCK_MONOTONIC in seconds.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
