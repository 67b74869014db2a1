// libFuzzer harness for the dump-index reader (`index.json` of a dump directory, the JSON sidecar of
// a core): any bytes, no trap; whatever decodes is consistent (it passed DumpIndex.validate()) and
// round-trips. Built by Scripts/fuzz.sh with -sanitize=fuzzer,address, seeded from Fuzz/seeds/dump-index.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDumpIndex(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let index = try? DumpIndex.decode(bytes) else { return 0 }
    // What a reader relies on after validation: ordered, disjoint, inside the region, addressable.
    var previousEnd: UInt64 = 0
    for region in index.regions {
        precondition(region.start < region.end && region.start >= previousEnd, "regions overlap or are out of order")
        previousEnd = region.end
        for segment in region.segments {
            precondition(segment.start >= region.start && segment.end <= region.end && segment.start < segment.end,
                         "a segment lies outside its region")
            let length = segment.end - segment.start
            precondition(length <= UInt64(Int64.max) && segment.fileOffset <= UInt64(Int64.max) - length, "a segment is not addressable")
            if let file = segment.file {
                let parts = file.split(separator: "/", omittingEmptySubsequences: false)
                precondition(!parts.contains { $0.isEmpty || $0 == "." || $0 == ".." }, "a segment's file escapes the dump")
            }
        }
    }
    _ = index.bytesDumped
    _ = index.bytesFailed
    _ = index.failedRanges
    guard let encoded = try? index.encoded(), let again = try? DumpIndex.decode(encoded) else {
        preconditionFailure("a decoded index does not round-trip")
    }
    precondition(again == index, "a decoded index changed on round trip")
    return 0
}
