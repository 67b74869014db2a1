// Command-line options of the fixture (see the README of the fixture in main.swift).
struct Options {
    /// Constant byte for the `pattern` region instead of the default pattern.
    var fill: UInt8? = nil
    /// Exact address for the `pattern` region (MAP_FIXED_NOREPLACE).
    var patternAt: UInt? = nil
    /// Size of the `pattern` region in bytes, rounded up to pages (default 16 pages). A large
    /// `--fill`ed pattern at a chosen address stands in for another process's region at the same
    /// addresses (the fault matrix execs one over a region a scan or dump is reading).
    var patternSize: Int? = nil
    /// Lay out memory, then pause forever without reading stdin or printing.
    var detached = false
    /// PR_SET_DUMPABLE value applied after layout (and after --user).
    var dumpable: UInt? = nil
    /// Drop to this uid/gid after layout.
    var user: UInt32? = nil

    static func parse(_ args: [String]) throws -> Options {
        var options = Options()
        var i = 0
        func value(_ name: String) throws -> String {
            i += 1
            guard i < args.count else { throw FixtureError(message: "\(name) needs a value") }
            return args[i]
        }
        while i < args.count {
            let arg = args[i]
            switch arg {
            case "--fill":
                let text = try value(arg)
                guard let n = parseNumber(text), n <= 0xFF else {
                    throw FixtureError(message: "--fill expects a byte (0x00...0xff), got \(text)")
                }
                options.fill = UInt8(n)
            case "--pattern-at":
                let text = try value(arg)
                guard let n = parseNumber(text), n > 0, let address = UInt(exactly: n) else {
                    throw FixtureError(message: "--pattern-at expects an address, got \(text)")
                }
                options.patternAt = address
            case "--pattern-size":
                let text = try value(arg)
                guard let n = parseNumber(text), n > 0, n <= 1 << 36 else {
                    throw FixtureError(message: "--pattern-size expects 1...64 GiB in bytes, got \(text)")
                }
                options.patternSize = Int(n)
            case "--detached":
                options.detached = true
            case "--dumpable":
                let text = try value(arg)
                guard let n = parseNumber(text), n <= 1 else {
                    throw FixtureError(message: "--dumpable expects 0 or 1, got \(text)")
                }
                options.dumpable = UInt(n)
            case "--user":
                let text = try value(arg)
                guard let n = parseNumber(text), let uid = UInt32(exactly: n), uid != UInt32.max else {
                    throw FixtureError(message: "--user expects a numeric uid, got \(text)")
                }
                options.user = uid
            default:
                throw FixtureError(message: "unknown option: \(arg)")
            }
            i += 1
        }
        return options
    }
}
