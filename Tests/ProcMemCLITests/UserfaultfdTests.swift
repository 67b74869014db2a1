import Foundation
import Glibc
import Testing

/// Issue 16: a range registered with userfaultfd whose faults nobody serves made process_vm_readv
/// wait forever; dumps and scans now skip it and say so.
@Suite("userfaultfd ranges never block a dump or a scan")
struct UserfaultfdTests {
    /// python3 registers 16 KiB of fresh anonymous memory with userfaultfd (missing mode, x86_64
    /// syscall 323) and never serves a fault; prints the range's address.
    static let registrar = """
        import ctypes, fcntl, os, struct, sys, time
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
        fd = libc.syscall(323, os.O_CLOEXEC | os.O_NONBLOCK)
        if fd < 0: print("none", flush=True); sys.exit(1)
        fcntl.ioctl(fd, 0xc018aa3f, bytearray(struct.pack("QQQ", 0xAA, 0, 0)))
        address = libc.mmap(None, 16384, 3, 0x22, -1, 0)
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
}
