import Glibc
import SystemPackage

/// Blocking sleeps for the polling loops of the tool modules (watch, freeze, stopping), with the
/// rest of the interval slept again after a signal interrupts it.
package enum Sleep {
    /// nanosleep(2) for `nanoseconds`, resumed with the time left when a signal interrupts it.
    package static func nanoseconds(_ nanoseconds: Int64) {
        guard nanoseconds > 0 else { return }
        var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        var left = timespec()
        _ = valueOrErrno(retryOnInterrupt: true) { () -> CInt in
            let result = Glibc.nanosleep(&request, &left)
            if result == -1 { request = left }
            return result
        }
    }
}
