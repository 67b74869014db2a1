import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing

/// Issue 16: files procmem writes cannot be turned against root (planted links, pre-created files,
/// modes), a failed or killed write keeps the previous output, and files read back that are not
/// regular files fail at once.
@Suite("procmem outputs and inputs under attack")
struct OutputHardeningTests {
    /// A fresh directory (0700) for one test.
    static func scratch(_ name: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-harden-\(name)-\(UUID().uuidString)").path
        try #require(mkdir(path, 0o700) == 0, "mkdir \(path): \(errno)")
        return path
    }

    /// A file that stands for one root cares about, holding a known text.
    static func victim(in directory: String, _ name: String = "victim") throws -> String {
        let path = directory + "/" + name
        try Data("VICTIM\n".utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func text(_ path: String) -> String? {
        (try? Data(contentsOf: URL(fileURLWithPath: path))).map { String(decoding: $0, as: UTF8.self) }
    }

    /// `lstat(2)`: the type and permission bits, of a link itself.
    static func mode(_ path: String) -> mode_t? {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_mode : nil
    }

    static func exists(_ path: String) -> Bool { mode(path) != nil }

    /// Runs `procmem` under `sh -c` with a file-size limit of `blocks` 512-byte blocks: the write
    /// that crosses it kills procmem with SIGXFSZ (or, where SIGXFSZ is ignored, fails with EFBIG),
    /// as a kill or a full disk would stop it mid-write.
    static func killedMidWrite(_ arguments: [String], blocks: Int) throws -> TimedRun {
        let procmem = try Binaries.url("procmem").path
        let quoted = ([procmem] + arguments).map { "'" + $0 + "'" }.joined(separator: " ")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "ulimit -c 0; ulimit -f \(blocks); exec \(quoted)"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        let signaled = process.terminationReason == .uncaughtSignal
        return TimedRun(status: signaled ? -1 : process.terminationStatus, signal: signaled ? process.terminationStatus : nil,
                        timedOut: false, stdout: [], stderr: "")
    }

    /// The start addresses of the fixture's mappings, as region file names.
    static func regionFileNames(_ pid: String) throws -> [String] {
        let maps = try String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)
        return maps.split(separator: "\n").compactMap { line in
            guard let dash = line.firstIndex(of: "-") else { return nil }
            let digits = String(line[..<dash])
            return String(repeating: "0", count: max(0, 12 - digits.count)) + digits + ".bin"
        }
    }

    // MARK: - Files we write

    @Test("links planted on every regions/ADDR.bin are not followed; the dump replaces them")
    func plantedRegionLinks() throws {
        let base = try Self.scratch("region-links")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let victim = try Self.victim(in: base)
        let output = base + "/out"
        try #require(mkdir(output, 0o700) == 0 && mkdir(output + "/regions", 0o700) == 0)
        try withFixture { fixture in
            let names = try Self.regionFileNames(fixture.pidArgument)
            for name in names { try #require(symlink(victim, output + "/regions/" + name) == 0) }
            let run = try procmem("dump", fixture.pidArgument, "--output", output, "--stop", "signal")
            #expect(run.status == 0, "\(run.stderr)")
            #expect(Self.text(victim) == "VICTIM\n", "the dump wrote through a planted link")
            let written = try FileManager.default.contentsOfDirectory(atPath: output + "/regions")
            #expect(!written.isEmpty)
            for name in written {
                #expect(Self.mode(output + "/regions/" + name).map { $0 & S_IFMT } == S_IFREG, "\(name) is not a regular file")
            }
        }
    }

    @Test("a --core FILE or FILE.json that is a link is refused and its target left alone")
    func symlinkedCore() throws {
        let base = try Self.scratch("core-links")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let victim = try Self.victim(in: base)
        let sidecarVictim = try Self.victim(in: base, "victim2")
        try #require(symlink(victim, base + "/a.core") == 0)
        try #require(symlink(sidecarVictim, base + "/b.core.json") == 0)
        try withFixture { fixture in
            let first = try procmem("dump", fixture.pidArgument, "--core", base + "/a.core", "--stop", "signal")
            #expect(first.status != 0)
            #expect(first.stderr.contains("symbolic link"), "\(first.stderr)")
            let second = try procmem("dump", fixture.pidArgument, "--core", base + "/b.core", "--stop", "signal")
            #expect(second.status != 0)
            #expect(second.stderr.contains("symbolic link"), "\(second.stderr)")
        }
        #expect(Self.text(victim) == "VICTIM\n")
        #expect(Self.text(sidecarVictim) == "VICTIM\n")
        #expect(!Self.exists(base + "/b.core"), "a core was left although its sidecar was refused")
    }

    @Test("a dangling index.json link and a symlinked regions directory are refused, nothing is created through them")
    func danglingIndexAndRegionsLink() throws {
        let base = try Self.scratch("index-links")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let elsewhere = try Self.scratch("index-links-target")
        defer { try? FileManager.default.removeItem(atPath: elsewhere) }
        let first = base + "/one", second = base + "/two"
        try #require(mkdir(first, 0o700) == 0 && mkdir(second, 0o700) == 0)
        try #require(symlink(elsewhere + "/created-by-root", first + "/index.json") == 0)
        try #require(symlink(elsewhere, second + "/regions") == 0)
        try withFixture { fixture in
            let index = try procmem("dump", fixture.pidArgument, "--output", first, "--stop", "signal")
            #expect(index.status != 0)
            #expect(index.stderr.contains("symbolic link"), "\(index.stderr)")
            let regions = try procmem("dump", fixture.pidArgument, "--output", second, "--stop", "signal")
            #expect(regions.status != 0)
            #expect(regions.stderr.contains("symbolic link"), "\(regions.stderr)")
        }
        #expect(!Self.exists(elsewhere + "/created-by-root"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere).isEmpty, "files were written through the regions link")
    }

    @Test("an output directory that is a link is refused, with or without a trailing slash")
    func linkedOutputDirectory() throws {
        let base = try Self.scratch("dir-link")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let elsewhere = try Self.scratch("dir-link-target")
        defer { try? FileManager.default.removeItem(atPath: elsewhere) }
        try #require(symlink(elsewhere, base + "/out") == 0)
        try withFixture { fixture in
            for given in [base + "/out", base + "/out/", base + "/out//"] {
                let run = try procmem("dump", fixture.pidArgument, "--output", given, "--stop", "signal")
                #expect(run.status != 0 && run.stderr.contains("symbolic link"), "\(given): \(run.stderr)")
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere).isEmpty, "a dump was written through the link")
    }

    @Test("pre-created outputs: a FIFO is refused at once, another user's file or directory is not reused")
    func preCreatedOutputs() throws {
        let base = try Self.scratch("pre-created")
        defer { try? FileManager.default.removeItem(atPath: base) }
        try #require(mkfifo(base + "/fifo.core", 0o600) == 0 && mkfifo(base + "/fifo.pmm", 0o600) == 0)
        let foreign = try Self.victim(in: base, "foreign.pmm")
        try #require(chown(foreign, 65534, 65534) == 0)
        let foreignDirectory = base + "/foreign-dir"
        try #require(mkdir(foreignDirectory, 0o777) == 0 && chown(foreignDirectory, 65534, 65534) == 0)
        try withFixture { fixture in
            let directory = URL(fileURLWithPath: base)
            let core = try runProcmem(["dump", fixture.pidArgument, "--core", base + "/fifo.core", "--stop", "signal"], timeout: 20, in: directory)
            #expect(!core.timedOut, "dump --core to a FIFO hung")
            #expect(core.status != 0 && core.stderr.contains("not a regular file"), "\(core.stderr)")
            let save = try runProcmem(["scan", fixture.pidArgument, "0x5EED1234", "--as", "u32", "--save", base + "/fifo.pmm"], timeout: 20, in: directory)
            #expect(!save.timedOut, "scan --save to a FIFO hung")
            #expect(save.status != 0 && save.stderr.contains("not a regular file"), "\(save.stderr)")
            let other = try procmem("scan", fixture.pidArgument, "0x5EED1234", "--as", "u32", "--save", foreign)
            #expect(other.status != 0 && other.stderr.contains("another user"), "\(other.stderr)")
            let into = try procmem("dump", fixture.pidArgument, "--output", foreignDirectory, "--stop", "signal")
            #expect(into.status != 0 && into.stderr.contains("another user"), "\(into.stderr)")
        }
        #expect(Self.text(foreign) == "VICTIM\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: foreignDirectory).isEmpty)
    }

    @Test("every output is 0600 and every directory procmem creates 0700")
    func modes() throws {
        let base = try Self.scratch("modes")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let saved = umask(0)
        defer { umask(saved) }
        try withFixture { fixture in
            #expect(try procmem("dump", fixture.pidArgument, "--output", base + "/out", "--stop", "signal").status == 0)
            #expect(try procmem("dump", fixture.pidArgument, "--core", base + "/c.core", "--stop", "signal").status == 0)
            #expect(try procmem("scan", fixture.pidArgument, "0x5EED1234", "--as", "u32", "--save", base + "/m.pmm").status == 0)
            let target = try fixture.layout.value("u32")
            let pointers = try procmem("pointer", "scan", fixture.pidArgument, hex(target), "--depth", "1", "--max-offset", "0x100",
                                       "--save", base + "/p.txt")
            #expect(pointers.status == 0, "\(pointers.stderr)")
        }
        #expect(Self.mode(base + "/out").map { $0 & 0o7777 } == 0o700)
        #expect(Self.mode(base + "/out/regions").map { $0 & 0o7777 } == 0o700)
        var files = [base + "/out/index.json", base + "/c.core", base + "/c.core.json", base + "/m.pmm", base + "/p.txt"]
        files += try FileManager.default.contentsOfDirectory(atPath: base + "/out/regions").map { base + "/out/regions/" + $0 }
        for file in files {
            #expect(Self.mode(file).map { $0 & 0o7777 } == 0o600, "\(file)")
        }
    }

    @Test("a dump, core or rescan killed or failing mid-write leaves the previous output as it was")
    func killedWriteKeepsPreviousOutput() throws {
        let base = try Self.scratch("killed")
        defer { try? FileManager.default.removeItem(atPath: base) }
        try withFixture { fixture in
            let core = base + "/c.core", output = base + "/out", matches = base + "/m.pmm"
            #expect(try procmem("dump", fixture.pidArgument, "--core", core, "--stop", "signal").status == 0)
            #expect(try procmem("dump", fixture.pidArgument, "--output", output, "--stop", "signal").status == 0)
            #expect(try procmem("scan", fixture.pidArgument, "0", "--as", "u8", "--save", matches).status == 0)
            let before = [core, core + ".json", output + "/index.json", matches].map { (try? Data(contentsOf: URL(fileURLWithPath: $0))) ?? Data() }
            let regionsBefore = try FileManager.default.contentsOfDirectory(atPath: output + "/regions").sorted()
            #expect(before.allSatisfy { !$0.isEmpty })

            let killedCore = try Self.killedMidWrite(["dump", fixture.pidArgument, "--core", core, "--stop", "signal"], blocks: 128)
            #expect(killedCore.signal == SIGXFSZ || killedCore.status != 0, "the write was not cut short")
            let killedDump = try Self.killedMidWrite(["dump", fixture.pidArgument, "--output", output, "--stop", "signal"], blocks: 128)
            #expect(killedDump.signal == SIGXFSZ || killedDump.status != 0, "the write was not cut short")
            let killedRescan = try Self.killedMidWrite(["rescan", matches, "--unchanged"], blocks: 1)
            #expect(killedRescan.signal == SIGXFSZ || killedRescan.status != 0, "the write was not cut short")

            let after = [core, core + ".json", output + "/index.json", matches].map { (try? Data(contentsOf: URL(fileURLWithPath: $0))) ?? Data() }
            #expect(after == before, "an interrupted write changed the previous output")
            #expect(try FileManager.default.contentsOfDirectory(atPath: output + "/regions").sorted() == regionsBefore)
            #expect(DumpCommandTests.isRunning(fixture.pidArgument))
        }
    }

    // MARK: - Files we read back

    @Test("FIFOs and devices as match file, index, region file fail at once; a huge file is not read whole")
    func nonRegularInputs() throws {
        let base = try Self.scratch("inputs")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let directory = URL(fileURLWithPath: base)
        try #require(mkfifo(base + "/fifo.pmm", 0o600) == 0)
        for run in [["rescan", "/dev/zero", "--changed"], ["rescan", base + "/fifo.pmm", "--changed"]] {
            let result = try runProcmem(run, timeout: 20, in: directory)
            #expect(!result.timedOut, "\(run) hung")
            #expect(result.status != 0 && result.stderr.contains("not a regular file"), "\(run): \(result.stderr)")
        }
        // 2 GiB that start with random bytes (sparse): refused by its first bytes, within 512 MiB.
        let big = base + "/big.pmm"
        let fd = open(big, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        try #require(fd >= 0)
        var noise = [UInt8](repeating: 0, count: 4096)
        for index in noise.indices { noise[index] = UInt8.random(in: 0...255) }
        #expect(noise.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == 4096)
        #expect(ftruncate(fd, 2 << 30) == 0)
        close(fd)
        let procmemPath = try Binaries.url("procmem").path
        let limited = Process()
        limited.executableURL = URL(fileURLWithPath: "/bin/sh")
        limited.arguments = ["-c", "ulimit -v 524288; exec '\(procmemPath)' rescan '\(big)' --changed 2>&1"]
        let pipe = Pipe()
        limited.standardOutput = pipe
        try limited.run()
        let said = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        limited.waitUntilExit()
        #expect(limited.terminationReason == .exit && said.contains("bad magic"), "\(said)")
    }

    @Test("diff refuses a FIFO index, a FIFO region file, and a region file or regions directory that is a link")
    func diffInputs() throws {
        let base = try Self.scratch("diff-inputs")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let directory = URL(fileURLWithPath: base)
        try withFixture { fixture in
            let dumped = try procmem("dump", fixture.pidArgument, "--output", base + "/a", "--stop", "signal")
            #expect(dumped.status == 0, "\(dumped.stderr)")
        }
        let index = try Data(contentsOf: URL(fileURLWithPath: base + "/a/index.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: index) as? [String: Any])
        let regions = try #require(object["regions"] as? [[String: Any]])
        let files = regions.compactMap { ($0["segments"] as? [[String: Any]])?.first?["file"] as? String }
        let file = try #require(files.first)
        func copy(_ name: String, _ change: (String) throws -> Void) throws -> String {
            let path = base + "/" + name
            try FileManager.default.copyItem(atPath: base + "/a", toPath: path)
            try change(path)
            return path
        }
        let fifoIndex = try copy("fifo-index") { path in
            try FileManager.default.removeItem(atPath: path + "/index.json")
            try #require(mkfifo(path + "/index.json", 0o600) == 0)
        }
        let fifoRegion = try copy("fifo-region") { path in
            try FileManager.default.removeItem(atPath: path + "/" + file)
            try #require(mkfifo(path + "/" + file, 0o600) == 0)
        }
        let linkedFile = try copy("linked-file") { path in
            try FileManager.default.removeItem(atPath: path + "/" + file)
            try #require(symlink(base + "/a/" + file, path + "/" + file) == 0)
        }
        let linkedRegions = try copy("linked-regions") { path in
            try FileManager.default.removeItem(atPath: path + "/regions")
            try #require(symlink(base + "/a/regions", path + "/regions") == 0)
        }
        for (other, says) in [(fifoIndex, "not a regular file"), (fifoRegion, "not a regular file"),
                              (linkedFile, "symbolic link"), (linkedRegions, "symbolic link")] {
            let run = try runProcmem(["diff", base + "/a", other], timeout: 20, in: directory)
            #expect(!run.timedOut, "diff with \(other) hung")
            #expect(run.status != 0 && run.status != 1 && run.stderr.contains(says), "\(other): \(run.status) \(run.stderr)")
        }
    }
}
