import ProcessMemory

/// The exit statuses of `procmem`: the one table behind both the code and `procmem --help`.
enum ExitCodes {
    /// Everything requested was done.
    static let success: Int32 = 0
    /// A read or write stopped early: some bytes moved, not all (the reason is on stderr); or a
    /// scan, rescan or snapshot was interrupted, hit the match limit, or worked from a partial one.
    static let partial: Int32 = 1
    /// Bad command-line usage (argument-parser's `ValidationError` uses the same value, EX_USAGE).
    static let usage: Int32 = 64

    /// The status for a failure with `code`: one distinct value per ``ProcessMemoryError/Code``.
    static func status(for code: ProcessMemoryError.Code) -> Int32 {
        switch code {
        case .invalidArguments: return 10
        case .accessDenied: return 11
        case .badHandle: return 12
        case .wrongType: return 13
        case .badState: return 14
        case .execed: return 15
        case .notFound: return 16
        case .protectionFailure: return 17
        case .outOfRange: return 18
        case .noMemory: return 19
        case .notSupported: return 20
        case .io: return 21
        case .invalidBuffer: return 22
        }
    }

    /// One row per status, in ascending order: status, name, meaning.
    static var table: [(status: Int32, name: String, meaning: String)] {
        var rows: [(status: Int32, name: String, meaning: String)] = [
            (success, "success", "everything requested was done"),
            (partial, "partial", "a read, write, scan or snapshot stopped early, or works from one that did"),
            (usage, "usage", "bad arguments or a malformed ADDRESS"),
        ]
        for code in ProcessMemoryError.Code.allCases {
            rows.append((status(for: code), code.rawValue, meaning(of: code)))
        }
        rows += symbolRows
        return rows.sorted { $0.status < $1.status }
    }

    /// The table as help text, one `  STATUS  name  meaning` line per row.
    static var helpText: String {
        let width = table.map(\.name.count).max() ?? 0
        return table.map { row in
            let status = String(row.status)
            let paddedStatus = String(repeating: " ", count: max(0, 3 - status.count)) + status
            let paddedName = row.name + String(repeating: " ", count: max(0, width - row.name.count))
            return "  \(paddedStatus)  \(paddedName)  \(row.meaning)"
        }.joined(separator: "\n")
    }

    private static func meaning(of code: ProcessMemoryError.Code) -> String {
        switch code {
        case .invalidArguments: return "a bad range: size, wrap-around, outside user space"
        case .accessDenied: return "access refused, or memory that is never written"
        case .badHandle: return "the process handle was closed"
        case .wrongType: return "the PID has no user memory (a kernel thread)"
        case .badState: return "the process is exiting, a zombie, or gone"
        case .execed: return "the process called execve meanwhile"
        case .notFound: return "no such process or region, or nothing mapped there"
        case .protectionFailure: return "mapped but inaccessible (PROT_NONE, guard, [vvar])"
        case .outOfRange: return "past the end of the file behind a mapping"
        case .noMemory: return "out of memory"
        case .notSupported: return "the kernel lacks a needed feature"
        case .io: return "an I/O error, or a refusal without a reason"
        case .invalidBuffer: return "the kernel could not use procmem's own buffer (a bug in procmem)"
        }
    }
}
