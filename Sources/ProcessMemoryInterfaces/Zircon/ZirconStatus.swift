/// Fuchsia's Zircon kernel interface, as a Swift surface over `ProcessMemory`.
///
/// **Writes need the debugging switch.** As on Fuchsia, where `zx_process_write_memory` needs
/// `kernel.enable-debugging-syscalls=true` on the kernel command line, every write returns
/// `ZX_ERR_NOT_SUPPORTED` until the switch is on. Turn it on in one of three ways:
/// - for the whole process, in code: `Zircon.KernelCommandLine.enableDebuggingSyscalls = true`;
/// - for the whole process, before it starts: set the environment variable
///   `PROCESS_MEMORY_ZX_ENABLE_DEBUGGING_SYSCALLS=1` (read once, at first use);
/// - for one task or thread only: `Zircon.KernelCommandLine.withDebuggingSyscalls { … }`.
///
/// Reads need no switch.
///
/// `zx_process_read_memory` and `zx_process_write_memory` are
/// ``processReadMemory(_:vaddr:buffer:actual:)`` and ``processWriteMemory(_:vaddr:buffer:actual:)``,
/// or, keeping the C call's (pointer, size) shape,
/// ``processReadMemory(_:vaddr:buffer:bufferSize:actual:)`` and
/// ``processWriteMemory(_:vaddr:buffer:bufferSize:actual:)``; they take a ``Handle`` carrying
/// ``Rights`` and return a ``Status``.
public enum Zircon {}

extension Zircon {
    /// A `zx_status_t`: `ZX_OK` or a negative `ZX_ERR_*` value, with the numbers of
    /// `zircon/errors.h`.
    ///
    /// A struct rather than an enum, so every `zx_status_t` value can be represented. It conforms to
    /// `Error` so functions that create handles can throw it.
    public struct Status: RawRepresentable, Hashable, Sendable, Error, CustomStringConvertible {
        /// The `zx_status_t` value.
        public let rawValue: Int32
        /// Wraps a `zx_status_t` value.
        public init(rawValue: Int32) { self.rawValue = rawValue }

        /// `ZX_OK` (0): the operation succeeded.
        public static let ok = Status(rawValue: 0)
        /// `ZX_ERR_INTERNAL` (-1): an otherwise unspecified error.
        public static let `internal` = Status(rawValue: -1)
        /// `ZX_ERR_NOT_SUPPORTED` (-2): not implemented, supported, or enabled.
        public static let notSupported = Status(rawValue: -2)
        /// `ZX_ERR_NO_RESOURCES` (-3): a resource other than memory could not be allocated.
        public static let noResources = Status(rawValue: -3)
        /// `ZX_ERR_NO_MEMORY` (-4): memory could not be allocated (also: no memory at an address,
        /// in the documented `zx_process_write_memory`).
        public static let noMemory = Status(rawValue: -4)
        /// `ZX_ERR_INTERNAL_INTR_RETRY` (-6): never seen outside the vDSO.
        public static let internalInterruptRetry = Status(rawValue: -6)
        /// `ZX_ERR_INVALID_ARGS` (-10): an argument is invalid (a null buffer, a bad size).
        public static let invalidArgs = Status(rawValue: -10)
        /// `ZX_ERR_BAD_HANDLE` (-11): the handle value does not refer to a handle.
        public static let badHandle = Status(rawValue: -11)
        /// `ZX_ERR_WRONG_TYPE` (-12): the object is the wrong type for the operation.
        public static let wrongType = Status(rawValue: -12)
        /// `ZX_ERR_BAD_SYSCALL` (-13): the syscall number is invalid.
        public static let badSyscall = Status(rawValue: -13)
        /// `ZX_ERR_OUT_OF_RANGE` (-14): an argument is outside the valid range.
        public static let outOfRange = Status(rawValue: -14)
        /// `ZX_ERR_BUFFER_TOO_SMALL` (-15): the caller's buffer is too small.
        public static let bufferTooSmall = Status(rawValue: -15)
        /// `ZX_ERR_BAD_STATE` (-20): the object's state does not allow the operation.
        public static let badState = Status(rawValue: -20)
        /// `ZX_ERR_TIMED_OUT` (-21).
        public static let timedOut = Status(rawValue: -21)
        /// `ZX_ERR_SHOULD_WAIT` (-22).
        public static let shouldWait = Status(rawValue: -22)
        /// `ZX_ERR_CANCELED` (-23).
        public static let canceled = Status(rawValue: -23)
        /// `ZX_ERR_PEER_CLOSED` (-24).
        public static let peerClosed = Status(rawValue: -24)
        /// `ZX_ERR_NOT_FOUND` (-25): the requested entity is not found.
        public static let notFound = Status(rawValue: -25)
        /// `ZX_ERR_ALREADY_EXISTS` (-26).
        public static let alreadyExists = Status(rawValue: -26)
        /// `ZX_ERR_ALREADY_BOUND` (-27).
        public static let alreadyBound = Status(rawValue: -27)
        /// `ZX_ERR_UNAVAILABLE` (-28).
        public static let unavailable = Status(rawValue: -28)
        /// `ZX_ERR_ACCESS_DENIED` (-30): the caller lacks the permission (a right on the handle).
        public static let accessDenied = Status(rawValue: -30)
        /// `ZX_ERR_IO` (-40): an otherwise unspecified I/O error.
        public static let io = Status(rawValue: -40)
        /// `ZX_ERR_IO_REFUSED` (-41).
        public static let ioRefused = Status(rawValue: -41)
        /// `ZX_ERR_IO_DATA_INTEGRITY` (-42).
        public static let ioDataIntegrity = Status(rawValue: -42)
        /// `ZX_ERR_IO_DATA_LOSS` (-43).
        public static let ioDataLoss = Status(rawValue: -43)
        /// `ZX_ERR_IO_NOT_PRESENT` (-44).
        public static let ioNotPresent = Status(rawValue: -44)
        /// `ZX_ERR_IO_OVERRUN` (-45).
        public static let ioOverrun = Status(rawValue: -45)
        /// `ZX_ERR_IO_MISSED_DEADLINE` (-46).
        public static let ioMissedDeadline = Status(rawValue: -46)
        /// `ZX_ERR_IO_INVALID` (-47).
        public static let ioInvalid = Status(rawValue: -47)
        /// `ZX_ERR_BAD_PATH` (-50).
        public static let badPath = Status(rawValue: -50)
        /// `ZX_ERR_NOT_DIR` (-51).
        public static let notDir = Status(rawValue: -51)
        /// `ZX_ERR_NOT_FILE` (-52).
        public static let notFile = Status(rawValue: -52)
        /// `ZX_ERR_FILE_BIG` (-53).
        public static let fileBig = Status(rawValue: -53)
        /// `ZX_ERR_NO_SPACE` (-54).
        public static let noSpace = Status(rawValue: -54)
        /// `ZX_ERR_NOT_EMPTY` (-55).
        public static let notEmpty = Status(rawValue: -55)

