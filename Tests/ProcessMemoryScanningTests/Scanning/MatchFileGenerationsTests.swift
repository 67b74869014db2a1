import Foundation
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryScanning

@Suite("Match file generations") struct MatchFileGenerationsTests {
    func set(_ count: Int) -> MatchSet {
        var set = MatchSet(pid: 1, processStartTime: 2, content: .values(.u32, .little))
        let region = MatchSet.Region(start: 0x1000, end: 0x2000, permissions: [.read, .write], path: nil)
        for index in 0..<count { set.append(address: 0x1000 + UInt64(index * 4), width: 4, bits: UInt64(index), region: region) }
        return set
    }

    @Test("Saving keeps the replaced sets as FILE.1 … FILE.N, bounded by the limit; undo steps back one at a time")
    func saveAndUndo() throws {
        let directory = NSTemporaryDirectory() + "procmem-generations-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let generations = MatchFileGenerations(path: directory + "/m.scan", limit: 3)
        #expect(MatchFileGenerations.defaultLimit == 5)
        for count in 1...6 { try generations.save(set(count)) }
        #expect(try MatchSet(contentsOf: generations.path).count == 6)
        #expect(try generations.earlier() == [1, 2, 3].map { generations.path(ofGeneration: $0) })
        #expect(try MatchSet(contentsOf: generations.path(ofGeneration: 3)).count == 3)
        #expect(!FileManager.default.fileExists(atPath: generations.path(ofGeneration: 4)))
        try generations.undo()
        #expect(try MatchSet(contentsOf: generations.path).count == 5)
        #expect(try generations.earlier().count == 2)
        try generations.undo()
        try generations.undo()
        #expect(try MatchSet(contentsOf: generations.path).count == 3)
        #expect(try generations.earlier().isEmpty)
        #expect(throws: ProcessMemoryError.self) { try generations.undo() }
        #expect(try MatchSet(contentsOf: generations.path).count == 3, "a failed undo leaves the newest set")
        // Limit 0: a plain replace, nothing kept.
        try MatchFileGenerations(path: generations.path, limit: 0).save(set(9))
        #expect(try generations.earlier().isEmpty)
    }

    @Test("A generation that is a symbolic link is refused, never moved or written through")
    func linkRefused() throws {
        let directory = NSTemporaryDirectory() + "procmem-generations-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let generations = MatchFileGenerations(path: directory + "/m.scan", limit: 2)
        try generations.save(set(1))
        try FileManager.default.createSymbolicLink(atPath: generations.path(ofGeneration: 1), withDestinationPath: "/etc/passwd")
        #expect(throws: ProcessMemoryError.self) { try generations.save(set(2)) }
        #expect(try MatchSet(contentsOf: generations.path).count == 1, "the newest set is untouched")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: generations.path(ofGeneration: 1)) == "/etc/passwd")
    }
}
