import ProcessMemoryCore

extension CheatTable {
    /// The largest table file read: 1 MiB.
    public static let maximumFileSize = 1 << 20

    /// Reads the table at `path` (a regular file of at most ``maximumFileSize`` bytes, through
    /// ``InputFiles``: `openat(2)`, `fstat(2)`, `read(2)`).
    ///
    /// - Throws: `.invalidArguments` with `PATH: line N: message` for a malformed table;
    ///   `.notFound`/`.accessDenied`/`.io` when it cannot be read.
    public init(contentsOf path: String) throws(ProcessMemoryError) {
        let bytes = try InputFiles.read(path, limit: Self.maximumFileSize)
        do throws(Failure) {
            self = try CheatTable(parsing: bytes)
        } catch {
            throw ProcessMemoryError(.invalidArguments, message: "\(path): \(error.description)")
        }
    }

    /// Writes the table to `path` through ``OutputFiles`` (a 0600 temporary file renamed over it).
    public func save(to path: String) throws(ProcessMemoryError) {
        try OutputFiles.write(Array(text.utf8), to: path)
    }
}
