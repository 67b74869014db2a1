import CProcessMemory
import Glibc
import SystemPackage

/// Thin wrappers, one per system call, each returning `Result<_, Errno>` with `EINTR` retried.
///
/// Nothing here interprets an errno; `ErrnoMapping.swift` does that in one place.
enum Sys {
    /// process_vm_readv(2) with one local and one remote iovec.
    static func processVMRead(pid: Int32, local: UnsafeMutableRawPointer, remote: UInt64, count: Int) -> Result<Int, Errno> {
        var localIOV = iovec(iov_base: local, iov_len: count)
        var remoteIOV = iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(remote)), iov_len: count)
        return valueOrErrno { CProcessMemory_process_vm_readv(pid, &localIOV, 1, &remoteIOV, 1, 0) }
    }

    /// process_vm_readv(2) with caller-built iovec arrays (batched gathers).
    static func processVMReadv(pid: Int32, local: UnsafePointer<iovec>?, localCount: Int,
                               remote: UnsafePointer<iovec>?, remoteCount: Int) -> Result<Int, Errno> {
        valueOrErrno { CProcessMemory_process_vm_readv(pid, local, UInt(localCount), remote, UInt(remoteCount), 0) }
    }

    /// pread(2).
    static func pread(_ fd: CInt, _ buffer: UnsafeMutableRawPointer, _ count: Int, at offset: UInt64) -> Result<Int, Errno> {
        valueOrErrno { Glibc.pread(fd, buffer, count, off_t(Int64(bitPattern: offset))) }
    }

    /// pwrite(2).
    static func pwrite(_ fd: CInt, _ buffer: UnsafeRawPointer, _ count: Int, at offset: UInt64) -> Result<Int, Errno> {
        valueOrErrno { Glibc.pwrite(fd, buffer, count, off_t(Int64(bitPattern: offset))) }
    }

    /// read(2).
    static func read(_ fd: CInt, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Result<Int, Errno> {
        valueOrErrno { Glibc.read(fd, buffer, count) }
    }

    /// lseek(2) to an absolute offset.
    static func seek(_ fd: CInt, to offset: Int64) -> Result<Int64, Errno> {
        valueOrErrno(retryOnInterrupt: false) { Int64(Glibc.lseek(fd, off_t(offset), SEEK_SET)) }
    }

    /// openat(2), always with `O_CLOEXEC`.
    static func openat(_ dirfd: CInt, _ path: String, _ flags: CInt) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.openat(dirfd, path, flags | O_CLOEXEC) }
    }

    /// pidfd_open(2).
    static func pidfdOpen(_ pid: Int32, flags: UInt32 = 0) -> Result<CInt, Errno> {
        valueOrErrno { CProcessMemory_pidfd_open(pid, flags) }
    }

    /// poll(2) on one descriptor with a zero timeout; returns the revents.
    static func pollNow(_ fd: CInt, events: Int16 = Int16(POLLIN)) -> Result<Int16, Errno> {
        var entry = pollfd(fd: fd, events: events, revents: 0)
        return valueOrErrno { Glibc.poll(&entry, 1, 0) }.map { $0 > 0 ? entry.revents : 0 }
    }

    /// fcntl(2) `F_DUPFD_CLOEXEC`.
    static func duplicate(_ fd: CInt) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.fcntl(fd, F_DUPFD_CLOEXEC, 0) }
    }

    /// fstatat(2) following links (`map_files` entries are symbolic links to the mapped file).
    static func stat(_ dirfd: CInt, _ path: String) -> Result<stat, Errno> {
        var info = Glibc.stat()
        return valueOrErrno { Glibc.fstatat(dirfd, path, &info, 0) }.map { _ in info }
    }

    /// statx(2) following links: whether the file is a DAX file (`STATX_ATTR_DAX`).
    static func isDAX(_ dirfd: CInt, _ path: String) -> Result<Bool, Errno> {
        valueOrErrno { CProcessMemory_is_dax(dirfd, path) }.map { $0 == 1 }
    }

    /// ioctl(2) PROCMAP_QUERY on a /proc/PID/maps descriptor (Linux 6.11+).
    static func procmapQuery(_ fd: CInt, _ query: inout CProcessMemory_procmap_query) -> Result<CInt, Errno> {
        valueOrErrno { CProcessMemory_ioctl_procmap_query(fd, &query) }
    }

    /// ioctl(2) PAGEMAP_SCAN on a /proc/PID/pagemap descriptor (Linux 6.7+): the number of runs filled.
    static func pagemapScan(_ fd: CInt, _ argument: inout CProcessMemory_pm_scan_arg) -> Result<Int, Errno> {
        valueOrErrno { CProcessMemory_ioctl_pagemap_scan(fd, &argument) }
    }

    /// close(2); never retried, as retrying close on Linux can close a descriptor another thread opened.
    static func close(_ fd: CInt) {
        _ = Glibc.close(fd)
    }

    /// Reads a whole (small, /proc) file relative to a directory descriptor.
    static func readFile(_ dirfd: CInt, _ path: String, limit: Int = 64 << 20) -> Result<[UInt8], Errno> {
        switch openat(dirfd, path, O_RDONLY) {
        case .failure(let error): return .failure(error)
        case .success(let fd):
            defer { close(fd) }
            return readAll(fd, limit: limit)
        }
    }

    /// Reads a descriptor from its current position to EOF (at most `limit` bytes).
    ///
    /// One reused 64 KiB buffer: `/proc` files such as `smaps` return a page per read, and growing
    /// the result by a zeroed chunk per read made a 100-region smaps cost seconds in debug builds.
    static func readAll(_ fd: CInt, limit: Int = 1 << 30) -> Result<[UInt8], Errno> {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while bytes.count < limit {
            let want = min(chunk.count, limit - bytes.count)
            let result = chunk.withUnsafeMutableBytes { raw in
                guard let base = raw.baseAddress else { return Result<Int, Errno>.success(0) }
                return read(fd, base, want)
            }
            switch result {
            case .failure(let error):
                return .failure(error)
            case .success(let n):
                if n == 0 { return .success(bytes) }
                bytes.append(contentsOf: chunk[0..<n])
            }
        }
        return .success(bytes)
    }
}

