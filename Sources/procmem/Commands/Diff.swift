import ArgumentParser
import Glibc
import ProcessMemory

/// `procmem diff A B`: the ranges that changed between two dumps, or a dump and a live process.
struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the ranges that changed between two dumps, or a dump and a live process.",
        discussion: """
            A is a directory written by `procmem dump PID --output DIR`; B is another such directory \
            or a PID, whose memory is then read live (stopped with --stop while it is read). Bytes \
            are compared where both sides are readable. Prints one line per range:
              changed 0x…-0x… (N bytes)
              only-in-a 0x…-0x… (N bytes)     readable in A only
              only-in-b 0x…-0x… (N bytes)     readable in B only
            --json prints {"changed":[{"start":"0x…","end":"0x…","size":N}],"onlyInA":[…],\
            "onlyInB":[…],"bytesCompared":N}.
            """
    )

    @Argument(help: ArgumentHelp("A dump directory.", valueName: "a"), completion: .directory)
    var first: String

    @Argument(help: ArgumentHelp("A dump directory, or a PID to compare with live.", valueName: "b"), completion: .directory)
    var second: String

    @Option(help: StopOption.help)
    var stop: StopOption = .ptrace

    @OptionGroup var modeOption: ModeOption

    var mode: AccessModeOption { modeOption.mode }

    @OptionGroup var jsonOption: JSONOption

    var json: Bool { jsonOption.json }

    func run() throws {
        let diff: SnapshotDiff
        if access(second, F_OK) != 0, let pid = Int32(second) {
            let handle = try TargetProcess.open(pid, rights: .read)
            defer { handle.close() }
            do {
                diff = try SnapshotDiff.compare(directory: first, live: handle, stopMethod: stop.method, readMode: mode.readMode)
            } catch {
                throw ErrorReporting.fail(error, mode: mode)
            }
        } else {
            do {
                diff = try SnapshotDiff.compare(directory: first, directory: second)
            } catch {
                throw ErrorReporting.fail(error, mode: mode)
            }
        }
        if json {
            func ranges(_ list: [SnapshotDiff.Range]) -> [Report.Range] {
                list.map { Report.Range(start: Format.hex($0.start), end: Format.hex($0.end), size: $0.count) }
            }
            Output.line(JSONOutput.text(Report(changed: ranges(diff.changed), onlyInA: ranges(diff.onlyInFirst),
                                               onlyInB: ranges(diff.onlyInSecond), bytesCompared: diff.bytesCompared)))
            return
        }
        func lines(_ label: String, _ list: [SnapshotDiff.Range]) -> [String] {
            list.map { "\(label) \(Format.hex($0.start))-\(Format.hex($0.end)) (\($0.count) bytes)" }
        }
        Output.lines(lines("changed", diff.changed) + lines("only-in-a", diff.onlyInFirst) + lines("only-in-b", diff.onlyInSecond))
    }

    /// `--json`: the shape in the help above.
    struct Report: Encodable {
        struct Range: Encodable {
            var start: String
            var end: String
            var size: UInt64
        }
        var changed: [Range]
        var onlyInA: [Range]
        var onlyInB: [Range]
        var bytesCompared: UInt64
    }
}
