/// The Mach kernel interface (`vm_read`, `vm_read_overwrite`), as a Swift surface over
/// `ProcessMemory`.
///
/// A ``Task`` stands for a task port; ``taskForPid(_:_:)`` obtains one. The calls return a
/// ``KernReturn``.
public enum Mach {}

extension Mach {
    /// A `kern_return_t`, with the values of `mach/kern_return.h` (and, for a dead or deallocated
    /// port, `MACH_SEND_INVALID_DEST` from `mach/message.h`, which every Mach call through a port can
    /// return).
    public struct KernReturn: RawRepresentable, Hashable, Sendable, Error, CustomStringConvertible {
        /// The `kern_return_t` value.
        public let rawValue: Int32
        /// Wraps a `kern_return_t` value.
        public init(rawValue: Int32) { self.rawValue = rawValue }

        /// `KERN_SUCCESS` (0).
        public static let success = KernReturn(rawValue: 0)
        /// `KERN_INVALID_ADDRESS` (1): the address is illegal or specifies a non-allocated region,
        /// or fewer than `size` bytes follow it, or the caller's buffer cannot be written.
        public static let invalidAddress = KernReturn(rawValue: 1)
        /// `KERN_PROTECTION_FAILURE` (2): the memory is valid but does not permit the access.
        public static let protectionFailure = KernReturn(rawValue: 2)
        /// `KERN_NO_SPACE` (3): no room in the address space.
        public static let noSpace = KernReturn(rawValue: 3)
        /// `KERN_INVALID_ARGUMENT` (4): an argument is not valid.
        public static let invalidArgument = KernReturn(rawValue: 4)
        /// `KERN_FAILURE` (5): the operation failed for another reason (`task_for_pid` says this
        /// for every refusal).
        public static let failure = KernReturn(rawValue: 5)
        /// `KERN_RESOURCE_SHORTAGE` (6): a resource (memory) ran out.
        public static let resourceShortage = KernReturn(rawValue: 6)
        /// `KERN_NOT_RECEIVER` (7).
        public static let notReceiver = KernReturn(rawValue: 7)
        /// `KERN_NO_ACCESS` (8): bogus access restriction.
        public static let noAccess = KernReturn(rawValue: 8)
        /// `KERN_MEMORY_FAILURE` (9): the memory object was destroyed during the access.
        public static let memoryFailure = KernReturn(rawValue: 9)
        /// `KERN_MEMORY_ERROR` (10): the memory object could not supply the data (a pager error).
        /// `vm_read` never returns it: a file page past its end is ``invalidAddress``, as seed 002
        /// lists.
        public static let memoryError = KernReturn(rawValue: 10)
        /// `KERN_INVALID_NAME` (15): the port name does not denote a right.
        public static let invalidName = KernReturn(rawValue: 15)
        /// `KERN_INVALID_TASK` (16): the target task is not active.
        public static let invalidTask = KernReturn(rawValue: 16)
        /// `KERN_INVALID_RIGHT` (17).
        public static let invalidRight = KernReturn(rawValue: 17)
        /// `KERN_INVALID_VALUE` (18).
        public static let invalidValue = KernReturn(rawValue: 18)
        /// `KERN_TERMINATED` (37): the object has been terminated.
        public static let terminated = KernReturn(rawValue: 37)
        /// `KERN_NOT_SUPPORTED` (46).
        public static let notSupported = KernReturn(rawValue: 46)
        /// `MACH_SEND_INVALID_DEST` (0x10000003): the destination port is dead or not a valid
        /// send right (a deallocated task port, or the port of a task that has terminated).
        public static let sendInvalidDest = KernReturn(rawValue: 0x1000_0003)

        /// Whether this is `KERN_SUCCESS`.
        public var isSuccess: Bool { rawValue == 0 }

        /// The C name (`KERN_INVALID_ADDRESS`, …) or the number.
        public var name: String { Self.names[rawValue]?.0 ?? "kern_return_t(\(rawValue))" }

        /// The text `mach_error_string` gives, for example `(os/kern) invalid address`.
        public var errorString: String { Self.names[rawValue]?.1 ?? "(os/kern) unknown error code \(rawValue)" }

        /// `NAME (text)`, for example `KERN_INVALID_ADDRESS ((os/kern) invalid address)`.
        public var description: String { "\(name) (\(errorString))" }

        private static let names: [Int32: (String, String)] = [
            0: ("KERN_SUCCESS", "(os/kern) successful"),
            1: ("KERN_INVALID_ADDRESS", "(os/kern) invalid address"),
            2: ("KERN_PROTECTION_FAILURE", "(os/kern) protection failure"),
            3: ("KERN_NO_SPACE", "(os/kern) no space available"),
            4: ("KERN_INVALID_ARGUMENT", "(os/kern) invalid argument"),
            5: ("KERN_FAILURE", "(os/kern) failure"),
            6: ("KERN_RESOURCE_SHORTAGE", "(os/kern) resource shortage"),
            7: ("KERN_NOT_RECEIVER", "(os/kern) not receiver"),
            8: ("KERN_NO_ACCESS", "(os/kern) no access"),
            9: ("KERN_MEMORY_FAILURE", "(os/kern) memory failure"),
            10: ("KERN_MEMORY_ERROR", "(os/kern) memory error"),
            15: ("KERN_INVALID_NAME", "(os/kern) invalid name"),
            16: ("KERN_INVALID_TASK", "(os/kern) invalid task"),
            17: ("KERN_INVALID_RIGHT", "(os/kern) invalid right"),
            18: ("KERN_INVALID_VALUE", "(os/kern) invalid value"),
            37: ("KERN_TERMINATED", "(os/kern) terminated"),
            46: ("KERN_NOT_SUPPORTED", "(os/kern) not supported"),
            0x1000_0003: ("MACH_SEND_INVALID_DEST", "(ipc/send) invalid destination port"),
        ]
    }

    /// `mach_error_string(kr)`.
    public static func machErrorString(_ kr: KernReturn) -> String { kr.errorString }
}
