import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing
import ProcessMemoryCore
import ProcessMemoryDumps

/// Issue 16: a partial core is marked partial in the core file itself, not only in its sidecar.
@Suite("Core status note")
struct CoreStatusTests {
    /// The text of the core's `PROCMEM-STATUS` note.
    static func status(_ core: String) throws -> String {
        let notes = try CoreRegistersTests.notes(ofCore: core)
        let note = try #require(notes.first { $0.name == "PROCMEM-STATUS" && $0.type == 1 }, "no status note in \(notes.map(\.name))")
        #expect(note.descriptor.count == 256)
        return String(decoding: note.descriptor.prefix { $0 != 0 }, as: UTF8.self)
    }

    @Test("a whole core says complete, a cancelled one says partial with the reason")
    func completeAndPartial() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let whole = DumpSupport.scratch("status-whole")
        let cut = DumpSupport.scratch("status-cut")
        defer {
            DumpSupport.remove(whole)
            DumpSupport.remove(cut)
        }
        let index = try handle.dumpCore(to: whole, options: DumpOptions(stopMethod: .signal))
        #expect(index.complete)
        #expect(try Self.status(whole) == "complete")
        var options = DumpOptions(stopMethod: .signal)
        options.cancellation = Cancellation { true }
        let partial = try handle.dumpCore(to: cut, options: options)
        #expect(!partial.complete)
        #expect(try Self.status(cut) == "partial: interrupted")
    }
}
