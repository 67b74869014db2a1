import Foundation
import Glibc

// Why this is not the shared launcher of Sources/ProcessMemoryTestSupport (which the library tests,
// the CLI tests and the fault matrix use): this is a separate package, and a package can depend only
// on another package's products. ProcessMemoryTestSupport is deliberately not a product (issue 11:
// only the libraries and procmem are), so it cannot be imported here. This copy stays minimal: start,
// read the layout (the few fields the benchmark needs, decoded like FixtureLayout), send commands, stop.

/// The package's fixture process, started for the benchmark and driven over its stdin.
final class FixtureProcess {
    let pid: Int32
    private let input: Int32
    private let output: Int32
    private var pending: [UInt8] = []

    init(executable: String) throws {
        var toChild: [Int32] = [0, 0]
        var fromChild: [Int32] = [0, 0]
        guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else { throw BenchError.message("pipe failed") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        posix_spawn_file_actions_addclose(&actions, toChild[1])
        posix_spawn_file_actions_addclose(&actions, fromChild[0])
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup(executable), nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        guard posix_spawn(&child, executable, &actions, nil, &argv, environ) == 0 else {
            throw BenchError.message("cannot start the fixture at \(executable); run ./run.sh")
        }
        close(toChild[0])
        close(fromChild[1])
        pid = child
        input = toChild[1]
        output = fromChild[0]
        let first = try readLine()
        layout = try JSONDecoder().decode(Layout.self, from: Data(first.utf8))
    }

    /// The fields of the fixture's first line (Sources/ProcessMemoryTestSupport/FixtureLayout.swift) the benchmark reads.
    struct Layout: Decodable {
        struct Region: Decodable {
            var address: UInt64
            var size: UInt64
            var holeOffset: UInt64?
        }
        var regions: [String: Region]
    }

    private(set) var layout = Layout(regions: [:])

    func region(_ name: String) -> (address: UInt64, size: UInt64, holeOffset: UInt64?)? {
        layout.regions[name].map { ($0.address, $0.size, $0.holeOffset) }
    }

    func command(_ line: String) throws -> [String: Any] {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(input, $0.baseAddress, $0.count) }
        let reply = try readLine()
        guard let object = try JSONSerialization.jsonObject(with: Data(reply.utf8)) as? [String: Any],
              object["ok"] as? Bool == true else { throw BenchError.message("fixture refused \(line): \(reply)") }
        return object
    }

    func stop() {
        _ = try? command("exit")
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    private func readLine() throws -> String {
        while true {
            if let newline = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
            if n <= 0 { throw BenchError.message("the fixture closed its output") }
            pending.append(contentsOf: chunk[0..<n])
        }
    }
}

enum BenchError: Error, CustomStringConvertible {
    case message(String)
    var description: String {
        switch self { case .message(let text): return text }
    }
}
