import ArgumentParser
import ProcessMemory

/// `--stop ptrace|signal|freezer|none`: how the target is held still while it is read.
enum StopOption: String, CaseIterable, Sendable, ExpressibleByArgument {
    case ptrace, signal, freezer, none

    var method: StopMethod {
        switch self {
        case .ptrace: return .ptrace
        case .signal: return .signal
        case .freezer: return .cgroupFreezer
        case .none: return .none
        }
    }

    static let help: ArgumentHelp = """
        ptrace (default): PTRACE_SEIZE+INTERRUPT every thread (gives registers; fails under another \
        debugger); signal: SIGSTOP/SIGCONT; freezer: the cgroup v2 freezer of the target's own cgroup; \
        none: do not stop it.
        """
}

/// `procmem dump PID --output DIR | --core FILE`: the readable memory as files, or an ELF core.
struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Dump a process's memory to a directory or an ELF core file.",
        discussion: """
            The target is stopped while it is read (--stop) and always resumed, also on errors and \
            Ctrl-C. Unreadable ranges (guard pages, [vvar], secret memory, pages past the end of a \
            file, PROT_NONE with --mode protect) are listed, never written as zeros.

            --output DIR writes one file per readable range under DIR/regions/ and DIR/index.json: \
            {"format":"procmem-dump","pid":N,"complete":BOOL,"partialReason":…,"regions":[{"start":"0x…",\
            "end":"0x…","permissions":"rw-p","path":…,"kind":…,"segments":[{"start","end","file",\
            "fileOffset"}],"failed":[{"start","end","code","reason"}],"processedUpTo":"0x…",\
            "module":…,"symbol":…}],…}. "module" (the ELF module a region belongs to, its .bss \
            included) and "symbol" (`module!symbol+0x10`, the symbol holding the region's first \
            address) are present only where they apply, and not with --no-symbols; the symbols are \
            read after the target is resumed.

            --core FILE writes an ELF core that `gdb EXE FILE` loads (registers of every thread, auxv, \
            file mappings; unreadable ranges as PT_LOADs without bytes) and FILE.json, the same index.

            A core holds what the kernel's core dumper and gcore would put in it: the target's own \
            /proc/PID/coredump_filter decides (core(5); bit 0 private anonymous, 1 shared anonymous, \
            2 private file-backed, 3 shared file-backed, 4 ELF headers, 5/6 private/shared hugetlb, \
            7/8 private/shared DAX; the kernel's default 0x33), and mappings marked dd or io in \
            /proc/PID/smaps are always left out. Each region left out is a PT_LOAD without bytes and \
            has "excluded": REASON in the index; gdb reads left-out file mappings from their files. \
            --all-mappings writes every readable byte instead (a bigger core); --coredump-filter-bits \
            uses other bits. --output DIR writes every readable byte unless --coredump-filter or \
            --coredump-filter-bits is given.

            A dump interrupted with Ctrl-C, or cut short by the target exiting, is still written and \
            marked partial ("complete": false); the status is then 1, or that of the error.
            """
    )

    @OptionGroup var processOption: ProcessOption

    var pid: Int32 { processOption.pid }

    @Option(help: ArgumentHelp("Write region files and index.json into this directory.", valueName: "dir"), completion: .directory)
    var output: String?

    @Option(help: ArgumentHelp("Write an ELF core file (and FILE.json).", valueName: "file"), completion: .file())
    var core: String?

    @Option(help: StopOption.help)
    var stop: StopOption = .ptrace

    @OptionGroup var modeOption: ModeOption

    var mode: AccessModeOption { modeOption.mode }

    @Flag(help: """
        Leave out what the kernel's core dumper and gdb's gcore leave out: mappings marked dd or io \
        in /proc/PID/smaps, and the kinds /proc/PID/coredump_filter excludes (listed as "excluded" \
        in the index). The default with --core; with --output the default is every readable byte.
        """)
    var coredumpFilter = false

    @Flag(help: """
        Dump every readable byte of every mapping, ignoring /proc/PID/coredump_filter and the dd \
        and io flags (the default with --output).
        """)
    var allMappings = false

    @Option(help: ArgumentHelp("Like --coredump-filter, with these bits instead of the target's (hex, as in core(5)).",
                               valueName: "bits"))
    var coredumpFilterBits: String?

    @Flag(help: "Draw the progress line on stderr even when it is not a terminal.")
    var progress = false

    @OptionGroup var jsonOption: JSONOption

    var json: Bool { jsonOption.json }

    @OptionGroup var symbolsOption: SymbolsOption

    func validate() throws {
        guard (output == nil) != (core == nil) else { throw ValidationError("give exactly one of --output DIR or --core FILE") }
        if allMappings && (coredumpFilter || coredumpFilterBits != nil) {
            throw ValidationError("--all-mappings dumps every mapping: give it without --coredump-filter or --coredump-filter-bits")
        }
        if let bits = coredumpFilterBits, Self.parseBits(bits) == nil {
            throw ValidationError("--coredump-filter-bits takes a hex mask such as 0x33, not '\(bits)'")
        }
    }

    static func parseBits(_ text: String) -> UInt32? {
        let digits = text.hasPrefix("0x") || text.hasPrefix("0X") ? String(text.dropFirst(2)) : text
        return UInt32(digits, radix: 16)
    }

    /// A core follows the target's coredump_filter unless --all-mappings; region files dump every
    /// readable byte unless --coredump-filter or --coredump-filter-bits.
    var selection: DumpSelection {
        if let bits = coredumpFilterBits.flatMap(Self.parseBits) { return .coredumpFilter(CoredumpFilter(rawValue: bits)) }
        if allMappings { return .everyReadableByte }
        return coredumpFilter || core != nil ? .coredumpFilter(nil) : .everyReadableByte
    }

    func run() throws {
        let handle = try TargetProcess.open(pid, rights: .read)
        defer { handle.close() }
        let total = try TargetProcess.memoryMap(handle).regions.reduce(UInt64(0)) { $0 + $1.size }
        Interruption.install()
        let progress = ProgressReporter(label: "dump", total: total, forced: self.progress)
        var options = DumpOptions(stopMethod: stop.method, readMode: mode.readMode,
                                  progress: { progress.update(done: $0.bytesDone, total: $0.bytesTotal) }, cancellation: Interruption.cancellation)
        options.selection = selection
        let names = SymbolNames(handle: handle, option: symbolsOption)
        if names.namesOutput {
            options.addressNames = { address in names.module(for: address).map { DumpIndex.AddressName(module: $0.module, symbol: $0.symbol) } }
        }
        let index: DumpIndex
        do {
            if let core {
                index = try handle.dumpCore(to: core, options: options)
            } else {
                index = try handle.dump(toDirectory: output ?? ".", options: options)
            }
        } catch {
            progress.finish()
            throw ErrorReporting.fail(error, mode: mode)
        }
        progress.finish()
        let destination = core ?? output ?? "."
        let indexPath = core.map { $0 + ".json" } ?? (destination + "/" + DumpIndex.fileName)
        if json {
            Output.line(JSONOutput.text(Report(
                pid: pid, output: destination, index: indexPath, complete: index.complete,
                partialReason: index.partialReason, regions: index.regions.count, bytesDumped: index.bytesDumped,
                bytesFailed: index.bytesFailed, bytesExcluded: index.bytesExcluded,
                coredumpFilter: index.coredumpFilter?.description, failedRanges: index.failedRanges.count)))
        } else {
            Output.line("dumped \(index.bytesDumped) bytes of \(index.regions.count) regions to \(destination); "
                        + "\(index.failedRanges.count) unreadable ranges (\(index.bytesFailed) bytes) listed in \(indexPath)"
                        + (index.coredumpFilter.map { "; coredump_filter \($0) excluded \(index.regions.filter { $0.excluded != nil }.count) regions (\(index.bytesExcluded) bytes)" } ?? ""))
        }
        // A core without some threads' registers loads in gdb, but shows no backtrace for them: say so.
        if let absent = index.registers?.absent, let first = absent.first {
            Output.error("note: the core holds no registers for \(absent.count) of \(absent.count + (index.registers?.threads.count ?? 0)) "
                         + "threads (thread \(first.tid): \(Format.printable(first.reason))); they are listed in \(indexPath). "
                         + "--stop ptrace (the default) or --stop signal reads every thread's registers.")
        }
        guard let reason = index.partialReason else { return }
        Output.error("partial dump (marked \"complete\": false in \(indexPath)): \(reason)")
        throw ExitCode(ExitCodes.partial)
    }

    /// `--json`: the summary's shape in the help above; a missing value is null.
    struct Report: Encodable {
        var pid: Int32
        var output: String
        var index: String
        var complete: Bool
        @NullWhenAbsent var partialReason: String?
        var regions: Int
        var bytesDumped: UInt64
        var bytesFailed: UInt64
        var bytesExcluded: UInt64
        @NullWhenAbsent var coredumpFilter: String?
        var failedRanges: Int

        enum CodingKeys: String, CodingKey {
            case pid, output, index, complete, partialReason, regions, bytesDumped, bytesFailed, bytesExcluded
            case coredumpFilter, failedRanges
        }
    }
}
