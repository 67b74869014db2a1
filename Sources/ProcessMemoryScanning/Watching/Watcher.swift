import Glibc
import SystemPackage
import ProcessMemoryCore

/// Polls one or more addresses of a process and reports each change with a timestamp.
///
/// Every round reads all targets together with one ``ReadBatch`` (few `process_vm_readv(2)`
/// calls); where that call is not permitted (seccomp, some containers), each target is read with
/// `pread(2)` on `/proc/PID/mem` instead. A target that becomes unreadable is a change to
/// ``Value/unreadable(_:)``, not an error; a process that exits or execs ends the watch with
/// `.badState` or `.execed`.
///
/// ```swift
/// let watcher = Watcher(handle: handle, targets: [.init(address: address, size: 4)])
/// try watcher.run(interval: .milliseconds(100), cancellation: source.cancellation) { change in print(change) }
/// ```
public final class Watcher {
    /// An address and how many bytes to compare there.
    public struct Target: Sendable, Hashable {
        /// The first byte.
        public var address: UInt64
        /// The number of bytes (1 ... 1 MiB).
        public var size: Int
        /// Creates a target.
        public init(address: UInt64, size: Int) {
            self.address = address
            self.size = size
        }
    }

    /// What a target held in one round.
    public enum Value: Sendable, Hashable {
        /// The bytes read.
        case bytes([UInt8])
        /// The target could not be read; the error says why.
        case unreadable(ProcessMemoryError)
    }

    /// One change of one target.
    public struct Change: Sendable, Hashable {
        /// The index of the target in ``Watcher/targets``.
        public var target: Int
        /// When the change was seen: seconds since the Unix epoch (`CLOCK_REALTIME`).
        public var time: Double
        /// The value before, `nil` in the first round.
        public var old: Value?
        /// The value now.
        public var new: Value
    }

    /// The handle being watched.
    public let handle: ProcessHandle
    /// What is watched.
    public let targets: [Target]
    /// The rounds done so far.
    public private(set) var rounds = 0
    /// The changes seen so far (not counting the first round).
    public private(set) var changes = 0

    private let batch = ReadBatch()
    private var last: [Value?]
    private var singleReads = false

    /// Creates a watcher; nothing is read until ``poll()``.
    public init(handle: ProcessHandle, targets: [Target]) {
        self.handle = handle
        self.targets = targets
        self.last = Array(repeating: nil, count: targets.count)
        batch.coalescingGap = 64
    }

    /// Reads every target once and returns the targets whose value differs from the previous round
    /// (every target, with `old == nil`, in the first round).
    ///
    /// - Throws: `.invalidArguments` for a target size outside 1 ... 1 MiB; `.badState` when the
    ///   process has exited; `.execed`; `.badHandle`.
    public func poll() throws(ProcessMemoryError) -> [Change] {
        let values = try readAll()
        let now = Self.now()
        var found: [Change] = []
        for (index, value) in values.enumerated() where last[index] != value {
            found.append(Change(target: index, time: now, old: last[index], new: value))
            last[index] = value
        }
        if rounds > 0 { changes += found.count }
        rounds += 1
        return found
    }

    /// Polls every `interval` until `cancellation` is cancelled, calling `onChange` for each change
    /// (the first round reports every target's initial value).
    ///
    /// Sleeps with `nanosleep(2)` in slices of at most 50 ms, so a stop request is seen quickly.
    /// - Throws: as ``poll()``; the watch ends at the first such error.
    public func run(interval: Duration, cancellation: Cancellation, onChange: (Change) -> Void) throws(ProcessMemoryError) {
        while !cancellation.isCancelled {
            for change in try poll() { onChange(change) }
            Self.sleep(interval, unless: cancellation)
        }
    }

    private func readAll() throws(ProcessMemoryError) -> [Value] {
        for target in targets where target.size < 1 || target.size > 1 << 20 {
            throw .invalid("a watched size must be 1 ... 1048576 bytes, not \(target.size)", pid: handle.pid, address: target.address)
        }
        if !singleReads {
            // A batch (process_vm_readv) would wait forever on an unpopulated page of a range
            // registered with userfaultfd whose handler is stopped or absent: such a target is
            // unreadable this round. One pagemap pread(2) per target.
            var values = [Value?](repeating: nil, count: targets.count)
            var batched: [Int] = []
            batch.removeAll()
            for (index, target) in targets.enumerated() {
                if let hazard = handle.userfaultfdHazard(at: target.address, count: target.size) {
                    values[index] = .unreadable(handle.userfaultfdSkip(start: hazard.address, reason: hazard.reason))
                } else {
                    batch.add(address: target.address, count: target.size)
                    batched.append(index)
                }
            }
            do throws(ProcessMemoryError) {
                if !batched.isEmpty { try handle.read(batch) }
                for (entry, index) in batched.enumerated() {
                    if case .ok = batch.outcome(entry) {
                        values[index] = .bytes(batch.bytes(entry))
                    } else {
                        values[index] = .unreadable(batch.error(entry) ?? ProcessMemoryError(.io, pid: handle.pid, address: targets[index].address,
                                                                                             message: "the read failed"))
                    }
                }
                return values.map { $0 ?? .unreadable(ProcessMemoryError(.io, pid: handle.pid, message: "the read failed")) }
            } catch where error.code == .accessDenied && error.systemCall?.name == .processVMReadv && error.errno == .notPermitted {
                singleReads = true
            }
        }
        var values: [Value] = []
        for target in targets {
            var bytes = [UInt8](repeating: 0, count: target.size)
            let outcome = bytes.withUnsafeMutableBytes { raw in
                Result { () throws(ProcessMemoryError) -> PartialTransfer in try handle.readTransfer(from: target.address, into: raw) }
            }
            let transfer = try outcome.get()
            if let stop = transfer.stop {
                if stop.code == .badState || stop.code == .execed { throw stop }
                values.append(.unreadable(stop))
            } else {
                values.append(.bytes(bytes))
            }
        }
        return values
    }

    /// Seconds since the Unix epoch, from `clock_gettime(CLOCK_REALTIME)`: the clock of
    /// ``Change/time`` and of ``Freezer/Event``'s times.
    public static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// Sleeps for `interval` in slices of at most 50 ms, returning early once `cancellation` is cancelled: the
    /// pause between rounds of ``run(interval:cancellation:onChange:)`` and ``Freezer``'s loop, for
    /// callers that run their own rounds. The corresponding C call is `nanosleep(2)`.
    public static func sleep(_ interval: Duration, unless cancellation: Cancellation) {
        let (seconds, attoseconds) = interval.components
        var remaining = max(0, Int64(seconds) * 1_000_000_000 + Int64(attoseconds / 1_000_000_000))
        while remaining > 0 && !cancellation.isCancelled {
            let slice = min(remaining, 50_000_000)
            Sleep.nanoseconds(slice)
            remaining -= slice
        }
    }
}
