import ArgumentParser
import ProcessMemory

/// Shell completion of a PID argument: the running processes whose pid starts with what is typed,
/// with their command names as descriptions where the shell shows them (zsh `PID:name`, fish
/// `PID<tab>name`; bash takes the bare pids).
enum PIDCompletion {
    /// The completion kind for `@Argument(completion:)`.
    static let kind = CompletionKind.custom { _, _, prefix in candidates(prefix: prefix, shell: CompletionShell.requesting) }

    /// The candidates for `prefix`, formatted for `shell`.
    static func candidates(prefix: String, shell: CompletionShell?) -> [String] {
        RunningProcesses.list().filter { String($0.pid).hasPrefix(prefix) }.map { entry in
            // A command name is the process's own choice: keep only printable characters.
            let name = String(entry.name.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? "?" : Character($0) })
            switch shell {
            case .zsh?: return "\(entry.pid):\(name)"
            case .fish?: return "\(entry.pid)\t\(name)"
            default: return String(entry.pid)
            }
        }
    }
}
