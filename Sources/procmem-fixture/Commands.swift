import CProcessMemoryTestSupport
import Glibc

// The stdin command loop: one command per line, one JSON reply per command. Bad input never crashes.

private let maxLineLength = 8 << 20
private let maxReadLength = 1 << 20

struct CommandLoop {
    let memFD: Int32
    let pageSize: Int
    /// Where `map` places new mappings (falling back to anywhere), so they never merge with a neighbour.
    var arena: Arena
    var mapCount = 0

    mutating func run() -> Never {
        var pending = [UInt8]()
        var discarding = false
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            var start = 0
            for i in 0..<n where chunk[i] == UInt8(ascii: "\n") {
                if discarding {
                    discarding = false
                } else {
                    pending.append(contentsOf: chunk[start..<i])
                    handle(line: pending)
                }
                pending.removeAll(keepingCapacity: true)
                start = i + 1
            }
            if !discarding {
                pending.append(contentsOf: chunk[start..<n])
                if pending.count > maxLineLength {
                    discarding = true
                    pending = []
                    emit(errorReply("line too long"))
                }
            }
        }
        if !pending.isEmpty && !discarding { handle(line: pending) }  // unterminated last line
        cleanupTempFile()
        exit(0)
    }

    mutating func handle(line: [UInt8]) {
        let text = String(decoding: line, as: UTF8.self)
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
        do {
            emit(try execute(words))
        } catch {
            let e = error as? FixtureError
            emit(errorReply(e?.message ?? "\(error)", errno: e?.code))
        }
    }

    private mutating func execute(_ words: [String]) throws -> JSON {
        guard let command = words.first else { throw FixtureError(message: "empty command") }
        let args = Array(words.dropFirst())
        switch command {
        case "ping":
            try expect(args, 0, "ping")
            return okReply()
        case "unmap":
            try expect(args, 2, "unmap ADDR LEN")
            let (address, length) = (try number(args[0], "ADDR"), try length(args[1]))
            guard munmap(UnsafeMutableRawPointer(bitPattern: address), length) == 0 else { throw failure("munmap") }
            return okReply()
        case "protect":
            try expect(args, 3, "protect ADDR LEN PERMS")
            let (address, length) = (try number(args[0], "ADDR"), try length(args[1]))
            guard let prot = parsePerms(args[2]) else { throw FixtureError(message: "bad PERMS: \(args[2])") }
            guard mprotect(UnsafeMutableRawPointer(bitPattern: address), length, prot) == 0 else {
                throw failure("mprotect")
            }
            return okReply()
        case "write":
            try expect(args, 2, "write ADDR HEX")
            let offset = try fileOffset(args[0])
            guard let bytes = parseHex(args[1]) else { throw FixtureError(message: "bad HEX: not an even-length hex string") }
            let n = bytes.withUnsafeBytes { pwrite(memFD, $0.baseAddress, $0.count, offset) }
            guard n >= 0 else { throw failure("pwrite /proc/self/mem") }
            return okReply([("written", .int(Int64(n)))])
        case "read":
            try expect(args, 2, "read ADDR LEN")
            let offset = try fileOffset(args[0])
            let count = try length(args[1])
            guard count <= maxReadLength else { throw FixtureError(message: "LEN is capped at \(maxReadLength)") }
            var buffer = [UInt8](repeating: 0, count: count)
            let n = buffer.withUnsafeMutableBytes { pread(memFD, $0.baseAddress, $0.count, offset) }
            guard n >= 0 else { throw failure("pread /proc/self/mem") }
            return okReply([("hex", .string(buffer[0..<n].withUnsafeBytes { hexString($0) }))])
        case "map":
            guard args.count == 1 || args.count == 2 else { throw usage("map SIZE [PERMS]") }
            return try map(args)
        case "malloc":
            // A glibc heap block (never freed), zeroed: pointer tests need malloc's chunk headers.
            try expect(args, 1, "malloc SIZE")
            let size = try length(args[0])
            guard let block = calloc(1, size) else { throw failure("calloc") }
            return okReply([("address", .address(UInt(bitPattern: block)))])
        case "dumpable":
            try expect(args, 1, "dumpable 0|1")
            guard let value = parseNumber(args[0]), value <= 1 else { throw FixtureError(message: "dumpable expects 0 or 1") }
            guard CProcessMemoryTestSupport_prctl(CProcessMemoryTestSupport_PR_SET_DUMPABLE, UInt(value), 0, 0, 0) == 0 else {
                throw failure("prctl(PR_SET_DUMPABLE)")
            }
            return okReply()
        case "fork":
            try expect(args, 0, "fork")
            return try forkPausedChild()
        case "spawn-at":
            return try spawnAt(args)
        case "exec":
            guard !args.isEmpty else { throw usage("exec PATH [ARGS...]") }
            return try execProgram(args)
        case "exit":
            guard args.count <= 1 else { throw usage("exit [CODE]") }
            var code: Int32 = 0
            if let text = args.first {
                guard let n = parseNumber(text), n <= 255 else { throw FixtureError(message: "exit CODE must be 0...255") }
                code = Int32(n)
            }
            emit(okReply())
            cleanupTempFile()
            _exit(code)
        default:
            throw FixtureError(message: "unknown command: \(command)")
        }
    }

    private mutating func map(_ args: [String]) throws -> JSON {
        let requested = try length(args[0])
        guard requested > 0, requested <= 1 << 36 else { throw FixtureError(message: "SIZE must be 1...64 GiB") }
        let size = (requested + pageSize - 1) / pageSize * pageSize
        var prot = PROT_READ | PROT_WRITE
        if args.count == 2 {
            guard let p = parsePerms(args[1]) else { throw FixtureError(message: "bad PERMS: \(args[1])") }
            prot = p
        }
        let p = try (try? mapMemory(size, at: arena.take(size), what: "map")) ?? isolatedMapping(size)
        mapCount += 1
        nameMapping(p, size, "procmem-map-\(mapCount)")
        memset(p, 0x33, size)
        if prot != PROT_READ | PROT_WRITE, mprotect(p, size, prot) != 0 {
            let e = failure("mprotect")
            munmap(p, size)
            throw e
        }
        return okReply([("address", .address(UInt(bitPattern: p))), ("size", .size(size))])
    }
}

// MARK: - argument helpers

func usage(_ text: String) -> FixtureError { FixtureError(message: "usage: \(text)") }

func expect(_ args: [String], _ count: Int, _ text: String) throws {
    guard args.count == count else { throw usage(text) }
}

func number(_ text: String, _ name: String) throws -> UInt {
    guard let n = parseNumber(text), let value = UInt(exactly: n) else {
        throw FixtureError(message: "bad \(name): \(text)")
    }
    return value
}

func length(_ text: String) throws -> Int {
    guard let n = parseNumber(text), let value = Int(exactly: n) else {
        throw FixtureError(message: "bad LEN: \(text)")
    }
    return value
}

/// An address as an offset into /proc/self/mem.
func fileOffset(_ text: String) throws -> off_t {
    guard let n = parseNumber(text), let value = off_t(exactly: n) else {
        throw FixtureError(message: "bad ADDR: \(text)")
    }
    return value
}

/// A mapping wherever the kernel puts it, with an unmapped page on each side so it never merges with
/// a neighbour (used when the arena is full or placed by the kernel).
private func isolatedMapping(_ size: Int) throws -> UnsafeMutableRawPointer {
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let outer = try mapMemory(size + 2 * page, what: "map")
    munmap(outer, page)
    munmap(outer + page + size, page)
    return outer + page
}
