// libFuzzer harness for the maps and smaps parsers and /proc/PID/stat: any bytes, no trap, and the
// invariants every parsed region must keep. Built by Scripts/fuzz.sh with -sanitize=fuzzer,address.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMapsParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
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
    _ = SmapsParser.parse(bytes)
    _ = ProcStat.parse(bytes)
    _ = ProcStatus.parse(bytes)
    return 0
}
