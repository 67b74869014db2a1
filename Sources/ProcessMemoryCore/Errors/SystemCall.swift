/// The Linux system call behind an error: which call, and the file or request it was made on.
///
/// Errors carry this typed value rather than text, so code that reacts to a particular call
/// compares ``name`` (`error.systemCall?.name == .processVMReadv`) and never parses a message.
/// ``description`` is the form people read: `pread(/proc/1234/mem)`, `ptrace(PTRACE_SEIZE)`.
public struct SystemCall: Hashable, Sendable, CustomStringConvertible {
    /// A system call's name as section 2 of the manual spells it.
    ///
    /// A struct with static members rather than an enum, so that calls can be added without
    /// breaking anyone's exhaustive `switch` (as swift-subprocess's `Error.Code` does).
    public struct Name: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The manual's name, for example `process_vm_readv`.
        public let rawValue: String
        /// A name; prefer the static members.
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// process_vm_readv(2).
        public static let processVMReadv = Name(rawValue: "process_vm_readv")
        /// pread(2).
        public static let pread = Name(rawValue: "pread")
        /// pwrite(2).
        public static let pwrite = Name(rawValue: "pwrite")
        /// read(2).
        public static let read = Name(rawValue: "read")
        /// write(2).
        public static let write = Name(rawValue: "write")
        /// open(2) and openat(2).
        public static let open = Name(rawValue: "open")
        /// pidfd_open(2).
        public static let pidfdOpen = Name(rawValue: "pidfd_open")
        /// pidfd_send_signal(2).
        public static let pidfdSendSignal = Name(rawValue: "pidfd_send_signal")
        /// pidfd_getfd(2).
        public static let pidfdGetfd = Name(rawValue: "pidfd_getfd")
        /// fstat(2).
        public static let fstat = Name(rawValue: "fstat")
        /// fcntl(2).
        public static let fcntl = Name(rawValue: "fcntl")
        /// ftruncate(2).
        public static let ftruncate = Name(rawValue: "ftruncate")
        /// mmap(2).
        public static let mmap = Name(rawValue: "mmap")
        /// memfd_create(2).
        public static let memfdCreate = Name(rawValue: "memfd_create")
        /// sendmsg(2).
        public static let sendmsg = Name(rawValue: "sendmsg")
        /// recvmsg(2).
        public static let recvmsg = Name(rawValue: "recvmsg")
        /// ptrace(2).
        public static let ptrace = Name(rawValue: "ptrace")
        /// waitpid(2).
        public static let waitpid = Name(rawValue: "waitpid")
        /// ioctl(2).
        public static let ioctl = Name(rawValue: "ioctl")
        /// mkdirat(2).
        public static let mkdir = Name(rawValue: "mkdir")
        /// renameat(2).
        public static let rename = Name(rawValue: "rename")
        /// fsync(2).
        public static let fsync = Name(rawValue: "fsync")
        /// fork(2).
        public static let fork = Name(rawValue: "fork")
        /// clone(2), as `pthread_create(3)` calls it to start a thread.
        public static let clone = Name(rawValue: "clone")
        /// unlinkat(2).
        public static let unlink = Name(rawValue: "unlink")
        /// fstatat(2) and lstat(2).
        public static let stat = Name(rawValue: "stat")
    }

    /// Which call.
    public var name: Name
    /// What it was made on, when that tells the calls apart: a file (`/proc/1234/mem`) or a
    /// request (`PTRACE_SEIZE`, `F_DUPFD_CLOEXEC`).
    public var argument: String?

    /// A call, with the file or request it was made on.
    public init(_ name: Name, _ argument: String? = nil) {
        self.name = name
        self.argument = argument
    }

    /// `name(argument)`, or `name` alone.
    public var description: String {
        argument.map { "\(name.rawValue)(\($0))" } ?? name.rawValue
    }

    /// process_vm_readv(2) on the target.
    public static let processVMReadv = SystemCall(.processVMReadv)
    /// pidfd_open(2) on the target.
    public static let pidfdOpen = SystemCall(.pidfdOpen)
}
