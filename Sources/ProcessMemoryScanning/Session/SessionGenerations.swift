import ProcessMemoryCore

/// The undo stack of a ``ScanSession`` and its private directory.
///
/// Memory stays bounded: an earlier match set of at most ``Limits/inMemoryMatches`` matches (17
/// bytes each) is kept in memory; a larger one is saved as a match file in the directory and read
/// back on undo (streamed, spilling again past ``ScanOptions/spillThreshold``). A set that has
/// already spilled (``MatchSet/isSpilled``) is kept as it is: its matches are in its own file.
/// At most ``Limits/depth`` generations are kept; the oldest is dropped (and its file removed)
/// beyond that. So memory holds at most `depth × inMemoryMatches × 17` bytes of
/// history (16 × 262,144 × 17 ≈ 68 MiB by default), while a first scan of millions of matches
/// costs disk, not RAM. Snapshots live in the same directory and are removed once no generation
/// and no current state refers to them.
///
/// The directory is made with `mkdirat(2)` mode 0700 under a fresh random name, through the
/// core's ``OutputDirectory``; every file in it is created `O_CREAT | O_EXCL | O_NOFOLLOW`, 0600.
public final class SessionGenerations {
    /// How much history is kept.
    public struct Limits: Sendable, Hashable {
        /// Generations kept at most.
        public var depth: Int
        /// Match sets up to this size stay in memory; larger ones go to disk.
        public var inMemoryMatches: Int

        /// The defaults: 16 generations, sets of up to 262,144 matches in memory.
        public init(depth: Int = 16, inMemoryMatches: Int = 262_144) {
            self.depth = max(1, depth)
            self.inMemoryMatches = max(0, inMemoryMatches)
        }
    }

    /// One earlier state and the type it was taken with.
    struct Generation {
        var state: ScanSession.State
        var type: ScanValueType
    }

    private enum Stored {
        case state(ScanSession.State)
        case file(path: String, count: Int)
    }

    private let parent: OutputDirectory
    private let name: String
    /// The directory's path.
    public let path: String
    private let limits: Limits
    private var stack: [(stored: Stored, type: ScanValueType)] = []
    private var serial = 0
    private var closed = false

    init(under directory: String, limits: Limits) throws(ProcessMemoryError) {
        parent = try OutputDirectory.open(directory, create: false)
        do throws(ProcessMemoryError) {
            let (made, name) = try parent.createReplacementDirectory(for: "procmem-session")
            made.close()
            self.name = name
        } catch {
            parent.close()
            throw error
        }
        path = (directory.hasSuffix("/") ? String(directory.dropLast()) : directory) + "/" + name
        self.limits = limits
    }

    /// Generations that can be undone.
    var depth: Int { stack.count }

    /// A fresh file name in the directory for a snapshot.
    func newSnapshotPath() -> String {
        serial += 1
        return path + "/snapshot-\(serial)"
    }

    /// Keeps `generation`, on disk when its set is large; drops the oldest past the depth.
    func push(_ generation: Generation) throws(ProcessMemoryError) {
        if case .matches(let set) = generation.state, set.count > limits.inMemoryMatches, !set.isSpilled {
            serial += 1
            let file = path + "/generation-\(serial).matches"
            try set.save(to: file)
            stack.append((.file(path: file, count: set.count), generation.type))
        } else {
            stack.append((.state(generation.state), generation.type))
        }
        while stack.count > limits.depth {
            let dropped = stack.removeFirst()
            forget(dropped.stored)
        }
    }

    /// The most recent generation, removed from the stack; `nil` when there is none.
    func pop(spill: MatchSet.SpillPolicy = MatchSet.defaultSpill) throws(ProcessMemoryError) -> Generation? {
        guard let last = stack.last else { return nil }
        let state: ScanSession.State
        switch last.stored {
        case .state(let kept): state = kept
        case .file(let file, _): state = .matches(try MatchSet(contentsOf: file, spill: spill))
        }
        stack.removeLast()
        if case .file(let file, _) = last.stored { remove(file) }
        return Generation(state: state, type: last.type)
    }

    /// Drops the most recent generation without reading it back (a step that failed after its
    /// push): its file is removed; a snapshot stays, since the current state still holds it.
    func discardLast() {
        guard let last = stack.popLast() else { return }
        if case .file(let file, _) = last.stored { remove(file) }
    }

    /// Called with a state that is no longer current: removes its snapshot if nothing else uses it.
    func release(_ state: ScanSession.State) {
        forget(.state(state))
    }

    private func forget(_ stored: Stored) {
        switch stored {
        case .file(let file, _): remove(file)
        case .state(.snapshot(let file, _)):
            let used = stack.contains { entry in
                if case .state(.snapshot(let other, _)) = entry.stored { return other == file }
                return false
            }
            if !used { remove(file) }
        case .state: break
        }
    }

    private func remove(_ file: String) {
        guard file.hasPrefix(path + "/"), !closed else { return }
        guard let inner = try? OutputDirectory.open(path, create: false) else { return }
        inner.removeTree(String(file.dropFirst(path.count + 1)))
        inner.close()
    }

    /// Removes the directory and its files. Idempotent.
    func close() {
        guard !closed else { return }
        closed = true
        parent.removeTree(name)
        parent.close()
    }
}
