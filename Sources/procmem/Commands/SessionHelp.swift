/// The text of `help` and `help COMMAND` in a session.
enum SessionHelp {
    static let commands: [(name: String, usage: String, text: String)] = [
        ("VALUE", "VALUE", "The first time, scans for VALUE (of the session's type); afterwards keeps the matches that now equal it. After `snapshot`, compares with it."),
        ("=", "= N | != N | < N | > N", "Keeps values equal to, other than, below, above N (`<100` works too). Alone: = unchanged, != changed, < decreased, > increased."),
        ("+N", "+N | -N | + N | - N", "Keeps values that grew or shrank by exactly N since the last step. `+` and `-` alone: increased, decreased. Before any scan, -5 is a value to scan for."),
        ("A..B", "A..B", "Keeps values in the closed range A ... B."),
        ("changed", "changed | unchanged | increased | decreased", "Compares with the last step (the previous values or the snapshot)."),
        ("snapshot", "snapshot", "Records the selected memory (to a private temporary file) for an unknown value; then narrow with changed, decreased, ... as it changes in the program."),
        ("list", "list [N]", "Shows the first N matches (20) with their value now, the value at the last step, and where they lie."),
        ("delete", "delete N…", "Removes matches by number (0 3 5-7). Undoable."),
        ("undo", "undo", "Goes back one step (scan, filter, delete, reset, type); 16 steps are kept."),
        ("reset", "reset", "Forgets the matches, to start a new scan. Undoable."),
        ("type", "type [T]", "Shows or sets the value type: u8 i8 u16 i16 u32 i32 u64 i64 f32 f64 any-int. Setting it resets the matches (undoable)."),
        ("set", "set VALUE [N…] | set N[,N…]=VALUE …", "Writes VALUE to every match, or to the matches named; `set 0,3=42 5=7` gives each group its own value."),
        ("freeze", "freeze [N…] [=VALUE]", "Keeps the matches named (all, if at most 100) at VALUE, or at their value now, in the background while you go on. `freeze 0 =999`."),
        ("unfreeze", "unfreeze [%ID…]", "Stops freezes (all, or those with the ids `jobs` shows)."),
        ("watch", "watch [N…]", "Reports changes of the matches named, before each prompt, in the background."),
        ("unwatch", "unwatch [%ID…]", "Stops watches."),
        ("stop", "stop [%ID…]", "Stops background jobs of any kind."),
        ("jobs", "jobs", "Lists the background jobs and what they did since the last prompt."),
        ("pointer", "pointer scan N", "Finds pointer chains from the program's static data to match N (chains based in the program itself first); `save` records the best one, so the entry works after a restart."),
        ("save", "save FILE [N…] [name=NAME] [chain=K]", "Adds cheat-table entries for the matches to FILE (created if missing): the pointer chain found for it (the best, or chain K of `pointer scan`), else module or region offset; a frozen match keeps its value. Use it with `procmem table`."),
        ("sleep", "sleep TIME", "Waits (2, 500ms), for scripts: background jobs keep running. Ctrl-C ends the wait."),
        ("help", "help [COMMAND]", "This list, or one command."),
        ("quit", "quit", "Ends the session (also Ctrl-D). Freezes stop."),
    ]

    /// Up to the first ". " (so `A..B` and `...` stay whole).
    static func firstSentence(_ text: String) -> String {
        var previous: Character = " "
        var out = ""
        for character in text {
            if previous == "." && character == " " { return String(out.dropLast()) }
            out.append(character)
            previous = character
        }
        return out.hasSuffix(".") ? String(out.dropLast()) : out
    }

    static func text(_ topic: String?) -> [String] {
        if let topic {
            let key = topic.lowercased()
            let found = commands.first { $0.name.lowercased() == key || $0.usage.lowercased().hasPrefix(key + " ") || $0.usage.lowercased() == key }
                ?? commands.first { $0.usage.lowercased().contains(key) }
            guard let found else { return ["no command '\(Format.printable(topic))'; `help` lists them"] }
            return [found.usage, "  " + found.text]
        }
        var lines = ["Commands (separate several with ;). Ctrl-C stops a running scan, never the session."]
        let width = commands.map(\.usage.count).max() ?? 0
        for command in commands {
            lines.append("  " + Format.left(command.usage, width) + "  " + Self.firstSentence(command.text))
        }
        return lines
    }
}

extension SessionShell {
    func help(_ topic: String?) {
        Output.lines(SessionHelp.text(topic))
    }
}
