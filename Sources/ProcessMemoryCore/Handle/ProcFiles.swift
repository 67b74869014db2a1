import Glibc

/// Parsed fields of `/proc/PID/stat` and `/proc/PID/status` that the handle needs.
package struct ProcStat: Sendable {
    /// Field 3: R, S, D, T, t, Z, X, …
    package var state: Character
    /// Field 9: the kernel's `PF_*` flags.
    package var flags: UInt64
    /// Field 22: start time in clock ticks since boot.
    package var startTime: UInt64

    package static let kernelThreadFlag: UInt64 = 0x0020_0000  // PF_KTHREAD

    package var isKernelThread: Bool { flags & Self.kernelThreadFlag != 0 }

    /// Parses `/proc/PID/stat`; the command name in parentheses may itself hold spaces and parentheses.
    package static func parse(_ bytes: [UInt8]) -> ProcStat? {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")), close + 2 < bytes.count else { return nil }
        let fields = bytes[(close + 2)...].split(separator: UInt8(ascii: " "))
        // fields[0] is field 3 (state); field N is fields[N - 3].
        guard fields.count > 19, let state = fields[0].first,
              let flags = UInt64(String(decoding: fields[6], as: UTF8.self)),
              let start = UInt64(String(decoding: fields[19], as: UTF8.self))
        else { return nil }
        return ProcStat(state: Character(Unicode.Scalar(state)), flags: flags, startTime: start)
    }
}

/// The fields of `/proc/PID/status` (see `proc_pid_status(5)`) that say what a process is and how
/// much memory it holds; read with ``ProcessHandle/status()``.
///
/// Sizes are in bytes (the file gives kB). A field the kernel did not print is `nil`: the `Vm*`
/// lines are missing for a zombie and for a kernel thread.
public struct ProcessStatus: Sendable, Hashable {
    /// `Name`: the command name (at most 15 bytes, as `comm`).
    public var name: String = ""
    /// `State`: the state letter (`R`, `S`, `D`, `T`, `t`, `Z`, `X`, `I`).
    public var state: Character?
    /// `State`: the state's description, such as `sleeping`.
    public var stateDescription: String?
    /// `Threads`: the number of threads in the thread group.
    public var threads: Int?
    /// `Uid`, first value: the real user ID.
    public var realUID: UInt32?
    /// `Uid`, second value: the effective user ID.
    public var effectiveUID: UInt32?
    /// `Gid`, first value: the real group ID.
    public var realGID: UInt32?
    /// `Gid`, second value: the effective group ID.
    public var effectiveGID: UInt32?
    /// `PPid`: the parent's process ID.
    public var parentPID: Int32?
    /// `TracerPid`: the process tracing this one, 0 when none.
    public var tracerPID: Int32?
    /// `VmRSS`: resident memory in bytes.
    public var residentBytes: UInt64?
    /// `VmHWM`: the peak of resident memory in bytes.
    public var peakResidentBytes: UInt64?
    /// `VmSize`: the size of the address space in bytes.
    public var virtualBytes: UInt64?
    /// `VmSwap`: swapped-out anonymous memory in bytes.
    public var swapBytes: UInt64?
    /// `CapPrm`: the permitted capability set.
    public var permittedCapabilities: UInt64?
    /// `CapEff`: the effective capability set.
    public var effectiveCapabilities: UInt64?

    /// Creates an empty status (every field `nil`).
    public init() {}

    /// Parses the text of a `/proc/PID/status` file; unknown and malformed lines are skipped.
    public static func parse(_ bytes: [UInt8]) -> ProcessStatus {
        var status = ProcessStatus()
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            let text = String(decoding: line, as: UTF8.self)
            guard let colon = text.firstIndex(of: ":") else { continue }
            let key = text[..<colon]
            let values = text[text.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\t" })
            switch key {
            case "Name": status.name = values.joined(separator: " ")
            case "State":
                status.state = values.first?.first
                if values.count > 1 {
                    status.stateDescription = values.dropFirst().joined(separator: " ").filter { $0 != "(" && $0 != ")" }
                }
            case "Threads": status.threads = values.first.flatMap { Int($0) }
            case "Uid":
                if values.count >= 2 { status.realUID = UInt32(values[0]); status.effectiveUID = UInt32(values[1]) }
            case "Gid":
                if values.count >= 2 { status.realGID = UInt32(values[0]); status.effectiveGID = UInt32(values[1]) }
            case "PPid": status.parentPID = values.first.flatMap { Int32($0) }
            case "TracerPid": status.tracerPID = values.first.flatMap { Int32($0) }
            case "VmRSS": status.residentBytes = kibibytes(values)
            case "VmHWM": status.peakResidentBytes = kibibytes(values)
            case "VmSize": status.virtualBytes = kibibytes(values)
            case "VmSwap": status.swapBytes = kibibytes(values)
            case "CapPrm": status.permittedCapabilities = values.first.flatMap { UInt64($0, radix: 16) }
            case "CapEff": status.effectiveCapabilities = values.first.flatMap { UInt64($0, radix: 16) }
            default: break
            }
        }
        return status
    }

    /// `1234 kB` as bytes; `nil` when malformed or too large.
    private static func kibibytes(_ values: [Substring]) -> UInt64? {
        guard let first = values.first, let count = UInt64(first) else { return nil }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: 1024)
        return overflow ? nil : bytes
    }

    package static let capSysPtrace: UInt64 = 1 << 19
}

/// The name the handle's internals used before ``ProcessStatus`` was public.
package typealias ProcStatus = ProcessStatus
