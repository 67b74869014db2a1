import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing
import ProcessMemoryCore
import ProcessMemoryDumps

/// An edited or hostile `index.json` is refused before anything is read through it.
@Suite("Dump index validation")
struct DumpIndexValidationTests {
    /// A real dump of the fixture, its directory and its index.
    static func realDump(_ name: String) throws -> (directory: String, index: DumpIndex, fixture: Fixture) {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let directory = DumpSupport.scratch(name)
        let index = try handle.dump(toDirectory: directory)
        return (directory, index, fixture)
    }

    /// The first region with a segment, as an index into `regions`.
    static func regionWithSegment(_ index: DumpIndex) throws -> Int {
        try #require(index.regions.firstIndex { !$0.segments.isEmpty })
    }

    @Test("a real dump's index passes and survives a round trip")
    func realIndexIsValid() throws {
        let (directory, index, _) = try Self.realDump("validate-real")
        defer { DumpSupport.remove(directory) }
        try index.validate()
        #expect(try DumpIndex.decode(try index.encoded()) == index)
    }

    @Test("each kind of inconsistency is refused with invalidArguments", arguments: [
        "parent directory", "absolute path", "empty component", "segment outside region",
        "overlapping segments", "reversed segment", "offset beyond any file", "overlapping regions",
        "processed past the end", "failed range outside region", "unknown format", "version 2",
    ])
    func inconsistencies(_ kind: String) throws {
        let (directory, index, _) = try Self.realDump("validate-\(kind.replacingOccurrences(of: " ", with: "-"))")
        defer { DumpSupport.remove(directory) }
        let r = try Self.regionWithSegment(index)
        var bad = index
        let region = index.regions[r]
        let segment = region.segments[0]
        switch kind {
        case "parent directory": bad.regions[r].segments[0].file = "../../etc/passwd"
        case "absolute path": bad.regions[r].segments[0].file = "/etc/passwd"
        case "empty component": bad.regions[r].segments[0].file = "regions//x.bin"
        case "segment outside region": bad.regions[r].segments[0].end = region.end + 4096
        case "overlapping segments": bad.regions[r].segments.append(segment)
        case "reversed segment":
            bad.regions[r].segments[0].start = segment.end
            bad.regions[r].segments[0].end = segment.start
        case "offset beyond any file": bad.regions[r].segments[0].fileOffset = UInt64.max - 10
        case "overlapping regions": bad.regions.insert(region, at: r)
        case "processed past the end": bad.regions[r].processedUpTo = region.end + 1
        case "failed range outside region":
            bad.regions[r].failed = [.init(start: region.start - 4096, end: region.start, code: .notFound, reason: "edited")]
        case "unknown format": bad.format = "elf"
        case "version 2": bad.version = 2
        default: Issue.record("unknown case \(kind)")
        }
        #expect(bad != index)
        let error = try #require(throws: ProcessMemoryError.self) { try bad.validate() }
        #expect(error.code == .invalidArguments)
        #expect(error.message.contains("inconsistent"))
        // The same through the file a diff reads: refused before any region file is opened.
        let encoded = try bad.encoded()
        try Data(encoded).write(to: URL(fileURLWithPath: directory + "/" + DumpIndex.fileName))
        let diffError = try #require(throws: ProcessMemoryError.self) {
            try SnapshotDiff.compare(directory: directory, directory: directory)
        }
        #expect(diffError.code == .invalidArguments)
    }
}
