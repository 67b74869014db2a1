import ProcessMemory

/// `procmem session --json`: one object per command, in the shape `procmem session --help` gives.
struct SessionCommandReport: Encodable {
    /// The command as typed (one `;`-separated part of a line).
    var command: String
    /// true when the command printed no error.
    var ok: Bool
    /// The lines the command printed, as the text session prints them.
    var output: [String]
    /// Each error the command reported, with its code and exit status.
    var errors: [SessionErrorReport]
    /// "empty", "snapshot" or "matches", after the command.
    var state: String
    /// The type values are read as.
    var type: String
    /// The number of matches after the command; null without a match set.
    @NullWhenAbsent var matchCount: Int?
    /// Whether the match set is partial (an interrupted scan).
    var partial: Bool
    /// The first matches (at most 20) with their values now.
    var matches: [SessionMatchReport]
    /// Background freezes and watches running.
    var jobs: Int
}

/// One error in `session --json`.
struct SessionErrorReport: Encodable {
    /// An error code of `procmem --help` (`invalidArguments`, `noSuchProcess`, …) or `usage`.
    var code: String
    var exitCode: Int32
    var message: String
}

/// One match in `session --json`.
struct SessionMatchReport: Encodable {
    var index: Int
    var address: String
    var type: String
    /// The value now; null when it cannot be read or the set holds bytes.
    var value: JSON
}

extension SessionCommandReport {
    /// `number` as JSON: an integer, or a float (null when not finite).
    static func json(_ number: ScanNumber?) -> JSON {
        switch number {
        case .integer(let value)?:
            if let small = Int64(exactly: value) { return .int(small) }
            if let large = UInt64(exactly: value) { return .uint(large) }
            return .string(String(value))
        case .floatingPoint(let value)?: return .double(value)
        case nil: return .null
        }
    }
}
