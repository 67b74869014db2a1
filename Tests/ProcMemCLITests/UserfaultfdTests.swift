import Foundation
import Glibc
import Testing

/// Issue 16: a range registered with userfaultfd whose faults nobody serves made process_vm_readv
/// wait forever; dumps and scans now skip it and say so.
@Suite("userfaultfd ranges never block a dump or a scan")
struct UserfaultfdTests {
    /// python3 registers 16 KiB of anonymous memory with userfaultfd (missing mode, x86_64 syscall
    /// 323), its first page populated with 0x41 and the other three never, and never serves a
    /// fault; prints the range's address.
    static let registrar = """
        import ctypes, fcntl, os, struct, sys, time
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
        fd = libc.syscall(323, os.O_CLOEXEC | os.O_NONBLOCK)
        if fd < 0: print("none", flush=True); sys.exit(1)
        fcntl.ioctl(fd, 0xc018aa3f, bytearray(struct.pack("QQQ", 0xAA, 0, 0)))
        address = libc.mmap(None, 16384, 3, 0x22, -1, 0)
        ctypes.memset(address, 0x41, 4096)
        fcntl.ioctl(fd, 0xc020aa00, bytearray(struct.pack("QQQQ", address, 16384, 1, 0)))
        print(hex(address), flush=True)
        time.sleep(120)
        """

    static var supported: Bool {
        var info = utsname()
        uname(&info)
        let machine = withUnsafeBytes(of: info.machine) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        return machine == "x86_64" && getuid() == 0 && StopHardeningTests.python != nil
    }

    @Test("dump and scan of a target with an unserved userfaultfd range finish and report it",
          .enabled(if: UserfaultfdTests.supported, "needs x86_64 (syscall number), root (vm.unprivileged_userfaultfd) and python3"))
    func unservedRange() throws {
        let python = try #require(StopHardeningTests.python)
        let target = Process()
        target.executableURL = URL(fileURLWithPath: python)
        target.arguments = ["-c", Self.registrar]
        let output = Pipe()
        target.standardOutput = output
        try target.run()
        defer {
            kill(target.processIdentifier, SIGKILL)
            target.waitUntilExit()
        }
        let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let address = try #require(line.hasPrefix("0x") ? UInt64(line.dropFirst(2), radix: 16) : nil, "no userfaultfd range: \(line)")
        let pid = String(target.processIdentifier)
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-uffd-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let directory = URL(fileURLWithPath: FileManager.default.temporaryDirectory.path)
        for method in ["ptrace", "signal"] {
            let dump = try runProcmem(["dump", pid, "--output", base + "-" + method, "--stop", method], timeout: 60, in: directory)
            #expect(!dump.timedOut, "dump --stop \(method) blocked on the userfaultfd range")
            #expect(dump.status == 0, "\(dump.stderr)")
            let index = try String(contentsOfFile: base + "-" + method + "/index.json", encoding: .utf8)
            #expect(index.contains("userfaultfd") && index.contains(hex(address)), "the index does not say why the range was not read")
            try? FileManager.default.removeItem(atPath: base + "-" + method)
        }
        let scan = try runProcmem(["scan", pid, "0x5EED1234", "--as", "u32", "--all"], timeout: 60, in: directory)
        #expect(!scan.timedOut, "scan blocked on the userfaultfd range")
        let said = String(decoding: scan.stdout, as: UTF8.self)
        #expect(said.contains("skipped \(hex(address))") && said.contains("userfaultfd"), "\(said)")
    }

    /// Starts the registrar; its pid and the registered range's address.
    static func startRegistrar() throws -> (Process, UInt64) {
        let python = try #require(StopHardeningTests.python)
        let target = Process()
        target.executableURL = URL(fileURLWithPath: python)
        target.arguments = ["-c", registrar]
        let output = Pipe()
        target.standardOutput = output
        try target.run()
        let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let address = line.hasPrefix("0x") ? UInt64(line.dropFirst(2), radix: 16) : nil else {
            kill(target.processIdentifier, SIGKILL)
            target.waitUntilExit()
            Issue.record("no userfaultfd range: \(line)")
            throw CancellationError()
        }
        return (target, address)
    }

    @Test("a protect-mode read stops before an unserved userfaultfd page instead of waiting forever, and says why",
          .enabled(if: UserfaultfdTests.supported, "needs x86_64 (syscall number), root (vm.unprivileged_userfaultfd) and python3"))
    func protectModeRead() throws {
        let (target, address) = try Self.startRegistrar()
        defer {
            kill(target.processIdentifier, SIGKILL)
            target.waitUntilExit()
        }
        let pid = String(target.processIdentifier)
        let directory = URL(fileURLWithPath: FileManager.default.temporaryDirectory.path)
        // The populated first page reads as before.
        let first = try runProcmem(["read", pid, hex(address), "16", "--mode", "protect", "--json"], timeout: 30, in: directory)
        #expect(!first.timedOut && first.status == 0, "\(first.stderr)")
        // Across into the unpopulated pages: the populated page, then a stop that names the range.
        let across = try runProcmem(["read", pid, hex(address), "8192", "--mode", "protect"], timeout: 30, in: directory)
        #expect(!across.timedOut, "a protect-mode read waited on the userfaultfd range")
        #expect(across.stderr.contains("4096 of 8192") && across.stderr.contains(hex(address + 4096)) && across.stderr.contains("userfaultfd"),
                "\(across.stderr)")
        let inside = try runProcmem(["read", pid, hex(address + 8192), "8", "--mode", "protect"], timeout: 30, in: directory)
        #expect(!inside.timedOut)
        #expect(inside.status == 20 && inside.stderr.contains("notSupported") && inside.stderr.contains("userfaultfd"), "\(inside.stderr)")
    }

    @Test("watch reports an unserved userfaultfd page as unreadable and keeps watching the others",
          .enabled(if: UserfaultfdTests.supported, "needs x86_64 (syscall number), root (vm.unprivileged_userfaultfd) and python3"))
    func watchDoesNotBlock() throws {
        let (target, address) = try Self.startRegistrar()
        defer {
            kill(target.processIdentifier, SIGKILL)
            target.waitUntilExit()
        }
        let watch = Process()
        watch.executableURL = try Binaries.url("procmem")
        watch.arguments = ["watch", String(target.processIdentifier), hex(address + 4096), hex(address), "--as", "u32", "--interval", "50ms"]
        let output = Pipe()
        watch.standardOutput = output
        watch.standardError = FileHandle.nullDevice
        try watch.run()
        usleep(1_000_000)
        // Before the fix the first round never returned, and one Ctrl-C could not end it.
        kill(watch.processIdentifier, SIGINT)
        let deadline = Date().addingTimeInterval(10)
        while watch.isRunning && Date() < deadline { usleep(10_000) }
        let hung = watch.isRunning
        if hung { kill(watch.processIdentifier, SIGKILL) }
        watch.waitUntilExit()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(!hung, "watch waited on the userfaultfd range")
        #expect(said.contains("\(hex(address + 4096)): <notSupported>") && said.contains("\(hex(address)): 1094795585"), "\(said)")
    }
}
