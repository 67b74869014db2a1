import ArgumentParser
import ProcessMemory

/// `procmem resolve-address --maps-file FILE ADDRESS...` (hidden): resolves ADDRESS expressions
/// against a saved `/proc/PID/maps` file, without a process. It exists to test the resolver.
struct ResolveAddress: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve-address",
        abstract: "Resolve ADDRESS expressions against a saved maps file.",
        discussion: "Prints one line per expression: 0x… when it resolves, else `error: malformed|unknownRegion|outOfRange: message`.",
        shouldDisplay: false
    )

    @Option(help: "A file in /proc/PID/maps format.")
    var mapsFile: String

    @Argument(help: "Address expressions.")
    var addresses: [String] = []

    func run() throws {
        guard let bytes = ProcFiles.read(mapsFile) else {
            Output.error("cannot read \(mapsFile)")
            throw ExitCode(ExitCodes.usage)
        }
        let map = MemoryMap(regions: MapsParser.parse(bytes).regions)
        Output.lines(addresses.map { text in
            do throws(AddressExpression.Failure) {
                return Format.hex(try AddressExpression.resolve(text, in: map))
            } catch {
                return "error: \(error.kind): \(error.message)"
            }
        })
    }
}
