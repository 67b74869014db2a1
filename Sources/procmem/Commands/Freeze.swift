import ArgumentParser
import ProcessMemory

/// `procmem freeze PID ADDRESS VALUE --as TYPE [--interval 100ms]`: keep writing a value.
struct Freeze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keep a value at an address until stopped.",
        discussion: """
            Each --interval, reads the value at ADDRESS and writes VALUE back when it differs (all or \
            nothing, native byte order; --as cstring writes the UTF-8 bytes and a NUL). Prints \
            `TIME 0xADDR: VALUE (was OLD)` for each write, OLD being what was found there (or \
            `VALUE (already held)` when the first look finds it in place); a failed write is \
            reported on stderr and retried. Runs until Ctrl-C (or SIGTERM), then prints a summary on \
            stderr and exits 0. If the process exits, the freeze ends with its error (status 14, \
            badState).
            """
    )

    @OptionGroup var processOption: ProcessOption

    var pid: Int32 { processOption.pid }

    @Argument(help: AddressArgument.help, transform: AddressArgument.parse)
    var address: AddressArgument

    @Argument(help: ArgumentHelp("The value to keep (integers in decimal or 0x hex; floats as Swift parses them).", valueName: "value"))
    var value: String

    @Option(name: .customLong("as"), help: ArgumentHelp("The type of VALUE.", valueName: "type"))
    var type: ValueType

    @Option(help: ArgumentHelp("Time between rounds: 100ms, 0.5s, 2s (a bare number is seconds).", valueName: "interval"),
            transform: WatchInterval.parse)
    var interval: Duration = .milliseconds(100)

    @OptionGroup var modeOption: ModeOption

    var mode: AccessModeOption { modeOption.mode }

    func validate() throws {
        _ = try payload()
    }

    private func payload() throws -> [UInt8] {
        do {
            return try type.encode(value)
        } catch {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        let bytes = try payload()
        let handle = try TargetProcess.open(pid, rights: .readWrite)
        defer { handle.close() }
        let start = try TargetProcess.resolve(address, in: handle, mode: mode)
        Interruption.install()
        let freezer = Freezer(handle: handle, address: start, bytes: bytes, mode: mode.writeMode)
        let shown = type.size == nil ? JSON.quoted(value) : type.format(bytes, hex: false)
        func report(_ event: Freezer.Event) {
            switch event {
            case .restored(let time, let found):
                let old = found.map { type.size == nil ? "\($0.count) bytes" : type.format($0, hex: false) } ?? "<unreadable>"
                Output.line("\(WatchInterval.timestamp(time)) \(Format.hex(start)): \(shown) (was \(old))")
            case .writeFailed(let time, let error):
                Output.error("\(WatchInterval.timestamp(time)) write failed: \(error.description)")
            }
        }
        do {
            // The first round always says something, even when the value already holds.
            if let event = try freezer.freezeOnce() {
                report(event)
            } else {
                Output.line("\(WatchInterval.timestamp(Watcher.now())) \(Format.hex(start)): \(shown) (already held)")
            }
            try freezer.run(interval: interval, shouldStop: { Interruption.requested }, onEvent: report)
        } catch {
            Output.error(summary(freezer))
            throw ErrorReporting.fail(error, mode: mode)
        }
        Output.error(summary(freezer))
    }

    private func summary(_ freezer: Freezer) -> String {
        "freeze stopped after \(freezer.rounds) round\(freezer.rounds == 1 ? "" : "s"): \(freezer.writes) write\(freezer.writes == 1 ? "" : "s"), \(freezer.failures) failed"
    }
}
