import ArgumentParser
import ProcessMemory
import ProcessMemorySymbols

/// `procmem symbolize PID ADDRESS…`: the nearest symbol to each address.
struct Symbolize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Name addresses by the nearest symbol: <module!symbol+0x10>.",
        discussion: """
            For each ADDRESS prints `0x… <module!symbol+0xOFFSET>`: the symbol at or below the \
            address in the ELF module that maps it (see `procmem symbols`). An address in a module \
            without a symbol below it prints as <module+0xOFFSET> from the module's first mapping; \
            one outside every module prints as `0x… ?` and makes the exit status 1 (partial).

            ADDRESS is a number or REGION+OFFSET as elsewhere (see procmem --help).

            --json prints one array, one object per ADDRESS:
              {"address":"0x…","addressValue":N,"module":"…"|null,"symbol":"…"|null,
               "offset":N|null,"inside":BOOL,"name":"<module!symbol+0x10>"|null}
            inside is false when the address lies past the symbol's size.
            """
    )

    @Argument(help: "The process ID.", completion: PIDCompletion.kind)
    var pid: Int32

    @Argument(help: AddressArgument.help, transform: AddressArgument.parse)
    var addresses: [AddressArgument]

    @Flag(help: "Print JSON (shape above).")
    var json = false

    @Flag(help: "Do not look for separate debug files.")
    var noDebugFiles = false

    func validate() throws {
        guard !addresses.isEmpty else { throw ValidationError("give at least one ADDRESS") }
    }

    func run() throws {
        let handle = try TargetProcess.open(pid, rights: .read)
        defer { handle.close() }
        let symbolizer: Symbolizer
        do {
            symbolizer = try Symbolizer(handle: handle, options: SymbolizerOptions(useSeparateDebugFiles: !noDebugFiles))
        } catch {
            throw ErrorReporting.fail(error, pid: pid)
        }
        var results: [(UInt64, SymbolizedAddress?)] = []
        for argument in addresses {
            let address = try TargetProcess.resolve(argument, in: handle)
            results.append((address, symbolizer.name(for: address)))
        }
        if json {
            Output.line(JSONOutput.text(results.map { Entry(address: $0.0, named: $0.1) }))
        } else {
            Output.lines(results.map { address, named in Format.hex(address) + " " + (named?.description ?? "?") })
        }
        if results.contains(where: { $0.1 == nil }) { throw ExitCode(ExitCodes.partial) }
    }

    /// `{"address":"0x…","addressValue":N,"module","symbol","offset","inside","name"}`; the
    /// names are null where no symbol covers or precedes the address.
    struct Entry: Encodable {
        var address: String
        var addressValue: UInt64
        @NullWhenAbsent var module: String?
        @NullWhenAbsent var symbol: String?
        @NullWhenAbsent var offset: UInt64?
        var inside: Bool
        @NullWhenAbsent var name: String?

        init(address: UInt64, named: SymbolizedAddress?) {
            self.address = Format.hex(address)
            addressValue = address
            module = named?.module.name
            symbol = named?.symbol?.name
            offset = named?.offset
            inside = named?.isInsideSymbol ?? false
            name = named?.description
        }

        enum CodingKeys: String, CodingKey { case address, addressValue, module, symbol, offset, inside, name }
    }
}
