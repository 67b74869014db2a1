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

/// Fields of `/proc/PID/status`.
package struct ProcStatus: Sendable {
    package var name: String = ""
    package var realUID: UInt32?
    package var effectiveUID: UInt32?
    package var permittedCapabilities: UInt64?
    package var effectiveCapabilities: UInt64?
    package var tracerPID: Int32?

    package static func parse(_ bytes: [UInt8]) -> ProcStatus {
        var status = ProcStatus()
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            let text = String(decoding: line, as: UTF8.self)
            guard let colon = text.firstIndex(of: ":") else { continue }
            let key = text[..<colon]
            let values = text[text.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\t" })
            switch key {
            case "Name": status.name = values.joined(separator: " ")
            case "Uid":
                if values.count >= 2 { status.realUID = UInt32(values[0]); status.effectiveUID = UInt32(values[1]) }
            case "CapPrm": status.permittedCapabilities = values.first.flatMap { UInt64($0, radix: 16) }
            case "CapEff": status.effectiveCapabilities = values.first.flatMap { UInt64($0, radix: 16) }
            case "TracerPid": status.tracerPID = values.first.flatMap { Int32($0) }
            default: break
            }
        }
        return status
    }

    package static let capSysPtrace: UInt64 = 1 << 19
}