        /// Whether this is `ZX_OK`.
        public var isOK: Bool { rawValue == 0 }

        /// The C name (`ZX_OK`, `ZX_ERR_NOT_FOUND`, …), as `zx_status_get_string` gives it, or
        /// `(UNKNOWN)` for a value this surface does not name.
        public var name: String { Self.names[rawValue] ?? "(UNKNOWN)" }

        /// The C name, for example `ZX_ERR_NOT_FOUND`.
        public var description: String { name }

        private static let names: [Int32: String] = [
            0: "ZX_OK", -1: "ZX_ERR_INTERNAL", -2: "ZX_ERR_NOT_SUPPORTED", -3: "ZX_ERR_NO_RESOURCES",
            -4: "ZX_ERR_NO_MEMORY", -6: "ZX_ERR_INTERNAL_INTR_RETRY", -10: "ZX_ERR_INVALID_ARGS",
            -11: "ZX_ERR_BAD_HANDLE", -12: "ZX_ERR_WRONG_TYPE", -13: "ZX_ERR_BAD_SYSCALL",
            -14: "ZX_ERR_OUT_OF_RANGE", -15: "ZX_ERR_BUFFER_TOO_SMALL", -20: "ZX_ERR_BAD_STATE",
            -21: "ZX_ERR_TIMED_OUT", -22: "ZX_ERR_SHOULD_WAIT", -23: "ZX_ERR_CANCELED",
            -24: "ZX_ERR_PEER_CLOSED", -25: "ZX_ERR_NOT_FOUND", -26: "ZX_ERR_ALREADY_EXISTS",
            -27: "ZX_ERR_ALREADY_BOUND", -28: "ZX_ERR_UNAVAILABLE", -30: "ZX_ERR_ACCESS_DENIED",
            -40: "ZX_ERR_IO", -41: "ZX_ERR_IO_REFUSED", -42: "ZX_ERR_IO_DATA_INTEGRITY",
            -43: "ZX_ERR_IO_DATA_LOSS", -44: "ZX_ERR_IO_NOT_PRESENT", -45: "ZX_ERR_IO_OVERRUN",
            -46: "ZX_ERR_IO_MISSED_DEADLINE", -47: "ZX_ERR_IO_INVALID", -50: "ZX_ERR_BAD_PATH",
            -51: "ZX_ERR_NOT_DIR", -52: "ZX_ERR_NOT_FILE", -53: "ZX_ERR_FILE_BIG", -54: "ZX_ERR_NO_SPACE",
            -55: "ZX_ERR_NOT_EMPTY",
        ]
    }

    /// `zx_status_get_string`: the C name of `status`.
    public static func statusGetString(_ status: Status) -> String { status.name }
}
