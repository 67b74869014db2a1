import Glibc

/// The Win32 process-memory interface (`OpenProcess`, `ReadProcessMemory`, `WriteProcessMemory`,
/// `CloseHandle`, `GetLastError`), as a Swift surface over `ProcessMemory`.
///
/// The functions return `Bool` (the `BOOL` result) or an optional handle, and leave the reason for a
/// failure in a per-thread last-error value read with ``getLastError()``.
public enum Win32 {}

extension Win32 {
    /// A Win32 system error code (`winerror.h`), as ``getLastError()`` returns it.
    public struct Error: RawRepresentable, Hashable, Sendable, Swift.Error, CustomStringConvertible {
        /// The `DWORD` value.
        public let rawValue: UInt32
        /// Wraps a `DWORD` error code.
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// `ERROR_SUCCESS` (0).
        public static let success = Error(rawValue: 0)
        /// `ERROR_INVALID_FUNCTION` (1).
        public static let invalidFunction = Error(rawValue: 1)
        /// `ERROR_ACCESS_DENIED` (5): the handle lacks the access right, or the process may not be
        /// opened or is terminating.
        public static let accessDenied = Error(rawValue: 5)
        /// `ERROR_INVALID_HANDLE` (6): the handle is NULL or closed.
        public static let invalidHandle = Error(rawValue: 6)
        /// `ERROR_NOT_ENOUGH_MEMORY` (8).
        public static let notEnoughMemory = Error(rawValue: 8)
        /// `ERROR_GEN_FAILURE` (31).
        public static let genFailure = Error(rawValue: 31)
        /// `ERROR_NOT_SUPPORTED` (50).
        public static let notSupported = Error(rawValue: 50)
        /// `ERROR_INVALID_PARAMETER` (87): for example no process has the given ID.
        public static let invalidParameter = Error(rawValue: 87)
        /// `ERROR_PARTIAL_COPY` (299): "Only part of a ReadProcessMemory or WriteProcessMemory
        /// request was completed."
        public static let partialCopy = Error(rawValue: 299)
        /// `ERROR_NOACCESS` (998): "Invalid access to memory location."
        public static let noAccess = Error(rawValue: 998)

        /// The C name (`ERROR_PARTIAL_COPY`, …) or the number.
        public var name: String { Self.names[rawValue] ?? "ERROR_\(rawValue)" }

        /// `ERROR_PARTIAL_COPY (299)`.
        public var description: String { "\(name) (\(rawValue))" }

        private static let names: [UInt32: String] = [
            0: "ERROR_SUCCESS", 1: "ERROR_INVALID_FUNCTION", 5: "ERROR_ACCESS_DENIED", 6: "ERROR_INVALID_HANDLE",
            8: "ERROR_NOT_ENOUGH_MEMORY", 31: "ERROR_GEN_FAILURE", 50: "ERROR_NOT_SUPPORTED",
            87: "ERROR_INVALID_PARAMETER", 299: "ERROR_PARTIAL_COPY", 998: "ERROR_NOACCESS",
        ]
    }

    /// `GetLastError()`: the calling thread's last-error code.
    ///
    /// Per thread, as on Windows (a pthread key): a failure on one thread never changes what another
    /// thread reads. The functions of this surface set it when they fail and leave it unchanged when
    /// they succeed, as the Win32 functions do; a thread that never saw a failure reads
    /// ``Error/success``.
    public static func getLastError() -> Error {
        Error(rawValue: UInt32(truncatingIfNeeded: UInt(bitPattern: pthread_getspecific(lastErrorKey))))
    }

    /// `SetLastError(code)`: sets the calling thread's last-error code.
    public static func setLastError(_ error: Error) {
        pthread_setspecific(lastErrorKey, UnsafeRawPointer(bitPattern: UInt(error.rawValue)))
    }

    /// Sets the last error and returns `false`, the `BOOL` of a failed call.
    static func fail(_ error: Error) -> Bool {
        setLastError(error)
        return false
    }
}

/// The key of the per-thread last error: the code is stored in the pointer's bits (0 is `nil`).
private let lastErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()
