import Dispatch
import Glibc
import ProcessMemoryCore
import SystemPackage

/// One read that a thread of its own (``HelperThread``) performs while the caller does other
/// work: a dump reads its next chunk while it writes the previous one, so reading and writing use
/// both cores.
///
/// At most one read is in flight. The caller hands over the destination with `start(address:into:count:)`
/// and must not touch it until `finish()` returns; ``stop()`` waits for the read in flight, if
/// any, and ends the thread. The semaphores order every access to the shared fields.
final class ReadAhead: @unchecked Sendable {
    typealias Read = @Sendable (UInt64, UnsafeMutableRawPointer, Int) -> Result<(Int, RawStop?), ProcessMemoryError>

    private let read: Read
    private let requested = DispatchSemaphore(value: 0)
    private let completed = DispatchSemaphore(value: 0)
    private var request: (address: UInt64, base: UnsafeMutableRawPointer, count: Int)?
    private var result: Result<(Int, RawStop?), ProcessMemoryError> = .success((0, nil))
    private var thread: HelperThread?
    private var inFlight = false

    /// Starts the thread; `nil` when none can be had (the caller then reads on its own thread).
    init?(read: @escaping Read) {
        self.read = read
        // The thread holds the object until it ends, which stop() waits for.
        guard let thread = HelperThread.start({ [self] in self.serve() }) else { return nil }
        self.thread = thread
    }

    /// Starts reading `count` bytes at `address` into `base` (after waiting for a read still in flight).
    func start(address: UInt64, into base: UnsafeMutableRawPointer, count: Int) {
        if inFlight { _ = finish() }
        request = (address, base, count)
        inFlight = true
        requested.signal()
    }

    /// Waits for the read in flight and returns what it transferred and why it stopped; `nil` when
    /// no read was started.
    func finish() -> Result<(Int, RawStop?), ProcessMemoryError>? {
        guard inFlight else { return nil }
        completed.wait()
        inFlight = false
        return result
    }

    /// Waits for the read in flight, if any, and ends the thread.
    func stop() {
        guard let thread else { return }
        if inFlight { _ = finish() }
        request = nil
        requested.signal()
        thread.join()
        self.thread = nil
    }

    private func serve() {
        while true {
            requested.wait()
            guard let job = request else { return }
            result = read(job.address, job.base, job.count)
            request = nil
            completed.signal()
        }
    }
}
