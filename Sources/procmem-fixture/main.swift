import CProcessMemoryTestSupport
import Glibc

// procmem-fixture: a process with a known memory layout, read from outside by the tests, benchmarks
// and the README demo. It lays out its memory (Layout.swift), prints one JSON line describing it, then
// answers one-line commands on stdin with one JSON line each (Commands.swift). EOF on stdin exits 0.
//
// Options: --fill 0xNN, --pattern-at ADDR, --pattern-size BYTES, --detached, --dumpable 0|1, --user UID.

func runFixture() -> Never {
    let options: Options
    do {
        options = try Options.parse(Array(CommandLine.arguments.dropFirst()))
    } catch {
        die((error as? FixtureError)?.message ?? "\(error)")
    }
    installSignalHandlers()

    // Opened before any privilege drop: a non-dumpable process's /proc/self files belong to root.
    let memFD = open("/proc/self/mem", O_RDWR | O_CLOEXEC)
    guard memFD >= 0 else { die(failure("open /proc/self/mem").message) }

    let layout: Layout
    do {
        layout = try buildLayout(options)
    } catch {
        die((error as? FixtureError)?.message ?? "\(error)")
    }

    if let uid = options.user {
        // Give the temp file to the new user so it can still unlink it from a sticky /tmp.
        if layout.tempFileFD >= 0 { _ = fchown(layout.tempFileFD, uid, uid) }
        guard setgroups(0, nil) == 0 else { die(failure("setgroups").message) }
        // setresgid/setresuid need _GNU_SOURCE; from root, setgid/setuid set real, effective and saved ids alike.
        guard setgid(uid) == 0 else { die(failure("setgid(\(uid))").message) }
        guard setuid(uid) == 0 else { die(failure("setuid(\(uid))").message) }
        guard getuid() == uid, geteuid() == uid, getgid() == uid, getegid() == uid else {
            die("could not switch every id to \(uid) (not running as root?)")
        }
    }
    if let dumpable = options.dumpable {
        guard CProcessMemoryTestSupport_prctl(CProcessMemoryTestSupport_PR_SET_DUMPABLE, dumpable, 0, 0, 0) == 0 else {
            die(failure("prctl(PR_SET_DUMPABLE, \(dumpable))").message)
        }
    }

    if options.detached {
        cleanupTempFile()  // nobody will ever be told the path, and the spawner kills us with SIGKILL
        while true { pause() }
    }

    // The `stack` value lives in this frame for the rest of the process's life.
    var stackMarker: UInt64 = 0xFEED_FACE_CAFE_BEEF
    withUnsafeMutablePointer(to: &stackMarker) { marker -> Never in
        emit(layout.json(pid: getpid(), stackAddress: UInt(bitPattern: marker)))
        var loop = CommandLoop(memFD: memFD, pageSize: layout.pageSize, arena: layout.arena)
        loop.run()
    }
}

runFixture()
