import ProcessMemoryCore

/// Undo that can be redone: the sets stepped back from are kept as `path.redo.1`, `path.redo.2`, …
/// (newest undone first), and ``redo()`` steps forward again until a new save drops them.
///
/// ``undo()`` moves `path` to `path.redo.1` (the older undone sets one step further) and then
/// shifts the earlier generations down (`path.1` → `path`, …), as ``MatchFileGenerations/undo()``
/// does but without removing the newest set. ``redo()`` is its mirror: the generations shift up
/// (`path` → `path.1`, the oldest beyond ``MatchFileGenerations/limit`` removed) and `path.redo.1`
/// becomes `path`. A new save (``MatchFileGenerations/save(_:)``, a rescan, a snapshot) removes
/// the redo chain, since it no longer follows the file.
///
/// Every step is one `renameat(2)` in the file's directory, so a crash between steps leaves every
/// set on disk under one of these names: at worst `path` is missing or a chain has a gap for a
/// moment. The next undo or redo closes the gap first (a step whose source is gone is skipped),
/// so every set stays reachable.
/// Files are checked as the core's output files are: links and other users' files are refused.
public struct MatchFileRedo: Sendable, Hashable {
    /// The generations this redo chain belongs to.
    public var generations: MatchFileGenerations

    /// The redo chain of `generations`.
    public init(_ generations: MatchFileGenerations) {
        self.generations = generations
    }

    /// The path of undone set `number` (1: the most recently undone).
    public func path(ofRedo number: Int) -> String {
        generations.path + ".redo." + String(number)
    }

    /// How many undone sets can be redone (`fstatat(2)`); stops at the first missing one.
    public func available() throws(ProcessMemoryError) -> Int {
        let (directory, name) = try OutputDirectory.containing(generations.path)
        defer { directory.close() }
        try Self.closeGaps(directory, name)
        var count = 0
        while directory.exists(Self.redoName(name, count + 1)) { count += 1 }
        return count
    }

    /// Steps back one generation, keeping the newest set for ``redo()`` (`renameat(2)`).
    ///
    /// - Throws: `.invalidArguments` when there is no earlier generation (`path.1` does not exist).
    public func undo() throws(ProcessMemoryError) {
        try undo(afterStep: { () throws(ProcessMemoryError) in })
    }

    /// ``undo()``, calling `afterStep` after each rename (tests stop it there, as a crash would).
    package func undo(afterStep: () throws(ProcessMemoryError) -> Void) throws(ProcessMemoryError) {
        let (directory, name) = try OutputDirectory.containing(generations.path)
        defer { directory.close() }
        try Self.closeGaps(directory, name)
        let path = generations.path
        guard directory.exists(Self.generationName(name, 1)) else {
            throw ProcessMemoryError(.invalidArguments, message: "\(path) has no earlier generation to step back to (no \(generations.path(ofGeneration: 1)))")
        }
        if directory.exists(name) {
            // Make room at redo.1: every undone set one step further.
            try Self.shiftUp(directory, { Self.redoName(name, $0) }, from: 1, afterStep: afterStep)
            try directory.renameFile(name, to: Self.redoName(name, 1))
            try afterStep()
        }
        try Self.shiftDown(directory, { Self.generationName(name, $0) }, from: 1, afterStep: afterStep)
    }

    /// Steps forward again to the most recently undone set (`renameat(2)`, `unlinkat(2)` for a
    /// generation beyond the limit).
    ///
    /// - Throws: `.invalidArguments` when nothing was undone since the last save (no `path.redo.1`).
    public func redo() throws(ProcessMemoryError) {
        try redo(afterStep: { () throws(ProcessMemoryError) in })
    }

    /// ``redo()``, calling `afterStep` after each rename (tests stop it there, as a crash would).
    package func redo(afterStep: () throws(ProcessMemoryError) -> Void) throws(ProcessMemoryError) {
        let (directory, name) = try OutputDirectory.containing(generations.path)
        defer { directory.close() }
        try Self.closeGaps(directory, name)
        guard directory.exists(Self.redoName(name, 1)) else {
            throw ProcessMemoryError(.invalidArguments, message: "\(generations.path) has nothing to redo (no \(path(ofRedo: 1)): nothing was undone since it was last saved)")
        }
        if directory.exists(name) {
            // Make room at path: every generation one step older.
            try Self.shiftUp(directory, { Self.generationName(name, $0) }, from: 0, afterStep: afterStep)
        }
        try directory.renameFile(Self.redoName(name, 1), to: name)
        try afterStep()
        try Self.shiftDown(directory, { Self.redoName(name, $0) }, from: 2, afterStep: afterStep)
        // The generation pushed beyond the limit goes, as a save's shift drops it.
        var beyond = generations.limit + 1
        while directory.exists(Self.generationName(name, beyond)) {
            try directory.removeFile(Self.generationName(name, beyond))
            beyond += 1
        }
    }

    /// Removes the redo chain (`unlinkat(2)`): called when a new set is saved.
    public func drop() throws(ProcessMemoryError) {
        let (directory, name) = try OutputDirectory.containing(generations.path)
        defer { directory.close() }
        var number = 1
        while directory.exists(Self.redoName(name, number)) {
            try directory.removeFile(Self.redoName(name, number))
            number += 1
        }
    }

    /// Closes the one gap a crash between two renames can leave in the generations (`path.K`
    /// missing, `path.K+1` there) and in the redo chain, by moving the later ones down.
    static func closeGaps(_ directory: OutputDirectory, _ name: String) throws(ProcessMemoryError) {
        for chain in [{ (number: Int) in generationName(name, number) }, { (number: Int) in redoName(name, number) }] {
            var missing = 1
            while directory.exists(chain(missing)) { missing += 1 }
            try shiftDown(directory, chain, from: missing + 1, afterStep: { () throws(ProcessMemoryError) in })
        }
    }

    /// Moves the entries of `chain` from `first` on, as far as they run unbroken, one step up
    /// (`K` → `K+1`), the last first so that nothing is overwritten.
    static func shiftUp(_ directory: OutputDirectory, _ chain: (Int) -> String, from first: Int,
                        afterStep: () throws(ProcessMemoryError) -> Void) throws(ProcessMemoryError) {
        var last = first - 1
        while directory.exists(chain(last + 1)) { last += 1 }
        for number in stride(from: last, through: first, by: -1) {
            try directory.renameFile(chain(number), to: chain(number + 1))
            try afterStep()
        }
    }

    /// Moves the entries of `chain` from `first` on, while they exist, one step down (`K` → `K-1`).
    static func shiftDown(_ directory: OutputDirectory, _ chain: (Int) -> String, from first: Int,
                          afterStep: () throws(ProcessMemoryError) -> Void) throws(ProcessMemoryError) {
        var number = first
        while directory.exists(chain(number)) {
            try directory.renameFile(chain(number), to: chain(number - 1))
            try afterStep()
            number += 1
        }
    }

    static func generationName(_ name: String, _ number: Int) -> String {
        number == 0 ? name : name + "." + String(number)
    }

    static func redoName(_ name: String, _ number: Int) -> String {
        name + ".redo." + String(number)
    }
}
