import ArgumentParser

/// The command-line habits argument-parser does not provide by itself: a suggestion for a mistyped
/// subcommand, and negative numbers as positional values.
enum CommandLineHabits {
    /// `arguments` with each bare negative number that is not an option's value (`scan PID -5 --as
    /// i32`) moved after a `--` at the end, where argument-parser reads it as a positional value
    /// rather than an unknown short option. Every procmem command takes its value as its last
    /// positional argument, so the order of positionals is kept. Unchanged when `--` is already there.
    static func movingNegativeNumbers(_ arguments: [String]) -> [String] {
        guard !arguments.contains("--") else { return arguments }
        var kept: [String] = []
        var moved: [String] = []
        for (index, argument) in arguments.enumerated() {
            let previous = index > 0 ? arguments[index - 1] : ""
            if isNegativeNumber(argument) && !(previous.hasPrefix("-") && !isNegativeNumber(previous)) {
                moved.append(argument)
            } else {
                kept.append(argument)
            }
        }
        return moved.isEmpty ? arguments : kept + ["--"] + moved
    }

    /// `-5`, `-0x10`, `-2.5`, `-.5`, `-1e3`, `-inf`: text no option of procmem can start with.
    static func isNegativeNumber(_ text: String) -> Bool {
        guard text.hasPrefix("-"), !text.hasPrefix("--") else { return false }
        let body = text.dropFirst()
        if body.lowercased() == "inf" || body.lowercased() == "infinity" { return true }
        guard let first = body.first, first.isASCII, first.isNumber || first == "." else { return false }
        return body.allSatisfy { $0.isASCII && ($0.isHexDigit || "._xXpP+-".contains($0)) }
    }

    /// A message naming the closest subcommand when `arguments` starts with (or, below a command
    /// with subcommands, continues with) a word that is no subcommand; `nil` otherwise.
    static func unknownSubcommandMessage(_ arguments: [String], root: any ParsableCommand.Type) -> String? {
        var command = root
        var path = [root.configuration.commandName ?? "procmem"]
        for word in arguments {
            let subcommands = command.configuration.subcommands
            guard !subcommands.isEmpty, !word.hasPrefix("-") else { return nil }
            let names = subcommands.map { $0._commandName } + ["help"]
            if let next = subcommands.first(where: { $0._commandName == word }) {
                command = next
                path.append(word)
                continue
            }
            if word == "help" { return nil }
            let closest = names.map { ($0, editDistance($0, word)) }.min { $0.1 < $1.1 }
            var message = "usage: '\(word)' is not a subcommand of \(path.joined(separator: " "))"
            if let closest, closest.1 <= max(2, word.count / 3) {
                message += "; did you mean '\(closest.0)'?"
            } else {
                message += "; the subcommands are \(names.dropLast().joined(separator: ", "))"
            }
            return message
        }
        return nil
    }

    /// The Levenshtein distance between `a` and `b`.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
