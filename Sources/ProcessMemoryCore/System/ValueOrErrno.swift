import Glibc
import SystemPackage

extension Errno {
    /// The calling thread's errno, read right after a failed call.
    package static var current: Errno { Errno(rawValue: Glibc.errno) }
}

/// Runs a raw system call and turns `-1` into the current errno, retrying `EINTR` when asked.
///
/// This is the only place the library reads `errno` after a call; every wrapper goes through it.
@inline(__always)
func valueOrErrno<I: FixedWidthInteger>(retryOnInterrupt: Bool = true, _ call: () -> I) -> Result<I, Errno> {
    while true {
        let value = call()
        if value != -1 { return .success(value) }
        let error = Errno.current
        if retryOnInterrupt && error == .interrupted { continue }
        return .failure(error)
    }
}
