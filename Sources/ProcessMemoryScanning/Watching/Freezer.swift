import ProcessMemoryCore
/// Keeps a value at an address: every round it reads the bytes there and, when they differ,
/// writes the frozen value back.
///
/// Reads use `pread(2)` and writes `pwrite(2)` on `/proc/PID/mem` (``WriteMode/debugger`` by
/// default, all or nothing). A write that fails (the page was unmapped or protected meanwhile) is
/// reported and retried next round; a process that exits or execs ends the freeze.
///
/// ```swift
/// let freezer = Freezer(handle: handle, address: address, bytes: [42, 0, 0, 0])
/// try freezer.run(interval: .milliseconds(100), cancellation: source.cancellation) { event in print(event) }
/// ```
public final class Freezer {
    /// Something a round did.
    public enum Event: Sendable, Hashable {
        /// The value was written back; `found` is what was there (`nil` if it could not be read).
        case restored(time: Double, found: [UInt8]?)
        /// The write failed; the freeze goes on.
        case writeFailed(time: Double, error: ProcessMemoryError)
    }

    /// The handle written through (it needs the write right).
    public let handle: ProcessHandle
    /// Where the value is kept.
    public let address: UInt64
    /// The frozen bytes.
    public let bytes: [UInt8]
    /// How writes treat page protections.
    public let mode: WriteMode
    /// Rounds done.
    public private(set) var rounds = 0
    /// Successful writes (the first one included).
    public private(set) var writes = 0
    /// Failed writes.
    public private(set) var failures = 0

    private var current: [UInt8]

    /// Creates a freezer; nothing is written until ``freezeOnce()``.
    public init(handle: ProcessHandle, address: UInt64, bytes: [UInt8], mode: WriteMode = .default) {
        self.handle = handle
        self.address = address
        self.bytes = bytes
        self.mode = mode
        self.current = [UInt8](repeating: 0, count: bytes.count)
    }

    /// One round: reads the value and writes the frozen bytes if it differs.
    ///
    /// - Returns: what was done, or `nil` when the value was already right.
    /// - Throws: `.invalidArguments` (no bytes), `.accessDenied` when the handle lacks the write
    ///   right, and `.badState`, `.execed`, `.badHandle` when the process or handle is gone.
    public func freezeOnce() throws(ProcessMemoryError) -> Event? {
        guard !bytes.isEmpty else { throw .invalid("there is nothing to freeze: the value has no bytes", pid: handle.pid, address: address) }
        guard handle.rights.contains(.write) else { throw .missingRight("write", pid: handle.pid) }
        rounds += 1
        let address = self.address
        let handle = self.handle
        let outcome = current.withUnsafeMutableBytes { raw in
            Result { () throws(ProcessMemoryError) -> PartialTransfer in try handle.readTransfer(from: address, into: raw) }
        }
        let transfer = try outcome.get()
        if let stop = transfer.stop, Self.ends(stop) { throw stop }
        if transfer.stop == nil && current == bytes { return nil }
        let found = transfer.stop == nil ? current : nil
        do throws(ProcessMemoryError) {
            try handle.writeExactly(bytes, to: address, mode: mode)
        } catch {
            if Self.ends(error) { throw error }
            failures += 1
            return .writeFailed(time: Watcher.now(), error: error)
        }
        writes += 1
        return .restored(time: Watcher.now(), found: found)
    }

    /// Freezes every `interval` until `cancellation` is cancelled, calling `onEvent` for each
    /// write and each failed write.
    ///
    /// - Throws: as ``freezeOnce()``; the freeze ends at the first such error.
    public func run(interval: Duration, cancellation: Cancellation, onEvent: (Event) -> Void) throws(ProcessMemoryError) {
        while !cancellation.isCancelled {
            if let event = try freezeOnce() { onEvent(event) }
            Watcher.sleep(interval, unless: cancellation)
        }
    }

    /// Errors after which further rounds cannot succeed.
    private static func ends(_ error: ProcessMemoryError) -> Bool {
        error.code == .badState || error.code == .execed || error.code == .badHandle
            || (error.code == .accessDenied && error.accessDenial == .handleLacksRight)
    }
}