// MARK: - Memory objects (Objects/)

extension Sys {
    /// memfd_create(2).
    static func memfdCreate(_ name: String, flags: UInt32) -> Result<CInt, Errno> {
        valueOrErrno { name.withCString { CProcessMemory_memfd_create($0, flags) } }
    }

    /// ftruncate(2).
    static func ftruncate(_ fd: CInt, _ length: Int64) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.ftruncate(fd, off_t(length)) }
    }

    /// fstat(2).
    static func fstat(_ fd: CInt) -> Result<stat, Errno> {
        var info = Glibc.stat()
        return valueOrErrno { Glibc.fstat(fd, &info) }.map { _ in info }
    }

    /// fcntl(2) `F_GET_SEALS`.
    static func getSeals(_ fd: CInt) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.fcntl(fd, CProcessMemory_F_GET_SEALS) }
    }

    /// fcntl(2) `F_ADD_SEALS`.
    static func addSeals(_ fd: CInt, _ seals: CInt) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.fcntl(fd, CProcessMemory_F_ADD_SEALS, seals) }
    }

    /// fcntl(2) `F_GETFL`: the access mode and status flags of the open file description.
    static func statusFlags(_ fd: CInt) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.fcntl(fd, F_GETFL) }
    }

    /// fcntl(2) `F_DUPFD` (without `FD_CLOEXEC`, so the copy survives execve(2)).
    static func duplicateInheritable(_ fd: CInt) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.fcntl(fd, F_DUPFD, 0) }
    }

    /// pidfd_getfd(2): a duplicate of descriptor `targetFD` of the process behind `pidfd`
    /// (the kernel sets `FD_CLOEXEC` on it).
    static func pidfdGetfd(_ pidfd: CInt, _ targetFD: CInt) -> Result<CInt, Errno> {
        valueOrErrno { CProcessMemory_pidfd_getfd(pidfd, targetFD, 0) }
    }

    /// readlinkat(2).
    static func readLink(_ dirfd: CInt, _ path: String) -> Result<String, Errno> {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        return buffer.withUnsafeMutableBytes { raw in
            valueOrErrno { Glibc.readlinkat(dirfd, path, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count - 1) }
        }.map { count in String(decoding: buffer[0..<count], as: UTF8.self) }
    }

    /// The names in a directory (without `.` and `..`), through openat(2), fdopendir(3) and readdir(3).
    static func listDirectory(_ dirfd: CInt, _ path: String) -> Result<[String], Errno> {
        let fd: CInt
        switch openat(dirfd, path, O_RDONLY | O_DIRECTORY) {
        case .success(let opened): fd = opened
        case .failure(let error): return .failure(error)
        }
        guard let directory = Glibc.fdopendir(fd) else {
            let error = Errno.current
            close(fd)
            return .failure(error)
        }
        defer { Glibc.closedir(directory) }
        var names: [String] = []
        while let entry = Glibc.readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return .success(names)
    }

    /// mmap(2) of a descriptor.
    static func mmap(_ length: Int, protection: CInt, flags: CInt, _ fd: CInt, offset: UInt64) -> Result<UnsafeMutableRawPointer, Errno> {
        let address = Glibc.mmap(nil, length, protection, flags, fd, off_t(Int64(bitPattern: offset)))
        guard let address, address != MAP_FAILED else { return .failure(Errno.current) }
        return .success(address)
    }

    /// munmap(2).
    static func munmap(_ address: UnsafeMutableRawPointer, _ length: Int) {
        _ = Glibc.munmap(address, length)
    }

    /// sendmsg(2) of `payload` with one `SCM_RIGHTS` control message carrying `fd`; `MSG_NOSIGNAL`,
    /// so a closed peer gives `EPIPE` rather than `SIGPIPE`.
    static func sendDescriptor(_ socket: CInt, _ fd: CInt, payload: [UInt8]) -> Result<Int, Errno> {
        var data = payload
        let space = CProcessMemory_CMSG_SPACE(MemoryLayout<CInt>.size)
        let control = UnsafeMutableRawPointer.allocate(byteCount: space, alignment: MemoryLayout<cmsghdr>.alignment)
        defer { control.deallocate() }
        control.initializeMemory(as: UInt8.self, repeating: 0, count: space)
        return data.withUnsafeMutableBytes { raw in
            var vector = iovec(iov_base: raw.baseAddress, iov_len: raw.count)
            return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                var message = msghdr()
                message.msg_iov = vectorPointer
                message.msg_iovlen = 1
                message.msg_control = control
                message.msg_controllen = space
                guard let header = CProcessMemory_CMSG_FIRSTHDR(&message) else { return .failure(.invalidArgument) }
                header.pointee.cmsg_level = SOL_SOCKET
                header.pointee.cmsg_type = CInt(SCM_RIGHTS)
                header.pointee.cmsg_len = CProcessMemory_CMSG_LEN(MemoryLayout<CInt>.size)
                UnsafeMutableRawPointer(CProcessMemory_CMSG_DATA(header)).storeBytes(of: fd, as: CInt.self)
                return valueOrErrno { Glibc.sendmsg(socket, &message, CInt(MSG_NOSIGNAL)) }
            }
        }
    }

    /// What one recvmsg(2) delivered: the payload's length, the descriptors of every `SCM_RIGHTS`
    /// message (already owned by this process, `FD_CLOEXEC` set), and whether control data was lost.
    struct ReceivedDescriptors {
        var payloadLength: Int
        var descriptors: [CInt]
        var controlTruncated: Bool
    }

    /// recvmsg(2) of up to `payloadCapacity` bytes and up to `maxDescriptors` descriptors, with
    /// `MSG_CMSG_CLOEXEC`.
    static func receiveDescriptors(_ socket: CInt, payloadCapacity: Int = 64, maxDescriptors: Int = 8) -> Result<ReceivedDescriptors, Errno> {
        var data = [UInt8](repeating: 0, count: max(1, payloadCapacity))
        let space = CProcessMemory_CMSG_SPACE(MemoryLayout<CInt>.size * maxDescriptors)
        let control = UnsafeMutableRawPointer.allocate(byteCount: space, alignment: MemoryLayout<cmsghdr>.alignment)
        defer { control.deallocate() }
        control.initializeMemory(as: UInt8.self, repeating: 0, count: space)
        return data.withUnsafeMutableBytes { raw in
            var vector = iovec(iov_base: raw.baseAddress, iov_len: raw.count)
            return withUnsafeMutablePointer(to: &vector) { vectorPointer -> Result<ReceivedDescriptors, Errno> in
                var message = msghdr()
                message.msg_iov = vectorPointer
                message.msg_iovlen = 1
                message.msg_control = control
                message.msg_controllen = space
                let received = valueOrErrno { Glibc.recvmsg(socket, &message, CInt(MSG_CMSG_CLOEXEC)) }
                guard case .success(let count) = received else { return received.map { _ in ReceivedDescriptors(payloadLength: 0, descriptors: [], controlTruncated: false) } }
                var descriptors: [CInt] = []
                var header = message.msg_controllen > 0 ? CProcessMemory_CMSG_FIRSTHDR(&message) : nil
                while let current = header {
                    if current.pointee.cmsg_level == SOL_SOCKET && current.pointee.cmsg_type == CInt(SCM_RIGHTS) {
                        let bytes = Int(current.pointee.cmsg_len) - CProcessMemory_CMSG_LEN(0)
                        let data = UnsafeRawPointer(CProcessMemory_CMSG_DATA(current))
                        for index in 0..<(max(0, bytes) / MemoryLayout<CInt>.size) {
                            descriptors.append(data.loadUnaligned(fromByteOffset: index * MemoryLayout<CInt>.size, as: CInt.self))
                        }
                    }
                    header = CProcessMemory_CMSG_NXTHDR(&message, current)
                }
                return .success(ReceivedDescriptors(payloadLength: count, descriptors: descriptors,
                                                    controlTruncated: message.msg_flags & CInt(MSG_CTRUNC) != 0))
            }
        }
    }
}

