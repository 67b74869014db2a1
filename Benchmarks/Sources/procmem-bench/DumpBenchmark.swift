import Foundation
import Glibc
import ProcessMemory

/// #6: a full core dump of the fixture (holding a mapped region of the benchmark's size) by our
/// library against `gcore`, and a byte-for-byte comparison of the PT_LOAD contents both cores hold.
///
/// `fixturePath` is the fixture's executable (gcore needs only the PID). Both cores are written to
/// the same temporary directory and removed afterwards. Bytes that differ are expected in three
/// places only: the rseq `cpu_id` fields (the kernel rewrites them when the thread migrates), and
/// ranges gcore fills with zeros where we write the real bytes: a mapping with a guard page inside
/// (gcore's read of the whole section fails) and shared file mappings coredump_filter excludes.
func dumpRows(pid: Int32, fixturePath: String, repetitions: Int) throws -> [Row] {
    guard let gcore = ["/usr/bin/gcore", "/usr/local/bin/gcore"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw BenchError.message("gcore (part of gdb) is not installed")
    }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-bench-dump-\(getpid())").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let ours = directory + "/ours.core"
    let prefix = directory + "/gcore"
    let theirs = prefix + ".\(pid)"
    let handle = try ProcessHandle(pid: pid)
    defer { handle.close() }
    var dumped: UInt64 = 0
    let result = try compare(repetitions: max(2, repetitions / 2), ours: {
        dumped = try handle.dumpCore(to: ours, options: DumpOptions(stopMethod: .ptrace)).bytesDumped
    }, raw: {
        try runGcore(gcore, prefix: prefix, pid: pid)
    })
    let (equal, compared) = try compareCores(ours, theirs)
    _ = fixturePath  // gcore and our dump need only the PID
    return [
        Row(number: "6", name: "core dump of the fixture (\(dumped >> 20) MiB) vs gcore", unit: "GB/s",
            ours: Double(dumped) / result.ours / 1e9, raw: Double(dumped) / result.raw / 1e9,
            baseline: "gcore", target: 3.0, oursRSS: result.oursRSS, rawRSS: result.rawRSS),
        Row(number: "6", name: "core contents equal to gcore's (bytes equal / bytes both hold)", unit: "bytes",
            ours: Double(equal), raw: Double(compared), baseline: "gcore PT_LOADs", target: 1.0, oursRSS: 0, rawRSS: 0),
    ]
}

/// Runs `gcore -o PREFIX PID` (posix_spawn), quietly, and waits for it.
private func runGcore(_ gcore: String, prefix: String, pid: Int32) throws {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    var argv: [UnsafeMutablePointer<CChar>?] = [strdup(gcore), strdup("-o"), strdup(prefix), strdup(String(pid)), nil]
    defer { argv.forEach { free($0) } }
    var child: pid_t = 0
    guard posix_spawn(&child, gcore, &actions, nil, &argv, environ) == 0 else { throw BenchError.message("cannot run \(gcore)") }
    var status: Int32 = 0
    while waitpid(child, &status, 0) == -1 && errno == EINTR {}
    guard status == 0 else { throw BenchError.message("gcore failed with status \(status)") }
}

/// The PT_LOADs (address, file offset, bytes in the file) of an ELF64 core.
private func loads(_ bytes: UnsafeRawBufferPointer) -> [(address: UInt64, offset: UInt64, size: UInt64)] {
    func u16(_ at: Int) -> Int { Int(bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
    func u32(_ at: Int) -> UInt32 { bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self) }
    func u64(_ at: Int) -> UInt64 { bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self) }
    guard bytes.count >= 64 else { return [] }
    let phoff = Int(u64(32))
    var count = u16(56)
    if count == 0xffff { count = Int(u32(Int(u64(40)) + 44)) }
    return (0..<count).compactMap { index in
        let at = phoff + index * 56
        guard at + 56 <= bytes.count, u32(at) == 1, u64(at + 32) > 0 else { return nil }
        return (u64(at + 16), u64(at + 8), u64(at + 32))
    }
}

/// Bytes equal and bytes compared over the addresses both cores hold data for.
private func compareCores(_ first: String, _ second: String) throws -> (equal: UInt64, compared: UInt64) {
    let a = try Data(contentsOf: URL(fileURLWithPath: first), options: .alwaysMapped)
    let b = try Data(contentsOf: URL(fileURLWithPath: second), options: .alwaysMapped)
    return a.withUnsafeBytes { rawA in
        b.withUnsafeBytes { rawB in
            var equal: UInt64 = 0
            var compared: UInt64 = 0
            let loadsB = loads(rawB)
            for loadA in loads(rawA) {
                for loadB in loadsB {
                    let start = max(loadA.address, loadB.address)
                    let end = min(loadA.address + loadA.size, loadB.address + loadB.size)
                    guard start < end else { continue }
                    let offsetA = Int(loadA.offset + (start - loadA.address))
                    let offsetB = Int(loadB.offset + (start - loadB.address))
                    let length = Int(end - start)
                    guard offsetA + length <= rawA.count, offsetB + length <= rawB.count,
                          let baseA = rawA.baseAddress, let baseB = rawB.baseAddress else { continue }
                    compared += UInt64(length)
                    var position = 0
                    while position < length {
                        let block = min(4096, length - position)
                        if memcmp(baseA + offsetA + position, baseB + offsetB + position, block) == 0 {
                            equal += UInt64(block)
                        } else {
                            for index in 0..<block where rawA[offsetA + position + index] == rawB[offsetB + position + index] {
                                equal += 1
                            }
                        }
                        position += block
                    }
                }
            }
            return (equal, compared)
        }
    }
}
