import Synchronization

/// How a caller asks a long operation to stop early: the one cancellation convention of the package.
///
/// Scans, rescans, snapshots, pointer scans, dumps, watches and freezes are synchronous and run on
/// the caller's thread. Each polls its `Cancellation` between chunks or rounds; once it reads
/// `true`, the operation stops cleanly (a stopped target is resumed, files are finished) and
/// returns what it has, marked interrupted. Progress is reported separately and never cancels.
///
/// ```swift
/// let source = CancellationSource()
/// // from another thread or a signal handler's queue: source.cancel()
/// let result = try scanner.scan(query, cancellation: source.cancellation)
/// ```
///
/// Inside a Swift task, ``currentTask`` follows the task's cancellation.
public struct Cancellation: Sendable {
    private let poll: @Sendable () -> Bool

    /// A cancellation that reads `isCancelled` each time an operation polls it.
    public init(_ isCancelled: @escaping @Sendable () -> Bool) {
        poll = isCancelled
    }

    /// Never cancels: the operation runs to its end.
    public static let never = Cancellation { false }

    /// Cancels when the Swift task that runs the operation is cancelled (`Task.isCancelled`).
    public static var currentTask: Cancellation { Cancellation { Task.isCancelled } }

    /// Whether the operation should stop now.
    public var isCancelled: Bool { poll() }
}

/// A flag that vends a ``Cancellation``: call ``cancel()`` from any thread to stop the operations
/// that poll it.
public final class CancellationSource: Sendable {
    private let flag = Atomic<Bool>(false)

    /// A source that has not been cancelled.
    public init() {}

    /// Asks every operation polling ``cancellation`` to stop. Idempotent.
    public func cancel() { flag.store(true, ordering: .releasing) }

    /// Whether ``cancel()`` has been called.
    public var isCancelled: Bool { flag.load(ordering: .acquiring) }

    /// The cancellation to pass to long operations.
    public var cancellation: Cancellation { Cancellation { [self] in isCancelled } }
}
