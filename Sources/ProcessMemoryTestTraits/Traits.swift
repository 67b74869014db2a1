// Conditions under which a test cannot run on this machine, as Swift Testing traits: the test is then
// reported as skipped, with the reason, instead of returning early and counting as a pass.
//
// A target of its own, apart from ProcessMemoryTestSupport, because it imports Testing: the fault
// matrix (an executable) links ProcessMemoryTestSupport, and an executable must not link the Testing
// library. Only the test targets depend on this one.
import CProcessMemoryTestSupport
import Glibc
import Testing

extension Trait where Self == ConditionTrait {
    /// The test uses memfd_secret(2), which this kernel may not offer (secretmem.enable, arch).
    public static var requiresSecretMemory: Self {
        .enabled(if: SecretMemory.available, "memfd_secret is not available")
    }

    /// The test uses the PAGEMAP_SCAN ioctl of /proc/PID/pagemap (Linux 6.7+).
    public static var requiresPagemapScan: Self {
        .enabled(if: KernelVersion.atLeast(6, 7), "the kernel predates PAGEMAP_SCAN (Linux 6.7)")
    }

    /// The test needs root (CAP_SYS_ADMIN, CAP_SYS_PTRACE, dropping to another user, mounting).
    public static var requiresRoot: Self {
        .enabled(if: geteuid() == 0, "needs root")
    }

    /// The test needs root, for the reason given (shown when it is skipped).
    public static func requiresRoot(_ reason: String) -> Self {
        .enabled(if: geteuid() == 0, "needs root: \(reason)")
    }

    /// The test runs `tool`, which must be an executable in PATH (or /usr/bin, /usr/local/bin, /bin).
    public static func requiresTool(_ tool: String) -> Self {
        .enabled(if: ToolLookup.path(of: tool) != nil, "\(tool) is not installed")
    }

    /// The test runs a target with jemalloc preloaded (apt-get install libjemalloc2).
    public static var requiresJemalloc: Self {
        .enabled(if: Jemalloc.path != nil, "libjemalloc.so.2 is not installed (apt-get install libjemalloc2)")
    }

    /// The test reads an arm64 core with gdb-multiarch (apt-get install gdb-multiarch).
    public static var requiresGdbMultiarch: Self {
        .enabled(if: ToolLookup.path(of: "gdb-multiarch") != nil,
                 "gdb-multiarch is not installed (apt-get install gdb-multiarch)")
    }

    /// The test reads a region by its anonymous VMA name (`[anon:NAME]`), which the kernel shows
    /// only with CONFIG_ANON_VMA_NAME.
    public static var requiresAnonymousVMANames: Self {
        .enabled(if: AnonymousVMANames.shown, "the kernel does not show anonymous VMA names (CONFIG_ANON_VMA_NAME)")
    }

    /// The test creates a cgroup of its own: a cgroup v2 hierarchy must be mounted and writable.
    public static var requiresCgroupV2: Self {
        .enabled(if: CgroupV2.writableMount != nil, "no writable cgroup v2 mount")
    }
}

/// Where jemalloc's shared library is, to `LD_PRELOAD` into a target.
public enum Jemalloc {
    /// The first `libjemalloc.so.2` in the usual library directories, nil when none.
    public static let path: String? = {
        #if arch(arm64)
        let triplet = "aarch64-linux-gnu"
        #else
        let triplet = "x86_64-linux-gnu"
        #endif
        return ["/usr/lib/\(triplet)", "/lib/\(triplet)", "/usr/lib64", "/usr/lib", "/usr/local/lib"]
            .map { $0 + "/libjemalloc.so.2" }
            .first { access($0, R_OK) == 0 }
    }()
}

/// Finds executables the way the tests run them.
public enum ToolLookup {
    /// The full path of `tool`: from the system directories first (so a version manager's shim in PATH
    /// does not stand between a test and the process it starts), then PATH; nil when it is not installed.
    public static func path(of tool: String) -> String? {
        let path = getenv("PATH").map { String(cString: $0) } ?? ""
        let directories = ["/usr/bin", "/usr/local/bin", "/bin"] + path.split(separator: ":").map(String.init)
        return directories.lazy.map { $0 + "/" + tool }.first { access($0, X_OK) == 0 }
    }
}

/// Whether this kernel names anonymous mappings in /proc/PID/maps, as the fixture asks it to.
public enum AnonymousVMANames {
    /// Names a page of this process with prctl(PR_SET_VMA_ANON_NAME) and looks for the name in
    /// /proc/self/maps.
    public static let shown: Bool = {
        let page = sysconf(Int32(_SC_PAGESIZE))
        guard page > 0, let p = mmap(nil, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              p != MAP_FAILED else { return false }
        defer { munmap(p, page) }
        let name = "procmem-trait-probe"
        let named = name.withCString { cname in
            CProcessMemoryTestSupport_prctl(CProcessMemoryTestSupport_PR_SET_VMA,
                                            UInt(CProcessMemoryTestSupport_PR_SET_VMA_ANON_NAME),
                                            UInt(bitPattern: p), UInt(page), UInt(bitPattern: cname))
        }
        guard named == 0, let maps = readWholeFile("/proc/self/maps") else { return false }
        return maps.contains("[anon:\(name)]")
    }()
}

/// The whole of a small file such as a /proc file (whose size stat does not tell), or nil.
func readWholeFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { return nil }
        if n == 0 { return String(decoding: bytes, as: UTF8.self) }
        bytes += chunk[0..<n]
    }
}

/// The cgroup v2 hierarchy, from /proc/self/mountinfo.
public enum CgroupV2 {
    /// The mount point of a cgroup v2 hierarchy this process may create cgroups in, or nil.
    public static let writableMount: String? = {
        guard let text = readWholeFile("/proc/self/mountinfo") else { return nil }
        guard let line = text.split(separator: "\n").first(where: { $0.contains(" - cgroup2 ") }) else { return nil }
        let fields = line.split(separator: " ")
        guard fields.count > 4 else { return nil }
        let mount = String(fields[4])
        return access(mount, W_OK) == 0 ? mount : nil
    }()
}

/// Whether memfd_secret(2) works here.
public enum SecretMemory {
    public static let available: Bool = {
        let fd = CProcessMemoryTestSupport_memfd_secret(0)
        if fd >= 0 { Glibc.close(fd) }
        return fd >= 0
    }()
}

/// Drops the calling (child) process to uid/gid 65534 (nobody), which clears every capability;
/// exits with 90 if it cannot. For exit tests that check what an unprivileged reader gets.
public enum Unprivileged {
    public static let nobody: UInt32 = 65534

    public static func dropToNobody() {
        guard setgroups(0, nil) == 0, setgid(nobody) == 0, setuid(nobody) == 0, getuid() == nobody else { exit(90) }
    }
}

/// Polls `condition` every millisecond for up to five seconds; records an issue if it never holds.
public func waitUntil(_ condition: () throws -> Bool) throws {
    for _ in 0..<5000 {
        if try condition() { return }
        usleep(1000)
    }
    Issue.record("condition not met within 5 s")
}

/// The running kernel's version, from uname(2).
public enum KernelVersion {
    /// Whether the kernel is at least `major.minor`.
    public static func atLeast(_ major: Int, _ minor: Int) -> Bool {
        var name = utsname()
        guard uname(&name) == 0 else { return false }
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard parts.count == 2 else { return false }
        return (parts[0], parts[1]) >= (major, minor)
    }
}
