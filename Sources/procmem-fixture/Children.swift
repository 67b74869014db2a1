import CProcessMemoryTestSupport
import Glibc

// Commands that create or become other processes: fork, spawn-at (clone3 with set_tid) and exec.

/// Points fds 0 and 1 at /dev/null. Only async-signal-safe calls.
private func redirectToDevNull(_ devNull: UnsafePointer<CChar>) {
    let fd = open(devNull, O_RDWR)
    if fd >= 0 {
        dup2(fd, 0)
        dup2(fd, 1)
        if fd > 1 { close(fd) }
    }
}

/// `fork`: the child detaches from the pipes and pauses forever (SIGCHLD is ignored, so it is reaped).
func forkPausedChild() throws -> JSON {
    let pid = fork()
    if pid < 0 { throw failure("fork") }
    if pid == 0 {
        resetSignalHandlers()  // the child must not remove the parent's temp file
        redirectToDevNull("/dev/null")
        while true { pause() }
    }
    return okReply([("pid", .int(Int64(pid)))])
}

/// `spawn-at PID [--fill 0xNN] [--pattern-at ADDR]`: a detached fixture created with exactly that PID.
func spawnAt(_ args: [String]) throws -> JSON {
    guard let pidText = args.first else { throw usage("spawn-at PID [--fill 0xNN] [--pattern-at ADDR]") }
    guard let n = parseNumber(pidText), n > 0, let pid = pid_t(exactly: n) else {
        throw FixtureError(message: "bad PID: \(pidText)")
    }
    let forwarded = Array(args.dropFirst())
    _ = try Options.parse(forwarded)  // reject bad options here rather than in a child nobody watches

    // Everything the child needs is built before the clone: it only calls dup2, open, close, execv, _exit.
    let argv = makeCArgv(["/proc/self/exe", "--detached"] + forwarded)
    defer { freeCArgv(argv) }
    guard let devNull = strdup("/dev/null") else { throw failure("strdup") }
    defer { free(devNull) }
    var tid = pid
    let child = argv.withUnsafeBufferPointer { buffer -> pid_t in
        guard let base = buffer.baseAddress, let exe = buffer[0] else { return -1 }
        let result = CProcessMemoryTestSupport_clone3_set_tid(0, UInt64(SIGCHLD), &tid, 1)
        if result == 0 {
            redirectToDevNull(devNull)
            execv(exe, base)
            _exit(127)
        }
        return result
    }
    guard child >= 0 else { throw failure("clone3") }
    return okReply([("pid", .int(Int64(child)))])
}

/// `exec PATH [ARGS...]`: replies first, then replaces the process image.
func execProgram(_ args: [String]) throws -> JSON {
    let path = args[0]
    guard access(path, X_OK) == 0 else { throw failure("exec \(path)") }
    let argv = makeCArgv(args)
    defer { freeCArgv(argv) }
    emit(okReply())
    cleanupTempFile()  // the new image will never remove it
    resetSignalHandlers()
    argv.withUnsafeBufferPointer { buffer in
        if let base = buffer.baseAddress { _ = execv(path, base) }
    }
    let e = failure("execv \(path)")
    installSignalHandlers()
    return errorReply(e.message, errno: e.code)
}
