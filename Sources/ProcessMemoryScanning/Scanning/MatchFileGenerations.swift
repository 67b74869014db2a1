import ProcessMemoryCore

/// Earlier generations of a match file, so that a rescan never destroys the only copy of a set.
///
/// `path` holds the newest set; `path.1` the one before it, `path.2` the one before that, up to
/// `path.N` (``limit``, 5 by default). Saving a new set writes it under a temporary name first,
/// then shifts the generations (`path.N-1` → `path.N`, …, `path` → `path.1`, the oldest beyond N
/// removed) and renames the new file to `path`, so a failed write leaves every generation as it
/// was. ``undo()`` steps back: `path.1` becomes `path` again, `path.2` becomes `path.1`, and so
/// on; the set that was newest is removed. A generation may be a snapshot file (the first
/// comparison against a snapshot replaces it with a match set; undo brings the snapshot back).
///
/// Every file goes through the core's output files: mode 0600, created with
/// `O_CREAT | O_EXCL | O_NOFOLLOW`, moved with `renameat(2)`, removed with `unlinkat(2)`; a
/// generation that is a link or another user's file is refused, never moved or written.
public struct MatchFileGenerations: Sendable, Hashable {
    /// How many earlier generations are kept by default.
    public static let defaultLimit = 5

    /// The newest generation's path.
    public var path: String
    /// How many earlier generations are kept (0: none, as a plain save).
    public var limit: Int

    /// Generations of the file at `path`, keeping `limit` earlier ones.
    public init(path: String, limit: Int = MatchFileGenerations.defaultLimit) {
        self.path = path
        self.limit = max(0, limit)
    }

    /// The path of generation `number` (0: ``path`` itself).
    public func path(ofGeneration number: Int) -> String {
        number == 0 ? path : path + "." + String(number)
    }

    /// The earlier generations that exist, newest first (`path.1`, `path.2`, …), up to ``limit``
    /// (`fstatat(2)`); stops at the first missing one.
    public func earlier() throws(ProcessMemoryError) -> [String] {
        let (directory, name) = try OutputDirectory.containing(path)
        defer { directory.close() }
        var found: [String] = []
        var number = 1
        while number <= limit {
            defer { number += 1 }
            guard directory.exists(name + "." + String(number)) else { break }
            found.append(path(ofGeneration: number))
        }
        return found
    }

    /// Saves `set` as the newest generation, keeping the one it replaces as `path.1` (see the type).
    ///
    /// The corresponding C calls are `openat(2)`, `pwrite(2)`, `fsync(2)`, `renameat(2)` and `unlinkat(2)`.
    public func save(_ set: MatchSet) throws(ProcessMemoryError) {
        let file = try ScanFileOutput(path: path)
        defer { file.close() }
        try MatchFileFormat.encode(set) { (piece: [UInt8]) throws(ProcessMemoryError) in try file.write(piece) }
        try set.checkSpill()
        try file.finish(beforeCommit: { () throws(ProcessMemoryError) in try shift() })
    }

    /// Moves every generation one step older: the oldest beyond ``limit`` is removed, `path`
    /// becomes `path.1`. Nothing is moved when ``limit`` is 0. The redo chain (``MatchFileRedo``)
    /// is removed: a new set is about to take the place of `path`.
    public func shift() throws(ProcessMemoryError) {
        try MatchFileRedo(self).drop()
        guard limit > 0 else { return }
        let (directory, name) = try OutputDirectory.containing(path)
        defer { directory.close() }
        func named(_ number: Int) -> String { number == 0 ? name : name + "." + String(number) }
        guard directory.exists(name) else { return }
        try directory.removeFile(named(limit))
        for number in stride(from: limit - 1, through: 0, by: -1) {
            try directory.renameFile(named(number), to: named(number + 1))
        }
    }

    /// Steps back one generation: `path.1` replaces `path`, `path.2` becomes `path.1`, and so on
    /// (`renameat(2)`); the newest set is removed.
    ///
    /// - Throws: `.invalidArguments` when there is no earlier generation (`path.1` does not exist).
    public func undo() throws(ProcessMemoryError) {
        let (directory, name) = try OutputDirectory.containing(path)
        defer { directory.close() }
        func named(_ number: Int) -> String { number == 0 ? name : name + "." + String(number) }
        guard directory.exists(named(1)) else {
            throw ProcessMemoryError(.invalidArguments, message: "\(path) has no earlier generation to step back to (no \(path(ofGeneration: 1)))")
        }
        var number = 1
        // Shift every existing generation down, including any beyond the current limit.
        while directory.exists(named(number)) {
            try directory.renameFile(named(number), to: named(number - 1))
            number += 1
        }
    }
}
