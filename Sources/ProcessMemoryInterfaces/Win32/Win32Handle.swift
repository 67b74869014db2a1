import ProcessMemory
import Synchronization

extension Win32 {
    /// Process access rights for ``openProcess(desiredAccess:inheritHandle:processId:)``, with the
    /// values of `winnt.h`.
    public struct ProcessAccessRights: OptionSet, Hashable, Sendable, CustomStringConvertible {
        /// The `DWORD` access mask.
        public let rawValue: UInt32
        /// Wraps an access mask.
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// `PROCESS_TERMINATE` (0x0001).
        public static let terminate = ProcessAccessRights(rawValue: 0x0001)
        /// `PROCESS_CREATE_THREAD` (0x0002).
        public static let createThread = ProcessAccessRights(rawValue: 0x0002)
        /// `PROCESS_VM_OPERATION` (0x0008): needed, with `PROCESS_VM_WRITE`, to write memory.
        public static let vmOperation = ProcessAccessRights(rawValue: 0x0008)
        /// `PROCESS_VM_READ` (0x0010): needed to read memory.
        public static let vmRead = ProcessAccessRights(rawValue: 0x0010)
        /// `PROCESS_VM_WRITE` (0x0020): needed, with `PROCESS_VM_OPERATION`, to write memory.
        public static let vmWrite = ProcessAccessRights(rawValue: 0x0020)
        /// `PROCESS_DUP_HANDLE` (0x0040).
        public static let dupHandle = ProcessAccessRights(rawValue: 0x0040)
        /// `PROCESS_CREATE_PROCESS` (0x0080).
        public static let createProcess = ProcessAccessRights(rawValue: 0x0080)
        /// `PROCESS_SET_QUOTA` (0x0100).
        public static let setQuota = ProcessAccessRights(rawValue: 0x0100)
        /// `PROCESS_SET_INFORMATION` (0x0200).
        public static let setInformation = ProcessAccessRights(rawValue: 0x0200)
        /// `PROCESS_QUERY_INFORMATION` (0x0400).
        public static let queryInformation = ProcessAccessRights(rawValue: 0x0400)
        /// `PROCESS_SUSPEND_RESUME` (0x0800).
        public static let suspendResume = ProcessAccessRights(rawValue: 0x0800)
        /// `PROCESS_QUERY_LIMITED_INFORMATION` (0x1000).
        public static let queryLimitedInformation = ProcessAccessRights(rawValue: 0x1000)
        /// `SYNCHRONIZE` (0x00100000).
        public static let synchronize = ProcessAccessRights(rawValue: 0x0010_0000)
        /// `PROCESS_ALL_ACCESS` (0x001FFFFF).
        public static let allAccess = ProcessAccessRights(rawValue: 0x001F_FFFF)

        private static let names: [(ProcessAccessRights, String)] = [
            (.terminate, "PROCESS_TERMINATE"), (.createThread, "PROCESS_CREATE_THREAD"),
            (.vmOperation, "PROCESS_VM_OPERATION"), (.vmRead, "PROCESS_VM_READ"), (.vmWrite, "PROCESS_VM_WRITE"),
            (.dupHandle, "PROCESS_DUP_HANDLE"), (.createProcess, "PROCESS_CREATE_PROCESS"),
            (.setQuota, "PROCESS_SET_QUOTA"), (.setInformation, "PROCESS_SET_INFORMATION"),
            (.queryInformation, "PROCESS_QUERY_INFORMATION"), (.suspendResume, "PROCESS_SUSPEND_RESUME"),
            (.queryLimitedInformation, "PROCESS_QUERY_LIMITED_INFORMATION"), (.synchronize, "SYNCHRONIZE"),
        ]

        /// `PROCESS_VM_READ|PROCESS_VM_WRITE`-style names.
        public var description: String {
            if self == .allAccess { return "PROCESS_ALL_ACCESS" }
            let parts = Self.names.filter { contains($0.0) }.map(\.1)
            return parts.isEmpty ? "0" : parts.joined(separator: "|")
        }
    }

    /// A process `HANDLE` from ``openProcess(desiredAccess:inheritHandle:processId:)``: the core
    /// library's `ProcessHandle` with the access mask it was opened with. Thread-safe.
    public final class Handle: Sendable, CustomStringConvertible {
        /// The access the handle grants.
        public let access: ProcessAccessRights
        /// `bInheritHandle` as given. Linux has no handle inheritance for these objects; the
        /// descriptors underneath are close-on-exec either way.
        public let isInheritable: Bool
        /// The process ID.
        public let processId: UInt32
        private let slot: Mutex<ProcessHandle?>

        /// A handle for the process behind `processHandle`, granting `access`. The core handle's
        /// own rights still apply underneath (one opened `.read` cannot write).
        public init(_ processHandle: ProcessHandle, access: ProcessAccessRights, inheritable: Bool = false) {
            self.access = access
            self.isInheritable = inheritable
            self.processId = UInt32(processHandle.pid)
            self.slot = Mutex(processHandle)
        }

        /// The core handle, or `nil` once closed.
        public var processHandle: ProcessHandle? { slot.withLock { $0 } }

        fileprivate func close() -> Bool {
            slot.withLock { handle in
                guard let current = handle else { return false }
                current.close()
                handle = nil
                return true
            }
        }

        /// `HANDLE(process PID, ACCESS)` or `HANDLE(closed)`.
        public var description: String {
            processHandle == nil ? "HANDLE(closed)" : "HANDLE(process \(processId), \(access))"
        }
    }

    /// `OpenProcess(dwDesiredAccess, bInheritHandle, dwProcessId)`: a handle to the process
    /// `processId`, or `nil` with the reason in ``getLastError()``.
    ///
    /// The core handle is opened with the read right when `desiredAccess` contains
    /// ``ProcessAccessRights/vmRead`` or no memory right at all (Linux needs a ptrace-level check
    /// even to query a process), and with the write right when it contains
    /// ``ProcessAccessRights/vmWrite``.
    ///
    /// Last errors: ``Error/invalidParameter`` when no process has that ID (or it is 0 or not a
    /// PID), as on Windows; ``Error/accessDenied`` when the kernel refuses access, for a kernel
    /// thread (like the System process, it cannot be opened for memory access) and for a process
    /// that is exiting or a zombie; ``Error/notEnoughMemory`` when out of descriptors or memory.
    public static func openProcess(desiredAccess: ProcessAccessRights, inheritHandle: Bool,
                                   processId: UInt32) -> Handle? {
        guard processId > 0, let pid = Int32(exactly: processId) else {
            setLastError(.invalidParameter)
            return nil
        }
        var rights: AccessRights = []
        if desiredAccess.contains(.vmRead) { rights.insert(.read) }
        if desiredAccess.contains(.vmWrite) { rights.insert(.write) }
        if rights.isEmpty { rights = .read }
        do {
            return Handle(try ProcessHandle(pid: pid, rights: rights), access: desiredAccess, inheritable: inheritHandle)
        } catch {
            switch error.code {
            case .notFound, .invalidArguments: setLastError(.invalidParameter)
            case .noMemory: setLastError(.notEnoughMemory)
            default: setLastError(.accessDenied)
            }
            return nil
        }
    }

    /// `CloseHandle(hObject)`: closes the handle. `false` with ``Error/invalidHandle`` when it is
    /// `nil` or already closed.
    @discardableResult
    public static func closeHandle(_ hObject: Handle?) -> Bool {
        guard let hObject, hObject.close() else { return fail(.invalidHandle) }
        return true
    }
}
