import ArgumentParser

/// `PID`: the process a command reads or writes, its first positional argument.
struct ProcessOption: ParsableArguments {
    @Argument(help: "The process ID.")
    var pid: Int32
}

/// `--json`: print JSON instead of text, in the shape the command's help describes.
struct JSONOption: ParsableArguments {
    @Flag(help: "Print JSON (the shape is described above).")
    var json = false
}

/// `--mode debugger|protect`: how memory is accessed.
struct ModeOption: ParsableArguments {
    @Option(help: AccessModeOption.help)
    var mode: AccessModeOption = .debugger
}
