import Glibc
import SystemPackage

/// ptrace(2) and waitpid(2), for the stop methods and register capture of the dumps module.
package enum Ptrace {
    /// ptrace(2) `request` on thread `tid`.
    package static func request(_ request: CInt, _ tid: Int32, address: UInt = 0, data: UnsafeMutableRawPointer? = nil) -> Result<Int, Errno> {
        Sys.ptrace(request, tid, address: address, data: data)
    }

    /// ptrace(2) `PTRACE_GETREGSET` of register set `type` into `buffer`; returns the bytes filled.
    package static func registerSet(_ tid: Int32, _ type: CInt, into buffer: UnsafeMutableRawBufferPointer) -> Result<Int, Errno> {
        Sys.getRegset(tid, type, into: buffer)
    }

    /// waitpid(2) with `WNOHANG`: the thread's wait status, or `nil` when it has not changed state.
    package static func waitIfChanged(_ tid: Int32, flags: CInt) -> Result<CInt?, Errno> {
        Sys.waitpidIfChanged(tid, flags: flags)
    }

    /// waitpid(2) for one thread; returns the wait status.
    package static func wait(_ tid: Int32, flags: CInt) -> Result<CInt, Errno> {
        Sys.waitpid(tid, flags: flags)
    }
}
