import ArgumentParser
import ProcessMemory

/// `procmem undo FILE` and `procmem redo FILE`: step a match file back or forward one generation.
struct Undo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Step a match file back one generation (as `procmem rescan --undo FILE`).",
        discussion: """
            FILE.1 becomes FILE again, FILE.2 becomes FILE.1, and so on. The set that was FILE is \
            kept as FILE.redo.1, so `procmem redo FILE` brings it back; a new rescan or snapshot \
            saved to FILE drops what could be redone. Every step is a rename in FILE's directory: \
            an interrupted undo leaves every set on disk, and the next undo or redo makes each \
            reachable again.

            --json prints {"file": FILE, "earlierGenerations": N, "redoable": M}: how many \
            generations are left to undo and to redo.
            """
    )

    @OptionGroup var options: GenerationFileOptions

    func run() throws {
        try GenerationStep.run(options, forward: false)
    }
}

/// `procmem redo FILE`.
struct Redo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Step a match file forward again after `procmem undo`.",
        discussion: """
            FILE.redo.1 (the set the last undo stepped back from) becomes FILE again, and FILE \
            becomes FILE.1 as a rescan would keep it. Redo works until a new rescan or snapshot is \
            saved to FILE. --json prints {"file": FILE, "earlierGenerations": N, "redoable": M}.
            """
    )

    @OptionGroup var options: GenerationFileOptions

    func run() throws {
        try GenerationStep.run(options, forward: true)
    }
}

/// What `undo` and `redo` take: the match file, how many generations it keeps, and --json.
struct GenerationFileOptions: ParsableArguments {
    @Argument(help: ArgumentHelp("A match or snapshot file saved by scan or rescan.", valueName: "file"), completion: .file())
    var file: String

    @Option(help: ArgumentHelp("How many earlier generations FILE keeps (as rescan --keep).", valueName: "n"))
    var keep: Int = MatchFileGenerations.defaultLimit

    @OptionGroup var jsonOption: JSONOption

    func validate() throws {
        if keep < 0 || keep > 1000 { throw ValidationError("--keep must be 0…1000") }
    }
}

/// The one step behind `undo` and `redo`, and what they print.
enum GenerationStep {
    /// `undo --json` and `redo --json`: {"file","earlierGenerations","redoable"}.
    struct Report: Encodable {
        var file: String
        var earlierGenerations: Int
        var redoable: Int
    }

    static func run(_ options: GenerationFileOptions, forward: Bool) throws {
        let file = options.file, keep = options.keep, json = options.jsonOption.json
        let generations = MatchFileGenerations(path: file, limit: keep)
        let redo = MatchFileRedo(generations)
        do {
            if forward { try redo.redo() } else { try redo.undo() }
        } catch {
            throw ErrorReporting.fail(error)
        }
        let earlier = (try? generations.earlier().count) ?? 0
        let redoable = (try? redo.available()) ?? 0
        if json {
            Output.line(JSONOutput.text(Report(file: file, earlierGenerations: earlier, redoable: redoable)))
        } else {
            Output.line("\(Format.printable(file)): stepped \(forward ? "forward" : "back") one generation; \(earlier) earlier, \(redoable) to redo")
        }
    }
}