// Dumps (Dumps/): stopping a process, reading its registers, creating output.
extension Sys {
    /// ptrace(2) with an address and a data pointer.
    static func ptrace(_ request: CInt, _ tid: Int32, address: UInt = 0, data: UnsafeMutableRawPointer? = nil) -> Result<Int, Errno> {
        valueOrErrno { CProcessMemory_ptrace(request, tid, UnsafeMutableRawPointer(bitPattern: address), data) }
    }

    /// ptrace(2) `PTRACE_GETREGSET` of register set `type` into `buffer`; returns the bytes filled.
    static func getRegset(_ tid: Int32, _ type: CInt, into buffer: UnsafeMutableRawBufferPointer) -> Result<Int, Errno> {
        var vector = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
        return valueOrErrno { CProcessMemory_ptrace(CProcessMemory_PTRACE_GETREGSET, tid, UnsafeMutableRawPointer(bitPattern: UInt(type)), &vector) }
            .map { _ in vector.iov_len }
    }

    /// waitpid(2) with `WNOHANG` in `flags`: the status, or `nil` when the thread has not changed state.
    static func waitpidIfChanged(_ tid: Int32, flags: CInt) -> Result<CInt?, Errno> {
        var status: CInt = 0
        return valueOrErrno { Glibc.waitpid(tid, &status, flags | WNOHANG) }.map { $0 == 0 ? nil : status }
    }

    /// waitpid(2) for one thread; returns the wait status.
    static func waitpid(_ tid: Int32, flags: CInt) -> Result<CInt, Errno> {
        var status: CInt = 0
        return valueOrErrno { Glibc.waitpid(tid, &status, flags) }.map { _ in status }
    }

    /// pidfd_send_signal(2) without siginfo.
    static func pidfdSendSignal(_ pidfd: CInt, _ signal: CInt) -> Result<CInt, Errno> {
        valueOrErrno { CProcessMemory_pidfd_send_signal(pidfd, signal, 0) }
    }

    /// mkdirat(2).
    static func mkdirat(_ dirfd: CInt, _ path: String, mode: mode_t) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.mkdirat(dirfd, path, mode) }
    }

    /// openat(2) with `O_CLOEXEC` and a creation mode.
    static func create(_ dirfd: CInt, _ path: String, _ flags: CInt, mode: mode_t) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.openat(dirfd, path, flags | O_CLOEXEC, mode) }
    }
}
