// procmem-faults: the fault matrix of issue 6. It drives real target processes (procmem-fixture,
// python3 helpers, gdb, unshare) through exits, kills, execs, forks, PID reuse (clone3 set_tid),
// unmap/mprotect races (during reads, batches, writes, scans and dumps), the same lifecycle events
// during scans, dumps and watches, stops, tracing, PID namespaces, hundreds of threads, 100,000+ regions,
// TiB sparse mappings, THP, files cut short or deleted, descriptor exhaustion and signal storms,
// and checks that the library never returns a byte the target did not hold (misread), never
// reports an inexact partial count or writes outside the reported prefix (bytes lost), and never
// crashes or hangs.
//
// Usage (as root; builds everything, procmem-fixture included, and runs the whole matrix):
//
//     swift build -c release && .build/release/procmem-faults            # full, about 4 minutes
//     swift build -c release && .build/release/procmem-faults --quick    # CI, under 2 minutes
//
//     --quick           fewer repetitions (CI; under 2 minutes)
//     --iterations N    repeat every case N times instead of its default
//     --only GROUP      run only these groups or cases (comma-separated): lifecycle, mapping-races,
//                       long-operations, stopped, limits, huge, hardening, or a case name such as pid-reuse
//     --list            list the cases
//
// Every case runs in its own child process (`procmem-faults --case NAME`, its own process group)
// with a time limit: a signal death or a timeout counts as a crash. The output is one table row per
// case (case | tries | passed | crashes | misreads | bytes lost | secs | notes), then the line
// `N passed, M failed` and the totals of crashes, misreads and bytes lost. The exit status is 0
// only when every case passed with no crash, misread or lost byte.
//
// The huge-maps case raises vm.max_map_count (when below 262144) for its run and restores it.

import CProcessMemoryTestSupport
import Glibc
import ProcessMemoryTestSupport

