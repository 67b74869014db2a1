/// How a write treats page protections.
///
/// Every write goes through `/proc/PID/mem` opened with the handle, never through
/// `process_vm_writev(2)`: that call names the process by PID, so a check after it would come too
/// late to stop bytes landing in another process after PID reuse.
public enum WriteMode: String, Sendable, Hashable, CaseIterable, Codable {
    /// Debugger-style (the default): like a debugger's breakpoint, a write into a read-only private
    /// mapping such as code is allowed; the kernel copies the page (copy-on-write), so the file on
    /// disk never changes. Shared mappings without write permission are refused.
    case debugger
    /// Only where the target itself could write: every byte must lie in a mapping with `w`, checked
    /// against the map just before the write.
    case respectingProtections

    /// The mode used when none is given: ``debugger``.
    public static let `default`: WriteMode = .debugger
}
