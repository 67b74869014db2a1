import Foundation
import Glibc
import ProcessMemory
import ProcessMemorySymbols

/// Measurement 8 (issue 13): symbols of the fixture's modules.
///   - libc's table ready: a cold `Symbolizer.symbols(of:)` (cache emptied; the file read through
///     /proc/PID/map_files, parsed, and its separate debug file found and parsed), beside `nm -D`
///     (and `nm` on the debug file) on the same files, spawn to exit, output to /dev/null, and
///     beside gdb doing the same job: `gdb -batch -nx -ex 'info symbol ADDR' LIBC` (libc's symbols
///     read, its debug file found by build ID, one address named), and again with the debug-file
///     directory pointed at an empty one (libc's own tables only);
///   - a lookup by address (`name(for:)`) at random addresses in libc's mappings, tables loaded;
///   - naming 1,000 addresses spread over the mapped modules, cold and warm, against a u32 scan of
///     the fixture's target region (the scan whose matches would be named).
/// Prints its own table: these are times, not rates, and most have no raw counterpart.
func symbolRows(handle: ProcessHandle, pid: Int32, base: UInt64, size: Int, repetitions: Int) throws {
    let reps = max(5, repetitions * 2)
    let probe = try Symbolizer(handle: handle)
    guard let libc = probe.modules.first(where: { $0.name.hasPrefix("libc.so") }), let libcPath = libc.path else {
        throw BenchError.message("the fixture maps no libc")
    }
    func median(_ body: () throws -> Void) rethrows -> Double {
        try body() // warm the page cache and the code
        var times: [Double] = []
        for _ in 0..<reps {
            let start = now()
            try body()
            times.append(now() - start)
        }
        times.sort()
        return times[times.count / 2]
    }
    func cold(_ options: SymbolizerOptions) throws -> (Double, ModuleSymbols) {
        var loaded: ModuleSymbols?
        let seconds = try median {
            Symbolizer.removeCachedTables()
            let symbolizer = try Symbolizer(handle: handle, options: options)
            loaded = try symbolizer.symbols(of: libc)
        }
        guard let loaded else { throw BenchError.message("libc did not load") }
        return (seconds, loaded)
    }
    let (full, fullTable) = try cold(SymbolizerOptions())
    let (plain, plainTable) = try cold(SymbolizerOptions(useSeparateDebugFiles: false))
    let nmDynamic = median { _ = spawnQuietly("/usr/bin/nm", ["-D", libcPath]) }
    var nmDebug: Double?
    if let debug = fullTable.debugFile { nmDebug = median { _ = spawnQuietly("/usr/bin/nm", [debug]) } }
    // gdb naming one address of libc (malloc + 0x10, link-time): its symbols loaded as for any lookup.
    var gdbFull: Double?
    var gdbPlain: Double?
    if let gdb = ["/usr/bin/gdb", "/usr/local/bin/gdb"].first(where: { (path: String) in access(path, X_OK) == 0 }),
       let malloc = plainTable.table.symbols(named: "malloc").first {
        let lookup = "info symbol 0x" + String(malloc.value + 0x10, radix: 16)
        let quiet = ["-batch", "-nx", "-iex", "set debuginfod enabled off"]
        gdbFull = median { _ = spawnQuietly(gdb, quiet + ["-ex", lookup, libcPath]) }
        let empty = "/tmp/procmem-bench-no-debug-\(getpid())"
        mkdir(empty, 0o700)
        defer { rmdir(empty) }
        gdbPlain = median { _ = spawnQuietly(gdb, quiet + ["-iex", "set debug-file-directory " + empty, "-ex", lookup, libcPath]) }
    }

    // Lookups by address in libc, tables loaded.
    let symbolizer = try Symbolizer(handle: handle)
    _ = try symbolizer.symbols(of: libc)
    var generator = SystemRandomNumberGenerator()
    let addresses = (0..<200_000).map { _ in UInt64.random(in: libc.start..<libc.end, using: &generator) }
    var named = 0
    let lookup = median {
        named = 0
        for address in addresses where symbolizer.name(for: address)?.symbol != nil { named += 1 }
    } / Double(addresses.count)

    // 1,000 addresses over every module, named by a fresh symbolizer: cold (cache emptied) and warm.
    let modules = symbolizer.modules
    let spread = spreadAddresses(modules)
    func nameAll() throws { try nameEach(spread, handle: handle) }
    let coldNames = try median { Symbolizer.removeCachedTables(); try nameAll() }
    let warmNames = try median { try nameAll() }
    let scanner = Scanner(handle: handle)
    let value = try ScanValue("0x5EED1234", as: .u32)
    let region = MemoryRegion(start: base, end: base + UInt64(size), permissions: [.read, .write], isShared: false)
    let scan = try median { _ = try scanner.scan(.value(value), regions: [region]) }

    func ms(_ seconds: Double) -> String { String(format: "%.2f ms", seconds * 1e3) }
    func ratio(_ ours: Double, _ theirs: Double?) -> String {
        theirs.map { String(format: "; gdb `info symbol` %@, %.1f× ours", ms($0), $0 / ours) } ?? "; gdb not installed"
    }
    print("")
    print("| # | measurement | ours | beside | target | met |")
    print("|---|---|---|---|---|---|")
    print("| 8 | libc's table ready, cold, with its separate debug file (\(fullTable.table.count) symbols) | \(ms(full)) | "
          + (nmDebug.map { "`nm` on the debug file \(ms($0)), `nm -D` \(ms(nmDynamic))" } ?? "no debug file installed")
          + ratio(full, gdbFull) + " | < 20 ms | \(full < 0.020 ? "yes" : "no") |")
    print("| 8 | libc's table ready, cold, .dynsym/.symtab only (\(plainTable.table.count) symbols) | \(ms(plain)) | `nm -D` \(ms(nmDynamic))"
          + ratio(plain, gdbPlain) + " (no debug files) | < 20 ms | \(plain < 0.020 ? "yes" : "no") |")
    print(String(format: "| 8 | lookup by address in libc (name(for:), %d of %d named) | %.0f ns | – | < 1 µs | %@ |",
                 named, addresses.count, lookup * 1e9, lookup < 1e-6 ? "yes" : "no"))
    print(String(format: "| 8 | naming 1,000 addresses over %d modules, cold (tables parsed) | %@ = %.1f %% of the scan | u32 scan of %d MiB: %@ | < 10 %% | %@ |",
                 modules.count, ms(coldNames), coldNames / scan * 100, size >> 20, ms(scan), coldNames / scan < 0.1 ? "yes" : "no"))
    print(String(format: "| 8 | the same, warm (tables cached by build ID) | %@ = %.2f %% of the scan | the same scan | < 10 %% | %@ |",
                 ms(warmNames), warmNames / scan * 100, warmNames / scan < 0.1 ? "yes" : "no"))
}

