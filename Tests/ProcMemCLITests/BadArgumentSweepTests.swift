import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing

/// Every option and positional argument of every subcommand, as `procmem --experimental-dump-help`
/// lists them (so new options are swept without editing this file), given values that are wrong in
/// the ways people and scripts get them wrong. Each run must end with a documented exit code and an
/// error message: never a signal (a trap), never a hang.
@Suite("Bad-argument sweep")
struct BadArgumentSweepTests {
    /// Values that are wrong for nearly every argument: empty, negative, past UInt64, bad hex, not a
    /// number, an overflowing float, a 5000-digit number, a control character, and a bare `-`.
    static let badValues = ["", "-1", "18446744073709551616", "0xZZ", "nan", "1e999",
                            String(repeating: "9", count: 5000), "\u{1}", "-"]

    /// The exit codes `procmem --help` documents.
    static let documented: Set<Int32> = Set([0, 1, 64] + Array(10...21))

    /// Subcommands that run until stopped when their arguments are valid.
    static let runsUntilStopped: Set<String> = ["watch", "freeze"]

    /// One argument of a subcommand: its option name (nil for a positional) and its position.
    struct Argument {
        var option: String?
        var positionalIndex: Int?
    }

    /// The subcommand paths and their arguments that take values, from the help dump.
    static func commandTree() throws -> [(path: [String], arguments: [Argument])] {
        let run = try runProcmem(["--experimental-dump-help"], timeout: 30, in: FileManager.default.temporaryDirectory)
        let object = try JSONSerialization.jsonObject(with: Data(run.stdout))
        let root = try #require((object as? [String: Any])?["command"] as? [String: Any])
        var result: [(path: [String], arguments: [Argument])] = []
        func walk(_ command: [String: Any], _ path: [String]) {
            var arguments: [Argument] = []
            var positional = 0
            for argument in command["arguments"] as? [[String: Any]] ?? [] {
                let kind = argument["kind"] as? String
                let names = (argument["names"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
                if kind == "option", let name = names.first(where: { $0.count > 1 }) ?? names.first {
                    arguments.append(Argument(option: (name.count > 1 ? "--" : "-") + name))
                } else if kind == "positional" {
                    arguments.append(Argument(positionalIndex: positional))
                    positional += 1
                }
            }
            let subcommands = command["subcommands"] as? [[String: Any]] ?? []
            // Group commands (object, pointer) only dispatch to their subcommands.
            if !path.isEmpty && path != ["help"] && subcommands.isEmpty { result.append((path, arguments)) }
            for sub in subcommands {
                if let name = sub["commandName"] as? String { walk(sub, path + [name]) }
            }
        }
        walk(root, [])
        return result
    }

    @Test("bad values for every argument give a documented exit code and an error line, never a trap or a hang")
    func sweep() throws {
        let fixture = try Fixture()
        defer { fixture.stop() }
        let pid = fixture.pidArgument
        let values = hex(try fixture.layout.region("values").address)
        let pattern = hex(try fixture.layout.region("pattern").address)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-sweep-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        // A valid invocation of each subcommand; the sweep breaks one argument of it at a time.
        let baselines: [String: [String]] = [
            "maps": [pid], "info": [pid], "read": [pid, pattern, "16"], "write": [pid, values, "--hex", "00"],
            "object create": ["sweep", "4096"], "object read": ["sweep"], "object write": ["sweep", "--hex", "00"],
            "object info": ["sweep"],
            "pointer resolve": [pid, pattern], "pointer scan": [pid, pattern, "--depth", "1", "--max-offset", "64"],
            "pointer rescan": [pid, "none.chains", "--target", pattern],
            "watch": [pid, values, "--as", "u32"], "freeze": [pid, values, "7", "--as", "u32"],
            "dump": [pid, "--output", "out"], "diff": ["a", "b"], "scan": [pid, "1", "--as", "u32"],
            "rescan": ["none.matches"], "undo": ["none.matches"], "redo": ["none.matches"],
            "symbols": [pid, "main"], "symbolize": [pid, pattern],
            "session": [pid, "-c", "list"],
            "table show": [pid, "none.table"], "table watch": [pid, "none.table"],
            "table freeze": [pid, "none.table"], "table apply": [pid, "none.table"],
        ]
        var runs = 0
        var failures: [String] = []
        for (path, arguments) in try Self.commandTree() {
            let key = path.joined(separator: " ")
            let baseline = baselines[key] ?? []
            if baselines[key] == nil { Issue.record("no baseline for `procmem \(key)`: add one so its arguments are swept") }
            for argument in arguments {
                for bad in Self.badValues {
                    var argv = baseline
                    if let option = argument.option {
                        if let at = argv.firstIndex(of: option), at + 1 < argv.count { argv[at + 1] = bad } else { argv += [option, bad] }
                    } else if let index = argument.positionalIndex {
                        let positions = argv.indices.filter { i in
                            !argv[i].hasPrefix("--") && (i == 0 || !argv[i - 1].hasPrefix("--"))
                        }
                        if index < positions.count { argv[positions[index]] = bad } else { argv.append(bad) }
                    }
                    let full = path + argv
                    let timeout: Double = Self.runsUntilStopped.contains(key) ? 1.5 : 60
                    let run = try runProcmem(full, timeout: timeout, in: scratch)
                    runs += 1
                    let shown = "procmem " + full.map { $0.count > 40 ? String($0.prefix(12)) + "…(\($0.count))" : $0 }
                        .map { $0.debugDescription }.joined(separator: " ")
                    if run.timedOut {
                        if !Self.runsUntilStopped.contains(key) { failures.append("\(shown): no exit within \(Int(timeout)) s") }
                        continue
                    }
                    if let signal = run.signal {
                        failures.append("\(shown): killed by signal \(signal): \(run.stderr.prefix(300))")
                        continue
                    }
                    if !Self.documented.contains(run.status) { failures.append("\(shown): undocumented exit code \(run.status)") }
                    if run.status != 0 && run.stderr.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                        failures.append("\(shown): exit \(run.status) with nothing on stderr")
                    }
                    for marker in ["Fatal error", "Stack dump", "Illegal instruction", "Assertion failed"]
                    where run.stderr.contains(marker) {
                        failures.append("\(shown): stderr says \(marker)")
                    }
                }
            }
        }
        #expect(runs > 300, "the sweep ran only \(runs) invocations: the help dump lists fewer arguments than expected")
        let report = "\(failures.count) of \(runs) runs failed:\n" + failures.prefix(40).joined(separator: "\n")
        #expect(failures.isEmpty, Comment(rawValue: report))
    }
}
