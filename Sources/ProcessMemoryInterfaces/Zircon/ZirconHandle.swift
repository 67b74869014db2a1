import ProcessMemory
import Synchronization

extension Zircon {
    /// A `zx_rights_t`: what a handle allows, with the bit values of `zircon/rights.h`.
    public struct Rights: OptionSet, Hashable, Sendable, CustomStringConvertible {
        /// The `zx_rights_t` bits.
        public let rawValue: UInt32
        /// Wraps `zx_rights_t` bits.
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// `ZX_RIGHT_NONE`.
        public static let none: Rights = []
        /// `ZX_RIGHT_DUPLICATE` (1 << 0): the handle may be duplicated.
        public static let duplicate = Rights(rawValue: 1 << 0)
        /// `ZX_RIGHT_TRANSFER` (1 << 1): the handle may be sent over a channel.
        public static let transfer = Rights(rawValue: 1 << 1)
        /// `ZX_RIGHT_READ` (1 << 2): read the object's data (a process's memory).
        public static let read = Rights(rawValue: 1 << 2)
        /// `ZX_RIGHT_WRITE` (1 << 3): write the object's data (a process's memory).
        public static let write = Rights(rawValue: 1 << 3)
        /// `ZX_RIGHT_EXECUTE` (1 << 4).
        public static let execute = Rights(rawValue: 1 << 4)
        /// `ZX_RIGHT_MAP` (1 << 5).
        public static let map = Rights(rawValue: 1 << 5)
        /// `ZX_RIGHT_GET_PROPERTY` (1 << 6).
        public static let getProperty = Rights(rawValue: 1 << 6)
        /// `ZX_RIGHT_SET_PROPERTY` (1 << 7).
        public static let setProperty = Rights(rawValue: 1 << 7)
        /// `ZX_RIGHT_ENUMERATE` (1 << 8).
        public static let enumerate = Rights(rawValue: 1 << 8)
        /// `ZX_RIGHT_DESTROY` (1 << 9).
        public static let destroy = Rights(rawValue: 1 << 9)
        /// `ZX_RIGHT_SET_POLICY` (1 << 10).
        public static let setPolicy = Rights(rawValue: 1 << 10)
        /// `ZX_RIGHT_GET_POLICY` (1 << 11).
        public static let getPolicy = Rights(rawValue: 1 << 11)
        /// `ZX_RIGHT_SIGNAL` (1 << 12).
        public static let signal = Rights(rawValue: 1 << 12)
        /// `ZX_RIGHT_SIGNAL_PEER` (1 << 13).
        public static let signalPeer = Rights(rawValue: 1 << 13)
        /// `ZX_RIGHT_WAIT` (1 << 14).
        public static let wait = Rights(rawValue: 1 << 14)
        /// `ZX_RIGHT_INSPECT` (1 << 15).
        public static let inspect = Rights(rawValue: 1 << 15)
        /// `ZX_RIGHT_MANAGE_JOB` (1 << 16).
        public static let manageJob = Rights(rawValue: 1 << 16)
        /// `ZX_RIGHT_MANAGE_PROCESS` (1 << 17).
        public static let manageProcess = Rights(rawValue: 1 << 17)
        /// `ZX_RIGHT_MANAGE_THREAD` (1 << 18).
        public static let manageThread = Rights(rawValue: 1 << 18)
        /// `ZX_RIGHT_APPLY_PROFILE` (1 << 19).
        public static let applyProfile = Rights(rawValue: 1 << 19)
        /// `ZX_RIGHT_SAME_RIGHTS` (1 << 31): in `zx_handle_duplicate`, keep the original rights.
        public static let sameRights = Rights(rawValue: 1 << 31)

        /// `ZX_RIGHTS_BASIC`: transfer, duplicate, wait, inspect.
        public static let basic: Rights = [.transfer, .duplicate, .wait, .inspect]
        /// `ZX_RIGHTS_IO`: read and write.
        public static let io: Rights = [.read, .write]
        /// `ZX_RIGHTS_PROPERTY`: get and set property.
        public static let property: Rights = [.getProperty, .setProperty]
        /// `ZX_RIGHTS_POLICY`: get and set policy.
        public static let policy: Rights = [.getPolicy, .setPolicy]
        /// The rights of a new process handle (`ZX_DEFAULT_PROCESS_RIGHTS`).
        public static let defaultProcess: Rights = [
            .basic, .io, .property, .enumerate, .destroy, .signal, .manageProcess, .manageThread,
        ]
        /// The rights of a new thread handle (`ZX_DEFAULT_THREAD_RIGHTS`).
        public static let defaultThread: Rights = [.basic, .io, .property, .destroy, .signal, .manageThread]
        /// The rights of a new event handle (`ZX_DEFAULT_EVENT_RIGHTS`).
        public static let defaultEvent: Rights = [.basic, .signal]

