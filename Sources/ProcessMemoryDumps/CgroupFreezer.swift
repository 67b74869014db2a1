import Glibc
import SystemPackage
import ProcessMemoryCore

/// The cgroup v2 freezer of a process's own cgroup: `cgroup.freeze` and `cgroup.events`.
enum CgroupFreezer {
    struct Cgroup {
        /// The cgroup's directory, under the cgroup2 mount point.
        var directory: String
        var freezeFile: String { directory + "/cgroup.freeze" }
        var eventsFile: String { directory + "/cgroup.events" }
    }

    /// The target's cgroup v2 directory, if the target is its only process.
    ///
    /// - Throws: `.notSupported` without a cgroup2 mount, for the root cgroup, or for a cgroup that
    ///   holds other processes too (freezing it would stop them).
    static func ownCgroup(of pid: Int32, procDir: FileDescriptor) throws(ProcessMemoryError) -> Cgroup {
        guard let mount = cgroup2Mount() else {
            throw ProcessMemoryError(.notSupported, pid: pid, message: "no cgroup v2 hierarchy is mounted here")
        }
        guard case .success(let bytes) = procDir.readFile(relative: "cgroup"),
              let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first(where: { $0.hasPrefix("0::") })
        else {
            throw ProcessMemoryError(.notSupported, pid: pid, message: "the process is in no cgroup v2 cgroup")
        }
        let path = String(line.dropFirst(3))
        guard path != "/" else {
            throw ProcessMemoryError(.notSupported, pid: pid,
                                     message: "the process is in the root cgroup, which cannot be frozen; move it into a cgroup of its own")
        }
        let cgroup = Cgroup(directory: mount + path)
        // The whole subtree: cgroup.freeze freezes the child cgroups too.
        guard case .success(let members) = subtreeProcesses(cgroup.directory) else {
            throw ProcessMemoryError(.notSupported, pid: pid, message: "\(cgroup.directory) cannot be read")
        }
        let others = members.filter { $0 != pid }
        guard others.isEmpty else {
            throw ProcessMemoryError(.notSupported, pid: pid,
                                     message: "the cgroup \(path) and the cgroups below it also hold \(others.count) other process(es); freezing it would stop them too")
        }
        return cgroup
    }

    /// Whether `cgroup.events` says `frozen 1`.
    static func isFrozen(_ cgroup: Cgroup) -> Bool {
        guard case .success(let bytes) = FileDescriptor.currentDirectory.readFile(relative: cgroup.eventsFile) else { return false }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").contains("frozen 1")
    }

    /// Writes `value` to a cgroup control file.
    static func write(_ path: String, _ value: String) -> Result<Int, Errno> {
        switch FileDescriptor.open(path: path, O_WRONLY) {
        case .failure(let error): return .failure(error)
        case .success(let fd):
            defer { fd.closeQuietly() }
            var bytes = Array(value.utf8)
            return fd.pwrite(&bytes, bytes.count, at: 0)
        }
    }

    /// The mount point of the cgroup2 file system, from `/proc/self/mountinfo` (`/sys/fs/cgroup`, or
    /// `/sys/fs/cgroup/unified` on hybrid systems).
    static func cgroup2Mount() -> String? {
        guard case .success(let bytes) = FileDescriptor.currentDirectory.readFile(relative: "/proc/self/mountinfo") else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let halves = line.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2, halves[1].hasPrefix("cgroup2 ") else { continue }
            let fields = halves[0].split(separator: " ")
            guard fields.count >= 5, fields[3] == "/" else { continue }
            return String(fields[4])
        }
        return nil
    }
}
