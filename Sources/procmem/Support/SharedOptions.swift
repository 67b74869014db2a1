import ArgumentParser

/// `PID`: the process a command reads or writes, its first positional argument.
struct ProcessOption: ParsableArguments {
    @Argument(help: "The process ID.", completion: PIDCompletion.kind)
    var pid: Int32
}

/// `--json`: print JSON instead of text, in the shape the command's help describes.
struct JSONOption: ParsableArguments {
    @Flag(help: ArgumentHelp(
        "Print JSON (the shape is described above).",
        discussion: "One line from Swift's JSONEncoder. Since 0.9.0 keys come in alphabetical order rather than the order shown above, and a whole floating-point value prints without a fraction (3, not 3.0); key names, nesting and value types are unchanged."))
    var json = false
}

/// `--mode debugger|protect`: how memory is accessed.
struct ModeOption: ParsableArguments {
    @Option(help: AccessModeOption.help)
    var mode: AccessModeOption = .debugger
}