        private static let names: [(Rights, String)] = [
            (.duplicate, "DUPLICATE"), (.transfer, "TRANSFER"), (.read, "READ"), (.write, "WRITE"),
            (.execute, "EXECUTE"), (.map, "MAP"), (.getProperty, "GET_PROPERTY"), (.setProperty, "SET_PROPERTY"),
            (.enumerate, "ENUMERATE"), (.destroy, "DESTROY"), (.setPolicy, "SET_POLICY"), (.getPolicy, "GET_POLICY"),
            (.signal, "SIGNAL"), (.signalPeer, "SIGNAL_PEER"), (.wait, "WAIT"), (.inspect, "INSPECT"),
            (.manageJob, "MANAGE_JOB"), (.manageProcess, "MANAGE_PROCESS"), (.manageThread, "MANAGE_THREAD"),
            (.applyProfile, "APPLY_PROFILE"), (.resize, "RESIZE"), (.sameRights, "SAME_RIGHTS"),
        ]

        /// `ZX_RIGHT_READ|ZX_RIGHT_WRITE`-style names, or `ZX_RIGHT_NONE`.
        public var description: String {
            let parts = Self.names.filter { contains($0.0) }.map { "ZX_RIGHT_" + $0.1 }
            return parts.isEmpty ? "ZX_RIGHT_NONE" : parts.joined(separator: "|")
        }
    }

    /// A `zx_obj_type_t`, with the values of `zircon/types.h`.
    public struct ObjectType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The `zx_obj_type_t` value.
        public let rawValue: UInt32
        /// Wraps a `zx_obj_type_t` value.
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// `ZX_OBJ_TYPE_NONE` (0): what an invalid handle refers to.
        public static let none = ObjectType(rawValue: 0)
        /// `ZX_OBJ_TYPE_PROCESS` (1).
        public static let process = ObjectType(rawValue: 1)
        /// `ZX_OBJ_TYPE_THREAD` (2).
        public static let thread = ObjectType(rawValue: 2)
        /// `ZX_OBJ_TYPE_VMO` (3).
        public static let vmo = ObjectType(rawValue: 3)
        /// `ZX_OBJ_TYPE_CHANNEL` (4).
        public static let channel = ObjectType(rawValue: 4)
        /// `ZX_OBJ_TYPE_EVENT` (5).
        public static let event = ObjectType(rawValue: 5)
        /// `ZX_OBJ_TYPE_PORT` (6).
        public static let port = ObjectType(rawValue: 6)
        /// `ZX_OBJ_TYPE_SOCKET` (14).
        public static let socket = ObjectType(rawValue: 14)
        /// `ZX_OBJ_TYPE_RESOURCE` (15).
        public static let resource = ObjectType(rawValue: 15)
        /// `ZX_OBJ_TYPE_EVENTPAIR` (16).
        public static let eventPair = ObjectType(rawValue: 16)
        /// `ZX_OBJ_TYPE_JOB` (17).
        public static let job = ObjectType(rawValue: 17)
        /// `ZX_OBJ_TYPE_VMAR` (18).
        public static let vmar = ObjectType(rawValue: 18)
        /// `ZX_OBJ_TYPE_FIFO` (19).
        public static let fifo = ObjectType(rawValue: 19)
        /// `ZX_OBJ_TYPE_TIMER` (22).
        public static let timer = ObjectType(rawValue: 22)

        /// `ZX_OBJ_TYPE_PROCESS`, … or the number.
        public var description: String {
            let known: [UInt32: String] = [
                0: "NONE", 1: "PROCESS", 2: "THREAD", 3: "VMO", 4: "CHANNEL", 5: "EVENT", 6: "PORT",
                14: "SOCKET", 15: "RESOURCE", 16: "EVENTPAIR", 17: "JOB", 18: "VMAR", 19: "FIFO", 22: "TIMER",
            ]
            return known[rawValue].map { "ZX_OBJ_TYPE_" + $0 } ?? "ZX_OBJ_TYPE(\(rawValue))"
        }
    }
}

