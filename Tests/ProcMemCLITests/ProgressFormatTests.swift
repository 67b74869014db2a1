import Glibc
import ArgumentParser
import Testing
@testable import procmem

@Suite("Progress line and match text formatting")
struct ProgressFormatTests {
    @Test("The line shows done / total, the percentage, the rate and the time left")
    func line() {
        let gib: UInt64 = 1 << 30
        #expect(ProgressReporter.line(label: "scan", done: gib / 2, total: gib + gib / 2, elapsed: 2)
                == "scan: 512.0 MiB / 1.5 GiB (33%), 256.0 MiB/s, 4s left")
        #expect(ProgressReporter.line(label: "rescan", done: 4096, total: 10_000, elapsed: 2, unit: .items("matches"))
                == "rescan: 4096 / 10000 matches (40%), 2048 matches/s, 3s left")
        // Unknown total: what is done and the rate only; finished: no time left.
        #expect(ProgressReporter.line(label: "dump", done: 2048, total: 0, elapsed: 1) == "dump: 2.0 KiB, 2.0 KiB/s")
        #expect(ProgressReporter.line(label: "dump", done: 100, total: 100, elapsed: 1) == "dump: 100 B / 100 B (100%), 100 B/s")
        #expect(ProgressReporter.duration(45) == "45s")
        #expect(ProgressReporter.duration(185) == "3m 05s")
        #expect(ProgressReporter.duration(7260) == "2h 01m")
        // Nothing done yet: no rate to project from, so no time left; no division by zero.
        #expect(ProgressReporter.line(label: "scan", done: 0, total: 10, elapsed: 0) == "scan: 0 B / 10 B (0%), 0 B/s")
    }

    @Test("Matched bytes become text: UTF-8 as it is, other bytes as \\xNN, ASCII UTF-16LE decoded")
    func matchText() {
        #expect(ScanReport.terminalText(of: Array("héllo\\".utf8)) == "héllo\\\\")
        #expect(ScanReport.terminalText(of: [0x41, 0xff, 0x42, 0x00]) == "A\\xffB\\x00")
        #expect(ScanReport.terminalText(of: [0x4e, 0, 0x45, 0, 0x45, 0]) == "NEE")
        #expect(ScanReport.terminalText(of: [0x1b, 0x5b, 0x41, 0x9b]) == "\\e[A\\x9b")
        #expect(ScanReport.text(of: [0x41, 0xff]) == "A\u{FFFD}")
        #expect(ScanReport.text(of: [0x4e, 0, 0x45, 0]) == "NE")
    }

    @Test("PID completion: zsh and fish get the command name as the description, bash the bare pid")
    func pidCompletion() {
        let pid = String(getpid())
        let zsh = PIDCompletion.candidates(prefix: pid, shell: .zsh)
        #expect(zsh.contains { $0.hasPrefix(pid + ":") && $0.count > pid.count + 1 }, "\(zsh)")
        #expect(PIDCompletion.candidates(prefix: pid, shell: .fish).contains { $0.hasPrefix(pid + "\t") })
        #expect(PIDCompletion.candidates(prefix: pid, shell: .bash).contains(pid))
        #expect(PIDCompletion.candidates(prefix: "x", shell: .bash).isEmpty)
    }
}
