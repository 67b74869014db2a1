import Glibc

/// The processes running now, by pid and command name, for listings such as shell completion.
///
/// Reads `/proc` (`openat(2)`, `getdents64(2)`) and each process's `comm` (`read(2)`); a process
/// that exits meanwhile is left out. Nothing here opens or checks a process's memory: a listed pid
/// may still be one this user cannot read.
public enum RunningProcesses {
    /// One running process.
    public struct Entry: Sendable, Hashable {
        /// Its pid.
        public var pid: Int32
        /// Its command name (`/proc/PID/comm`: at most 15 bytes, the executable's name unless the
        /// process changed it), without the trailing newline.
        public var name: String
    }

    /// Every process in this pid namespace, by increasing pid; empty when `/proc` cannot be read.
    public static func list() -> [Entry] {
        guard case .success(let proc) = Sys.openat(AT_FDCWD, "/proc", O_RDONLY | O_DIRECTORY) else { return [] }
        defer { Sys.close(proc) }
        guard case .success(let names) = Sys.listDirectory(proc, ".") else { return [] }
        var entries: [Entry] = []
        for name in names {
            guard let pid = Int32(name), pid > 0 else { continue }
            guard case .success(let bytes) = Sys.readFile(proc, name + "/comm", limit: 64) else { continue }
            var text = String(decoding: bytes, as: UTF8.self)
            while text.hasSuffix("\n") { text.removeLast() }
            entries.append(Entry(pid: pid, name: text))
        }
        return entries.sorted { $0.pid < $1.pid }
    }
}