/// A kernel object a ``Zircon/Handle`` can refer to.
///
/// Each object kind is its own type, so new kinds can be added in separate files (a VMO for
/// `zx_vmo_read`, for instance) without touching the handle: conform a final class to this protocol
/// and look it up with ``Zircon/Handle/object(_:requiring:)``, which gives `ZX_ERR_WRONG_TYPE` when
/// the handle refers to another kind.
public protocol ZirconObject: AnyObject, Sendable {
    /// The object's `ZX_OBJ_TYPE_*`.
    var objectType: Zircon.ObjectType { get }
}

extension Zircon {
    /// A `zx_handle_t`: a reference to a kernel object together with the rights it grants.
    ///
    /// Closing a handle makes it invalid (`ZX_ERR_BAD_HANDLE` afterwards); the object lives on while
    /// other handles (duplicates) refer to it. ``invalid`` is `ZX_HANDLE_INVALID`, which never
    /// refers to anything. Thread-safe.
    public final class Handle: Sendable, CustomStringConvertible {
        private enum Slot {
            case never
            case open(any ZirconObject)
            case closed
        }

        /// The rights this handle grants.
        public let rights: Rights
        private let slot: Mutex<Slot>

        /// A handle to `object` granting `rights`.
        public init(_ object: any ZirconObject, rights: Rights) {
            self.rights = rights
            self.slot = Mutex(.open(object))
        }

        private init() {
            self.rights = []
            self.slot = Mutex(.never)
        }

        /// `ZX_HANDLE_INVALID`: never refers to an object; closing it is not an error.
        public static let invalid = Handle()

        /// A handle to the process behind `process` (a `ProcessHandle` of the core library),
        /// granting `rights` (by default `ZX_DEFAULT_PROCESS_RIGHTS`).
        ///
        /// The Zircon rights are checked by the Zircon calls; the core handle's own
        /// `AccessRights` still apply underneath (a core handle opened `.read` cannot write).
        public convenience init(process: ProcessHandle, rights: Rights = .defaultProcess) {
            self.init(Process(process), rights: rights)
        }

        /// A handle to a new event object (`zx_event_create`), the simplest object that is not a
        /// process: giving it to a process call returns `ZX_ERR_WRONG_TYPE`.
        public static func event(rights: Rights = .defaultEvent) -> Handle {
            Handle(Event(), rights: rights)
        }

        /// Opens the task whose koid is `koid`, as `zx_object_get_child` on the root job does.
        ///
        /// On Linux a koid is a PID. A process gives a handle to a ``Process``. A kernel thread
        /// (pid 2, kthreadd, and its children) has a PID but no user address space: it is not a
        /// process, and it gives a handle to a ``Thread``, which the process calls refuse with
        /// `ZX_ERR_WRONG_TYPE`.
        ///
        /// The core handle is opened with write access when `rights` contains ``Rights/write``.
        /// - Throws: `ZX_ERR_INVALID_ARGS` (koid ≤ 0 or not a PID), `ZX_ERR_NOT_FOUND` (no such
        ///   task), `ZX_ERR_ACCESS_DENIED` (the kernel refused access), `ZX_ERR_BAD_STATE` (the
        ///   process is exiting or a zombie), `ZX_ERR_NO_MEMORY` (out of descriptors or memory).
        public static func open(koid: UInt64, rights: Rights = .defaultProcess) throws(Status) -> Handle {
            guard koid > 0, let pid = Int32(exactly: koid) else { throw .invalidArgs }
            let wanted = rights.contains(.sameRights) ? Rights.defaultProcess : rights
            let access: AccessRights = wanted.contains(.write) ? .readWrite : .read
            do {
                return Handle(process: try ProcessHandle(pid: pid, rights: access), rights: wanted)
            } catch {
                if error.code == .wrongType {
                    return Handle(Thread(koid: koid), rights: wanted.intersection(.defaultThread))
                }
                throw Zircon.status(opening: error)
            }
        }

        /// Whether the handle refers to an object (not closed, not ``invalid``).
        public var isValid: Bool {
            slot.withLock { if case .open = $0 { return true } else { return false } }
        }

