import ArgumentParser
import Glibc

/// `procmem`: read and write the memory of a live Linux process, built on ProcessMemory.
@main
struct ProcMem: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "procmem",
        abstract: "Read and write the memory of a live Linux process.",
        discussion: """
            ADDRESS may be 0x hex (0x7f1234560000), decimal, or REGION+OFFSET / REGION-OFFSET, where \
            REGION is a bracketed name ([heap], [stack], [vdso], [anon:NAME]), a path, or the file \
            name of a mapped file (libc.so.6+0x1000); it means the start of the first region with that \
            name. Wherever an ADDRESS is taken, a quoted pointer chain works too: \
            "game+0x4078 -> +0x18 -> +0x0" reads the 8-byte pointer at each address and adds the next \
            offset; when a hop cannot be read, the error names the hop, its address and why. Errors are one line on stderr, `procmem: <code>: <message> (details); hint: what to do \
            next`.

            --json output is one line from one JSONEncoder: since 0.9.0 its keys come in alphabetical \
            order and whole floating-point values print without a fraction (3, not 3.0); the key \
            names, nesting and value types each command documents are unchanged.

            EXIT STATUS
            \(ExitCodes.helpText)
            """,
        version: ProcMem.version,
        subcommands: [Maps.self, Read.self, Write.self, Info.self, Object.self, Pointer.self, Watch.self, Freeze.self, Dump.self, Diff.self, Scan.self, Rescan.self, Undo.self, Redo.self, Symbols.self, Symbolize.self, Session.self, Table.self]
    )

    /// The version `procmem --version` prints: the one place it is written.
    static let version = "0.9.0"

    /// Runs the command line after the habits argument-parser lacks (see ``CommandLineHabits``):
    /// a mistyped subcommand is a usage error naming the closest one, and a negative value such as
    /// `scan PID -5 --as i32` is read as a value, not an option.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let message = CommandLineHabits.unknownSubcommandMessage(arguments, root: ProcMem.self) {
            Output.error(message)
            Glibc.exit(ExitCodes.usage)
        }
        main(CommandLineHabits.movingNegativeNumbers(arguments))
    }
}