/// One line on stderr (unbuffered).
func printErr(_ text: String) {
    let bytes = Array((text + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

struct RunConfig: Sendable {
    var quick = false
    var iterations: Int?

    /// The number of repetitions of a case: `--iterations` wins, else the quick or full default.
    func n(quick q: Int, full: Int) -> Int { iterations ?? (quick ? q : full) }
}

struct FaultCase: Sendable {
    let name: String
    let group: String
    let timeout: Double
    let summary: String
    let run: @Sendable (RunConfig, Tally) throws -> Void
}

let allCases: [FaultCase] = lifecycleCases + mappingRaceCases + longOperationCases + stoppedCases + limitsCases + lowMemoryCases
    + hugeCases + hardeningCases

func usageAndExit(_ message: String) -> Never {
    printErr("procmem-faults: \(message)\nusage: procmem-faults [--quick] [--iterations N] [--only GROUP[,GROUP...]] [--list]")
    exit(2)
}

var config = RunConfig()
var only: Set<String>?
var singleCase: String?
var arguments = Array(CommandLine.arguments.dropFirst())
while !arguments.isEmpty {
    let arg = arguments.removeFirst()
    switch arg {
    case "--quick": config.quick = true
    case "--iterations":
        guard let text = arguments.first, let n = Int(text), n > 0 else { usageAndExit("--iterations needs a positive number") }
        arguments.removeFirst()
        config.iterations = n
    case "--only":
        guard let text = arguments.first else { usageAndExit("--only needs a group or case name") }
        arguments.removeFirst()
        only = Set(text.split(separator: ",").map(String.init))
    case "--case":
        guard let text = arguments.first else { usageAndExit("--case needs a name") }
        arguments.removeFirst()
        singleCase = text
    case "--list":
        for c in allCases { print("\(c.group)\t\(c.name)\t\(c.summary)") }
        exit(0)
    case "-h", "--help":
        usageAndExit("runs the fault matrix")
    default:
        usageAndExit("unknown argument \(arg)")
    }
}
signal(SIGPIPE, SIG_IGN)

// Child mode: run one case in this process and print its result line.
if let name = singleCase {
    _ = CProcessMemoryTestSupport_prctl(CProcessMemoryTestSupport_PR_SET_PDEATHSIG, UInt(SIGKILL), 0, 0, 0)  // die with the runner
    guard let faultCase = allCases.first(where: { $0.name == name }) else { usageAndExit("no case named \(name)") }
    let tally = Tally()
    do {
        try faultCase.run(config, tally)
    } catch {
        tally.record("harness: \(error)")
    }
    print(tally.resultLine)
    fflush(nil)
    exit(0)
}

if let only {
    let known = Set(allCases.map(\.name) + allCases.map(\.group))
    if let unknown = only.first(where: { !known.contains($0) }) { usageAndExit("no group or case named \(unknown)") }
}
guard access(fixtureExecutable, X_OK) == 0 else {
    usageAndExit("\(fixtureExecutable) is missing: build the whole package first (swift build -c release)")
}
guard getuid() == 0 else { usageAndExit("run as root: PID reuse (clone3 set_tid), tracing and namespaces need it") }

let selected = allCases.filter { only == nil || only!.contains($0.name) || only!.contains($0.group) }
var rows: [CaseRow] = []
let started = now()
for faultCase in selected {
    var argv = [selfExecutable, "--case", faultCase.name]
    if config.quick { argv.append("--quick") }
    if let n = config.iterations { argv += ["--iterations", "\(n)"] }
    printErr("[procmem-faults] \(faultCase.group)/\(faultCase.name) ...")
    let t0 = now()
    var row = CaseRow(name: faultCase.name)
    do {
        let child = try ChildProcess(argv, keepStderr: true, processGroup: true)
        let timeout = faultCase.timeout * (config.iterations != nil ? 2 : 1)
        var resultLine: String?
        var failure: String?
        let deadline = now() + timeout
        while resultLine == nil && failure == nil {
            do {
                let line = try child.readLine(timeout: max(deadline - now(), 0.01))
                if line.hasPrefix("@@result") { resultLine = line }
            } catch {
                failure = now() >= deadline ? "hang: no result within \(Int(timeout)) s" : "no result"
            }
        }
        if failure != nil && !child.reaped {
            if now() >= deadline { child.kill() }
        }
        if !child.reap(timeout: 20) { child.kill(); child.reap() }
        // Whatever the case left running in its process group (fixtures, helpers) goes with it.
        _ = kill(-child.pid, SIGKILL)
        let status = child.exitStatus
        let signaled = (status & 0x7f) != 0 && (status & 0x7f) != 0x7f
        if let resultLine, let parsed = CaseRow.parse(name: faultCase.name, line: resultLine[...]) {
            row = parsed
        } else {
            row.crashes = 1
            row.notes = signaled ? "CRASH: killed by signal \(status & 0x7f) (\(failure ?? ""))"
                                 : "CRASH: \(failure ?? "bad result") (exit \((status >> 8) & 0xff))"
        }
        if resultLine != nil && signaled {
            row.crashes += 1
            row.notes += "; CRASH: signal \(status & 0x7f) after the result"
        }
    } catch {
        row.crashes = 1
        row.notes = "CRASH: could not start the case: \(error)"
    }
    row.seconds = now() - t0
    rows.append(row)
    printErr("[procmem-faults]   \(row.passed)/\(row.tries) passed, \(row.crashes) crashes, \(row.misreads) misreads, \(row.bytesLost) bytes lost (\(format1(row.seconds)) s)")
}

print("")
printTable(rows)
let failedCount = rows.filter(\.failed).count
let skippedCount = rows.filter(\.skipped).count
let passedCount = rows.count - failedCount - skippedCount
print("")
print("\(passedCount) passed, \(failedCount) failed")
print("crashes: \(rows.reduce(0) { $0 + $1.crashes }), misreads: \(rows.reduce(0) { $0 + $1.misreads }), bytes lost: \(rows.reduce(0) { $0 + $1.bytesLost }), skipped: \(skippedCount), tries: \(rows.reduce(0) { $0 + $1.tries }), time: \(format1(now() - started)) s")
fflush(nil)
exit(failedCount == 0 ? 0 : 1)
