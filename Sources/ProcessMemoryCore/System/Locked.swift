import Glibc

/// A value guarded by a `pthread_mutex_t` (`pthread_mutex_lock(3)`).
///
/// Used instead of Synchronization's `Mutex` where threads contend for the lock: on Linux that
/// `Mutex` hands a contended lock over through priority-inheritance futexes, a hand-over that
/// ThreadSanitizer cannot see, so it reports races between correctly locked accesses (reproduced
/// with four threads appending to a `Mutex<[Int]>`). A pthread mutex is intercepted and modelled,
/// which keeps the sanitizer runs of the test suite meaningful.
package final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    /// Guards `value`.
    package init(_ value: Value) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        self.value = value
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value.
    @inline(__always)
    package func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