/// 1,000 addresses spread evenly over the modules' mappings.
private func spreadAddresses(_ modules: [Module]) -> [UInt64] {
    let span = modules.reduce(UInt64(0)) { $0 + ($1.end - $1.start) }
    var spread: [UInt64] = []
    for index in 0..<1000 {
        var offset = span / 1000 * UInt64(index)
        for module in modules {
            if offset < module.end - module.start { spread.append(module.start + offset); break }
            offset -= module.end - module.start
        }
    }
    return spread
}

/// Names every address with a new symbolizer (what one `procmem scan` does with its matches).
private func nameEach(_ addresses: [UInt64], handle: ProcessHandle) throws {
    let fresh = try Symbolizer(handle: handle)
    for address in addresses where fresh.name(for: address) == nil { throw BenchError.message("0x\(String(address, radix: 16)) has no module") }
}

/// Only the cold naming of row 8, `rounds` times, for `perf record`; prints the median.
func symbolColdProfile(handle: ProcessHandle, rounds: Int) throws {
    let spread = spreadAddresses(try Symbolizer(handle: handle).modules)
    func cpu() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
    var times: [Double] = []
    var cpuTimes: [Double] = []
    for _ in 0..<rounds {
        Symbolizer.removeCachedTables()
        let start = now(), startCPU = cpu()
        try nameEach(spread, handle: handle)
        times.append(now() - start)
        cpuTimes.append(cpu() - startCPU)
    }
    times.sort()
    cpuTimes.sort()
    print(String(format: "cold naming of 1,000 addresses: median %.2f ms (thread CPU time %.2f ms) over %d rounds",
                 times[times.count / 2] * 1e3, cpuTimes[cpuTimes.count / 2] * 1e3, rounds))
}

/// posix_spawn(3) with stdin, stdout and stderr on /dev/null; waits and returns the exit status.
private func spawnQuietly(_ path: String, _ arguments: [String]) -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    var argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var child: pid_t = 0
    guard posix_spawn(&child, path, &actions, nil, &argv, environ) == 0 else { return -1 }
    var status: Int32 = 0
    while waitpid(child, &status, 0) < 0 && errno == EINTR {}
    return status
}
