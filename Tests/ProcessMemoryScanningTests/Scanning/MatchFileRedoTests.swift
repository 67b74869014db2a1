import Foundation
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryScanning

@Suite("Match file undo and redo") struct MatchFileRedoTests {
    func set(_ count: Int) -> MatchSet {
        var set = MatchSet(pid: 1, processStartTime: 2, content: .values(.u32, .little))
        let region = MatchSet.Region(start: 0x1000, end: 0x2000, permissions: [.read, .write], path: nil)
        for index in 0..<count { set.append(address: 0x1000 + UInt64(index * 4), width: 4, bits: UInt64(index), region: region) }
        return set
    }

    func directory() throws -> String {
        let path = NSTemporaryDirectory() + "procmem-redo-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        return path
    }

    /// The match count of every set file in `directory`, by name (temporary files left out).
    func files(_ directory: String) throws -> [String: Int] {
        var found: [String: Int] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) where !name.hasPrefix(".") {
            found[name] = try MatchSet(contentsOf: directory + "/" + name).count
        }
        return found
    }

    struct Crash: Error {}

    @Test("undo keeps the newest set for redo; redo steps forward until a new save drops the redo chain")
    func undoRedo() throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let generations = MatchFileGenerations(path: directory + "/m.scan", limit: 3)
        let redo = MatchFileRedo(generations)
        for count in 1...4 { try generations.save(set(count)) }
        #expect(throws: ProcessMemoryError.self) { try redo.redo() }
        try redo.undo()
        try redo.undo()
        #expect(try MatchSet(contentsOf: generations.path).count == 2)
        #expect(try redo.available() == 2)
        #expect(try generations.earlier().count == 1)
        try redo.redo()
        #expect(try MatchSet(contentsOf: generations.path).count == 3)
        #expect(try MatchSet(contentsOf: generations.path(ofGeneration: 1)).count == 2)
        try redo.redo()
        #expect(try MatchSet(contentsOf: generations.path).count == 4)
        #expect(try redo.available() == 0)
        #expect(try files(directory) == ["m.scan": 4, "m.scan.1": 3, "m.scan.2": 2, "m.scan.3": 1])
        #expect(throws: ProcessMemoryError.self) { try redo.redo() }
        // A save after an undo drops what could be redone.
        try redo.undo()
        #expect(try redo.available() == 1)
        try generations.save(set(7))
        #expect(try redo.available() == 0)
        #expect(try files(directory) == ["m.scan": 7, "m.scan.1": 3, "m.scan.2": 2, "m.scan.3": 1])
        // Redo beyond the limit drops the oldest generation, as a save does.
        try redo.undo()
        try redo.redo()
        #expect(try files(directory) == ["m.scan": 7, "m.scan.1": 3, "m.scan.2": 2, "m.scan.3": 1])
    }

    @Test("A crash after any step of undo or redo loses no set, and the next undo or redo leaves every set reachable")
    func crashBetweenSteps() throws {
        for forward in [false, true] {
            var step = 0
            while true {
                let directory = try directory()
                defer { try? FileManager.default.removeItem(atPath: directory) }
                let generations = MatchFileGenerations(path: directory + "/m.scan", limit: 5)
                let redo = MatchFileRedo(generations)
                for count in 1...4 { try generations.save(set(count)) }
                try redo.undo()
                try redo.undo()
                let before = try files(directory)
                var taken = 0
                var crashed = false
                do {
                    let stop = step
                    let afterStep = { () throws(ProcessMemoryError) in
                        taken += 1
                        if taken > stop { throw ProcessMemoryError(.invalidArguments, message: "simulated crash") }
                    }
                    if forward { try redo.redo(afterStep: afterStep) } else { try redo.undo(afterStep: afterStep) }
                } catch {
                    crashed = true
                }
                let after = try files(directory)
                #expect(Set(after.values) == Set(before.values), "step \(step) of \(forward ? "redo" : "undo"): \(before) became \(after)")
                #expect(after.count == before.count)
                if !crashed { break }
                // The next command closes the gap the crash left: every set is under a name the
                // chains reach (FILE, FILE.1 …, FILE.redo.1 …, no gaps), and none is lost.
                if forward { try? redo.redo() } else { try? redo.undo() }
                let finished = try files(directory)
                #expect(Set(finished.values) == Set(before.values), "step \(step) of \(forward ? "redo" : "undo")")
                let reachable = 1 + (try generations.earlier().count) + (try redo.available())
                #expect(reachable == finished.count, "step \(step) of \(forward ? "redo" : "undo"): \(finished)")
                step += 1
            }
            #expect(step >= 3, "the crash was tried after every step")
        }
    }
}