        /// The type of the object, or `ZX_OBJ_TYPE_NONE` for an invalid or closed handle.
        public var objectType: ObjectType {
            slot.withLock { if case .open(let object) = $0 { return object.objectType } else { return .none } }
        }

        /// The object if the handle is valid, refers to a `T` and grants every right in `required`,
        /// checked in that order like the kernel's `GetDispatcherWithRights`: `ZX_ERR_BAD_HANDLE`,
        /// then `ZX_ERR_WRONG_TYPE`, then `ZX_ERR_ACCESS_DENIED`.
        public func object<T: ZirconObject>(_ type: T.Type, requiring required: Rights) -> Result<T, Status> {
            let current: (any ZirconObject)? = slot.withLock { if case .open(let object) = $0 { return object } else { return nil } }
            guard let current else { return .failure(.badHandle) }
            guard let typed = current as? T else { return .failure(.wrongType) }
            guard rights.isSuperset(of: required) else { return .failure(.accessDenied) }
            return .success(typed)
        }

        /// `zx_handle_close`: invalidates the handle. Closing ``invalid`` is `ZX_OK`; closing a
        /// handle twice is `ZX_ERR_BAD_HANDLE`.
        @discardableResult
        public func close() -> Status {
            slot.withLock { slot in
                switch slot {
                case .never: return .ok
                case .closed: return .badHandle
                case .open:
                    slot = .closed
                    return .ok
                }
            }
        }

        /// `zx_handle_duplicate`: a new handle to the same object with `rights` (or the same rights,
        /// with ``Rights/sameRights``).
        ///
        /// Returns `ZX_ERR_BAD_HANDLE` when this handle is invalid, `ZX_ERR_ACCESS_DENIED` without
        /// ``Rights/duplicate``, `ZX_ERR_INVALID_ARGS` when `rights` is not a subset of this
        /// handle's rights.
        public func duplicate(rights wanted: Rights = .sameRights, _ out: inout Handle?) -> Status {
            let current: (any ZirconObject)? = slot.withLock { if case .open(let object) = $0 { return object } else { return nil } }
            guard let current else { return .badHandle }
            guard rights.contains(.duplicate) else { return .accessDenied }
            let newRights = wanted.contains(.sameRights) ? rights : wanted
            guard rights.isSuperset(of: newRights) else { return .invalidArgs }
            out = Handle(current, rights: newRights)
            return .ok
        }

        /// `handle(TYPE, RIGHTS)` or `handle(invalid)`.
        public var description: String {
            isValid ? "handle(\(objectType), \(rights))" : "handle(invalid)"
        }
    }

    /// `zx_handle_close(handle)`.
    @discardableResult
    public static func handleClose(_ handle: Handle) -> Status { handle.close() }

    /// `zx_handle_duplicate(handle, rights, out)`.
    public static func handleDuplicate(_ handle: Handle, rights: Rights, _ out: inout Handle?) -> Status {
        handle.duplicate(rights: rights, &out)
    }

    /// A process (`ZX_OBJ_TYPE_PROCESS`): the core library's `ProcessHandle`.
    public final class Process: ZirconObject {
        /// The core handle the Zircon calls use.
        public let processHandle: ProcessHandle
        /// Wraps a core handle.
        public init(_ processHandle: ProcessHandle) { self.processHandle = processHandle }
        /// `ZX_OBJ_TYPE_PROCESS`.
        public var objectType: ObjectType { .process }
        /// The process's koid (its PID).
        public var koid: UInt64 { UInt64(processHandle.pid) }
    }

    /// A thread (`ZX_OBJ_TYPE_THREAD`); on Linux, a kernel thread, which has no user address space.
    public final class Thread: ZirconObject {
        /// The thread's koid (its PID or TID).
        public let koid: UInt64
        /// A thread object for `koid`.
        public init(koid: UInt64) { self.koid = koid }
        /// `ZX_OBJ_TYPE_THREAD`.
        public var objectType: ObjectType { .thread }
    }

    /// An event (`ZX_OBJ_TYPE_EVENT`): an object with no memory, for `ZX_ERR_WRONG_TYPE`.
    public final class Event: ZirconObject {
        /// A new event.
        public init() {}
        /// `ZX_OBJ_TYPE_EVENT`.
        public var objectType: ObjectType { .event }
    }
}
