/// How far a long operation has come: the one progress convention of the package.
///
/// Dumps and pointer scans call their `progress` callback with a `WorkProgress` on the caller's
/// thread after each chunk; scans, rescans and snapshots pass `ScanProgress`, which adds the
/// matches so far. Both count bytes from the start of the operation (never increments), against a
/// total known when it starts. A callback only reports; stopping early is ``Cancellation``'s job.
public struct WorkProgress: Sendable, Hashable {
    /// Bytes processed so far: read, found unreadable, or skipped.
    public var bytesDone: UInt64
    /// Bytes the operation will process in all.
    public var bytesTotal: UInt64

    /// Progress of `bytesDone` out of `bytesTotal`.
    public init(bytesDone: UInt64, bytesTotal: UInt64) {
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
    }
}
