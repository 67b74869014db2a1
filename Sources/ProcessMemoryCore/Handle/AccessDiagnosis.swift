import Glibc
import SystemPackage

/// Works out why the kernel's ptrace access check refused us, from what `/proc` shows.
package enum AccessDiagnosis {
    package static func diagnose(pid: Int32, procDir: CInt?) -> AccessDenialReason {
        let dir = procDir ?? AT_FDCWD
        let prefix = procDir == nil ? "/proc/\(pid)/" : ""
        let me: ProcStatus
        if case .success(let bytes) = Sys.readFile(AT_FDCWD, "/proc/thread-self/status") {
            me = ProcStatus.parse(bytes)
        } else {
            return .unknown
        }
        guard case .success(let bytes) = Sys.readFile(dir, prefix + "status") else { return .unknown }
        let target = ProcStatus.parse(bytes)
        let callerUID = getuid()
        let hasPtraceCap = (me.effectiveCapabilities ?? 0) & ProcStatus.capSysPtrace != 0
        if let scope = yamaScope(), scope >= 1 {
            // Scope 1 allows descendants only; 2 needs CAP_SYS_PTRACE; 3 forbids all.
            if scope >= 3 || (scope == 2 && !hasPtraceCap) || (scope == 1 && !hasPtraceCap) {
                return .yama(scope: scope)
            }
        }
        if let targetUID = target.realUID, targetUID != callerUID, !hasPtraceCap {
            return .otherUser(targetUID: targetUID, callerUID: callerUID)
        }
        // The calling thread's credentials are the ones the kernel checks (thread-self, not self).
        // A non-dumpable target's /proc/PID files belong to root (or the dumpable owner) rather
        // than to its own uid.
        if case .success(let info) = Sys.stat(dir, prefix + "mem"), let targetUID = target.effectiveUID,
           info.st_uid != targetUID, !hasPtraceCap {
            return .notDumpable
        }
        // A setuid (or setgid-to-root) program run by the caller: real uid ours, effective uid
        // another; exec made it non-dumpable, which is the reason, not its capabilities.
        if let real = target.realUID, let effective = target.effectiveUID, real != effective, !hasPtraceCap {
            return .notDumpable
        }
        if let theirs = target.permittedCapabilities, let mine = me.effectiveCapabilities, theirs & ~mine != 0 {
            return .targetHasMoreCapabilities
        }
        return .unknown
    }

    /// `kernel.yama.ptrace_scope`, or `nil` where Yama is absent.
    package static func yamaScope() -> Int? {
        guard case .success(let bytes) = Sys.readFile(AT_FDCWD, "/proc/sys/kernel/yama/ptrace_scope") else { return nil }
        return Int(String(decoding: bytes, as: UTF8.self).trimmingSpaces)
    }
}

extension String {
    package var trimmingSpaces: String {
        var view = Substring(self)
        while let first = view.first, first.isWhitespace { view.removeFirst() }
        while let last = view.last, last.isWhitespace { view.removeLast() }
        return String(view)
    }
}

extension AccessDiagnosis {
    /// ``diagnose(pid:procDir:)`` with a typed `/proc/PID` directory descriptor.
    package static func diagnose(pid: Int32, procDirectory: FileDescriptor) -> AccessDenialReason {
        diagnose(pid: pid, procDir: procDirectory.rawValue)
    }
}
