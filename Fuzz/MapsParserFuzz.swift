// libFuzzer harness for the maps and smaps parsers and /proc/PID/stat: any bytes, no trap, and the
// invariants every parsed region must keep. Built by Scripts/fuzz.sh with -sanitize=fuzzer,address.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMapsParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // One parser per input, chosen by its length, so each execution parses once: maps (half the
    // inputs), smaps, /proc/PID/stat, /proc/PID/status.
    switch size % 6 {
    case 3: _ = SmapsParser.parse(bytes); return 0
    case 4: _ = ProcStat.parse(bytes); return 0
    case 5: _ = ProcStatus.parse(bytes); return 0
    default: break
    }
    let result = MapsParser.parse(bytes)
    for region in result.regions {
        precondition(region.start <= region.end, "a region ends before it starts")
        precondition(region.path.map { !$0.isEmpty } ?? true, "an empty path must be nil")
        _ = region.description
        _ = region.kind
    }
    let lines = bytes.split(separator: 10, omittingEmptySubsequences: true).count
    precondition(result.regions.count + result.malformedLines == lines, "every line is a region or counted malformed")
    let map = MemoryMap(regions: result.regions)
    if let first = bytes.first { _ = map.region(containing: UInt64(first) << 12) }
    return 0
}
