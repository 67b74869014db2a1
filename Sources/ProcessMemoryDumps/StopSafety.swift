import Glibc
import ProcessMemoryCore
import SystemPackage

/// Checks made before stopping a process (issue 16): never our own process or one we depend on,
/// never a cgroup whose subtree holds other processes.
enum StopSafety {
    /// This process and its ancestors, nearest first (the `PPid:` lines of `/proc/PID/status`).
    static func selfAndAncestors() -> [Int32] {
        var chain: [Int32] = [getpid()]
        while chain.count < 4096, let last = chain.last, last > 1,
              case .success(let bytes) = FileDescriptor.currentDirectory.readFile(relative: "/proc/\(last)/status", limit: 1 << 16) {
            guard let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first(where: { $0.hasPrefix("PPid:") }),
                  let parent = line.dropFirst(5).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap({ Int32($0) }), parent > 0, !chain.contains(parent)
            else { break }
            chain.append(parent)
        }
        return chain
    }

    /// Refuses to stop `pid` when it is this process or an ancestor: stopped, it could never let
    /// this process finish and resume it (`sh -c 'exec procmem dump $$ --stop signal'` stopped
    /// itself forever).
    static func refuseSelfOrAncestor(_ pid: Int32, method: StopMethod) throws(ProcessMemoryError) {
        let chain = selfAndAncestors()
        guard let position = chain.firstIndex(of: pid) else { return }
        let who = position == 0 ? "procmem's own process" : (position == 1 ? "procmem's parent" : "an ancestor of procmem (\(position) levels up)")
        throw ProcessMemoryError(.invalidArguments, pid: pid,
                                 message: "pid \(pid) is \(who); stopping it (\(method)) would stop the process that must resume it. Use --stop none to read it without stopping")
    }
}

extension CgroupFreezer {
    /// The processes of `directory` and of every cgroup below it (`cgroup.freeze` freezes them all).
    static func subtreeProcesses(_ directory: String, depth: Int = 0) -> Result<[Int32], Errno> {
        let procs: [UInt8]
        switch FileDescriptor.currentDirectory.readFile(relative: directory + "/cgroup.procs") {
        case .success(let bytes): procs = bytes
        case .failure(let error): return .failure(error)
        }
        var members = String(decoding: procs, as: UTF8.self).split(separator: "\n").compactMap { Int32($0) }
        guard depth < 64 else { return .success(members) }
        let names: [String]
        switch FileDescriptor.currentDirectory.listDirectory(relative: directory) {
        case .success(let listed): names = listed
        case .failure(let error): return .failure(error)
        }
        for name in names {
            let child = directory + "/" + name
            guard case .success(let info) = FileDescriptor.currentDirectory.linkStatus(relative: child), info.st_mode & S_IFMT == S_IFDIR else { continue }
            switch subtreeProcesses(child, depth: depth + 1) {
            case .success(let below): members += below
            case .failure(let error): return .failure(error)
            }
        }
        return .success(members)
    }
}
