// A sampling loop as a profiler would write it, on ProcessMemoryCore alone: one handle, one
// reusable ReadBatch, no Foundation and no Dispatch. `Scripts/check-core-links.sh` builds it and
// checks with ldd that neither library is linked.
//
// Usage: core-sampler PID [SAMPLES]   reads the first 8 bytes of the target's stack and heap
// regions SAMPLES times (default 100) and prints how many reads succeeded.
import Glibc
import ProcessMemoryCore

let arguments = CommandLine.arguments
guard arguments.count >= 2, let pid = Int32(arguments[1]) else {
    print("usage: core-sampler PID [SAMPLES]")
    exit(64)
}
let samples = arguments.count >= 3 ? Int(arguments[2]) ?? 100 : 100

do {
    let handle = try ProcessHandle(pid: pid)
    let regions = try handle.memoryMap().regions.filter { $0.kind == .stack || $0.kind == .heap }
    let batch = ReadBatch()
    var succeeded = 0
    for _ in 0..<samples {
        batch.removeAll()
        let entries = regions.map { batch.add(address: $0.start, count: 8) }
        try handle.read(batch)
        succeeded += entries.filter { batch.load(UInt64.self, $0) != nil }.count
    }
    print("\(succeeded) of \(samples * regions.count) reads succeeded")
} catch {
    print("core-sampler: \(error)")
    exit(1)
}
