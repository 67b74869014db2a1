import ArgumentParser
import ProcessMemory

/// Where `procmem object read|write|info` finds its memory object: the mapping of a process at
/// REGION (`PID REGION …`), or a path such as `/proc/PID/fd/N` (`PATH …`).
enum ObjectSource: Sendable {
    /// The object behind the mapping that contains the address REGION stands for in process `pid`.
    case mapping(pid: Int32, region: AddressArgument)
    /// A file, shared-memory file, or another process's memfd through `/proc/PID/fd/N`.
    case path(String)

    /// Splits `words` into the source and the `trailing` words after it: `PID REGION …` when the
    /// first word is a decimal PID, else `PATH …`. Throws a usage error for the wrong count.
    static func parse(_ words: [String], trailing: Int, usage: String) throws -> (ObjectSource, [String]) {
        guard let first = words.first else { throw ValidationError("expected \(usage)") }
        if first.allSatisfy({ $0.isASCII && $0.isNumber }) {
            guard let pid = Int32(first), pid > 0 else { throw ValidationError("'\(first)' is not a process ID") }
            guard words.count == 2 + trailing else { throw ValidationError("expected \(usage)") }
            return (.mapping(pid: pid, region: try AddressArgument.parse(words[1])), Array(words.dropFirst(2)))
        }
        guard words.count == 1 + trailing else { throw ValidationError("expected \(usage)") }
        return (.path(first), Array(words.dropFirst()))
    }

    /// The PID of the process holding the object, when known: the mapping's, or N in `/proc/N/fd/…`.
    var pid: Int32? {
        switch self {
        case .mapping(let pid, _): return pid
        case .path(let path):
            let parts = path.split(separator: "/")
            guard parts.count >= 2, parts[0] == "proc" else { return nil }
            return Int32(parts[1])
        }
    }

    /// Opens the object with `rights`, reporting failures and turning them into exit codes.
    func open(rights: AccessRights) throws(ExitCode) -> OpenedObject {
        switch self {
        case .path(let path):
            do {
                return OpenedObject(object: try MemoryObject(opening: path, rights: rights), source: self)
            } catch {
                throw ObjectReporting.fail(error, source: self)
            }
        case .mapping(let pid, let region):
            let handle = try TargetProcess.open(pid, rights: rights)
            defer { handle.close() }
            let address = try TargetProcess.resolve(region, in: handle)
            do {
                let backing = try handle.memoryObject(containing: address, rights: rights)
                return OpenedObject(object: backing.object, source: self, address: address, backing: backing)
            } catch {
                throw ObjectReporting.fail(error, source: self)
            }
        }
    }
}

/// An object opened for a command, with how it was found.
struct OpenedObject {
    var object: MemoryObject
    var source: ObjectSource
    /// The address REGION stood for, for a mapping.
    var address: UInt64?
    /// The mapping and the object offset of `address`, for a mapping.
    var backing: BackingObject?

    /// `/proc/PID/fd/N`, or `pid N, 0x… ([anon]…)`: what the object was found through.
    var sourceDescription: String {
        switch source {
        case .path(let path): return path
        case .mapping(let pid, let region):
            let via = backing.map { " via \($0.source.rawValue)" } ?? ""
            return "pid \(pid) \(region.text)\(via)"
        }
    }

    /// The facts shared by `read`, `write` and `info` output.
    func header(_ info: MemoryObject.Info) -> ObjectHeader {
        ObjectHeader(pid: source.pid, address: address.map(Format.hex), source: backing?.source.rawValue ?? "path",
                     kind: info.kind.rawValue, name: info.name, size: info.size)
    }
}

/// The keys every `object read|write|info --json` object starts with; a missing value is null.
struct ObjectHeader: Encodable {
    @NullWhenAbsent var pid: Int32?
    @NullWhenAbsent var address: String?
    var source: String
    var kind: String
    var name: String
    var size: UInt64

    enum CodingKeys: String, CodingKey { case pid, address, source, kind, name, size }
}

/// An `object` command's `--json`: the ``ObjectHeader`` keys and the command's own, in one object.
struct ObjectReport<Details: Encodable>: Encodable {
    var header: ObjectHeader
    var details: Details

    func encode(to encoder: any Encoder) throws {
        try header.encode(to: encoder)
        try details.encode(to: encoder)
    }
}

/// Failures of memory-object commands: one line on stderr, a hint for objects, and the exit status
/// of the code (the same table as every command).
enum ObjectReporting {
    static func fail(_ error: ProcessMemoryError, source: ObjectSource) -> ExitCode {
        Output.error(ErrorReporting.oneLine(error.description, hint: hint(for: error, source: source)))
        return ExitCode(ExitCodes.status(for: error.code))
    }

    static func hint(for error: ProcessMemoryError, source: ObjectSource) -> String? {
        let info: String
        switch source {
        case .mapping(let pid, let region): info = "procmem object info \(pid) '\(region.text)'"
        case .path(let path): info = "procmem object info \(path)"
        }
        switch error.code {
        case .outOfRange:
            return "OFFSET and LENGTH must lie inside the object; `\(info)` shows its size"
        case .wrongType:
            if case .mapping(let pid, _) = source {
                return "only file, memfd and shared-memory mappings have an object; `procmem read \(pid) ADDRESS LENGTH` reads anonymous memory"
            }
            return "give a regular file, a memfd or a shared-memory file (such as /proc/PID/fd/N)"
        case .accessDenied where error.accessDenial == .handleLacksRight:
            return "the object was opened without that right"
        case .accessDenied where error.message.contains("F_SEAL"):
            return "seals can never be removed; `\(info)` shows them"
        default:
            return ErrorReporting.hint(for: error)
        }
    }

    /// The seals for JSON: the C names, or `nil` (null) when the filesystem has none.
    static func names(_ seals: Seals?) -> [String]? {
        seals?.names
    }

    /// The seals as text: `F_SEAL_GROW|F_SEAL_SHRINK`, `none`, or `unsupported`.
    static func text(_ seals: Seals?) -> String {
        seals?.description ?? "unsupported (the filesystem has no seals)"
    }
}
