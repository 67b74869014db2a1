import ArgumentParser

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
            name. Errors are one line on stderr, `procmem: <code>: <message> (details); hint: what to do \
            next`.

            EXIT STATUS
            \(ExitCodes.helpText)
            """,
        subcommands: [Maps.self, Read.self, Write.self, Info.self, Object.self, ResolveAddress.self, Pointer.self, Watch.self, Freeze.self, Dump.self, Diff.self, Scan.self, Rescan.self, Symbols.self, Symbolize.self]
    )
}
