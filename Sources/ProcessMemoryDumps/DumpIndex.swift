import ProcessMemoryCore
import SystemPackage
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The JSON index of a dump: what was dumped from which process, where each readable range went,
/// and every range that could not be read, with the reason.
///
/// A directory dump writes it as `index.json` beside its region files; a core dump writes it as a
/// sidecar, `CORE.json`, whose segments give the core's file offsets. Addresses are `"0x…"` strings.
/// Unreadable ranges are listed in ``Region/failed`` and never appear as data.
public struct DumpIndex: Codable, Sendable, Hashable {
    /// The file name of a directory dump's index.
    public static let fileName = "index.json"

    /// `"procmem-dump"` or `"procmem-core"`.
    public var format: String
    /// The format version, 1.
    public var version: Int
    /// The process.
    public var pid: Int32
    /// Its executable (`/proc/PID/exe`), when known.
    public var executable: String?
    /// How the process was held still while it was read.
    public var stopMethod: StopMethod
    /// How memory was read.
    public var readMode: ReadMode
    /// `true` when every region was processed to its end; a partial dump says why in ``partialReason``.
    public var complete: Bool
    /// Why the dump is partial: `"interrupted"`, or the error that ended it.
    public var partialReason: String?
    /// The core file this index describes, for a core dump.
    public var coreFile: String?
    /// Every mapping, in address order.
    public var regions: [Region]
    /// The `coredump_filter` bits the dump followed, or `nil` when it dumped every readable byte.
    public var coredumpFilter: CoredumpFilter? = nil
    /// For a core dump: the threads whose registers the core holds, and those whose registers are
    /// absent (no `NT_PRSTATUS`), with the reason.
    public var registers: Registers?

    /// Which threads of a core have registers.
    public struct Registers: Codable, Sendable, Hashable {
        /// Threads with `NT_PRSTATUS`, in note order (gdb's current thread first).
        public var threads: [Int32]
        /// Threads without registers, and why.
        public var absent: [RegisterCapture.Absent]

        /// Creates the entry.
        public init(threads: [Int32], absent: [RegisterCapture.Absent]) {
            self.threads = threads
            self.absent = absent
        }
    }

    /// One mapping and what became of it.
    public struct Region: Codable, Sendable, Hashable {
        /// First address.
        @Hex public var start: UInt64
        /// One past the last address.
        @Hex public var end: UInt64
        /// `rwxp` as in `/proc/PID/maps`.
        public var permissions: String
        /// The path or pseudo-name.
        public var path: String?
        /// What the mapping holds.
        public var kind: MemoryRegion.Kind
        /// Offset in the backing file.
        @Hex public var offset: UInt64
        /// How far the dump got: ``end`` unless it was interrupted or the process went away.
        @Hex public var processedUpTo: UInt64
        /// The readable ranges and where their bytes are.
        public var segments: [Segment]
        /// The ranges that could not be read.
        public var failed: [FailedRange]
        /// Why the whole mapping was left out by ``DumpSelection/coredumpFilter(_:)`` (not read, no
        /// data, not a failure), or `nil` when it was dumped.
        public var excluded: String? = nil
        /// The ranges that were never populated (private anonymous pages neither present nor
        /// swapped): not read, and holes in the output, which read as zeros. `nil` when none.
        public var neverPopulated: [AddressRange]? = nil
        /// The ELF module the mapping belongs to (its file name; also for the anonymous mapping
        /// that holds its `.bss`), when the dump was given ``DumpOptions/addressNames``.
        public var module: String? = nil
        /// The symbol that holds ``start``, `module!symbol+0x10`, when there is one and the dump
        /// was given ``DumpOptions/addressNames``.
        public var symbol: String? = nil

        /// Creates a region entry.
        public init(start: UInt64, end: UInt64, permissions: String, path: String?, kind: MemoryRegion.Kind,
                    offset: UInt64, processedUpTo: UInt64, segments: [Segment] = [], failed: [FailedRange] = []) {
            self.start = start
            self.end = end
            self.permissions = permissions
            self.path = path
            self.kind = kind
            self.offset = offset
            self.processedUpTo = processedUpTo
            self.segments = segments
            self.failed = failed
        }
    }

    /// What ``DumpOptions/addressNames`` says about an address: its module and the symbol holding it.
    public struct AddressName: Sendable, Hashable {
        /// The module's file name (`libc.so.6`).
        public var module: String
        /// `module!symbol+0x10`, or `nil` when no symbol holds the address.
        public var symbol: String?

        /// Creates a name.
        public init(module: String, symbol: String?) {
            self.module = module
            self.symbol = symbol
        }
    }

    /// Fills each region's ``Region/module`` and ``Region/symbol`` from `names`, called with the
    /// region's first address.
    public mutating func name(_ names: (UInt64) -> AddressName?) {
        for index in regions.indices {
            guard let name = names(regions[index].start) else { continue }
            regions[index].module = name.module
            regions[index].symbol = name.symbol
        }
    }

    /// A readable range: its bytes are in `file` (a directory dump) or at `fileOffset` of the core.
    public struct Segment: Codable, Sendable, Hashable {
        /// First address.
        @Hex public var start: UInt64
        /// One past the last address.
        @Hex public var end: UInt64
        /// The file holding exactly these bytes, relative to the dump directory.
        public var file: String?
        /// Where the bytes start in ``file`` or in the core file.
        public var fileOffset: UInt64

        /// Creates a segment.
        public init(start: UInt64, end: UInt64, file: String?, fileOffset: UInt64) {
            self.start = start
            self.end = end
            self.file = file
            self.fileOffset = fileOffset
        }
    }

    /// A range of addresses.
    public struct AddressRange: Codable, Sendable, Hashable {
        /// First address.
        @Hex public var start: UInt64
        /// One past the last address.
        @Hex public var end: UInt64

        /// Creates a range.
        public init(start: UInt64, end: UInt64) {
            self.start = start
            self.end = end
        }
    }

    /// A range that could not be read, and why.
    public struct FailedRange: Codable, Sendable, Hashable {
        /// First address.
        @Hex public var start: UInt64
        /// One past the last address.
        @Hex public var end: UInt64
        /// The condition, as ``ProcessMemoryError/Code``.
        public var code: ProcessMemoryError.Code
        /// The explanation.
        public var reason: String

        /// Creates a failed range.
        public init(start: UInt64, end: UInt64, code: ProcessMemoryError.Code, reason: String) {
            self.start = start
            self.end = end
            self.code = code
            self.reason = reason
        }
    }

    /// Creates an index (version 1).
    public init(format: String, pid: Int32, executable: String?, stopMethod: StopMethod, readMode: ReadMode,
                complete: Bool, partialReason: String? = nil, coreFile: String? = nil, regions: [Region]) {
        self.format = format
        self.version = 1
        self.pid = pid
        self.executable = executable
        self.stopMethod = stopMethod
        self.readMode = readMode
        self.complete = complete
        self.partialReason = partialReason
        self.coreFile = coreFile
        self.regions = regions
    }

    /// Bytes written as data.
    public var bytesDumped: UInt64 { regions.reduce(0) { $0 + $1.segments.reduce(0) { $0 + ($1.end - $1.start) } } }
    /// Bytes listed as unreadable.
    public var bytesFailed: UInt64 { regions.reduce(0) { $0 + $1.failed.reduce(0) { $0 + ($1.end - $1.start) } } }
    /// Bytes of mappings left out by a `coredump_filter`.
    public var bytesExcluded: UInt64 { regions.reduce(0) { $0 + ($1.excluded == nil ? 0 : $1.end - $1.start) } }
    /// All failed ranges, in address order.
    public var failedRanges: [FailedRange] { regions.flatMap(\.failed) }

    /// The index as pretty-printed JSON with sorted keys.
    public func encoded() throws(ProcessMemoryError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do { return Array(try encoder.encode(self)) } catch {
            throw ProcessMemoryError(.io, pid: pid, message: "the dump index could not be encoded: \(error)")
        }
    }

    /// Decodes an index from JSON and checks it with ``validate()``.
    ///
    /// - Throws: `.invalidArguments` for text that is not a dump index, or an index that
    ///   contradicts itself (see ``validate()``).
    public static func decode(_ bytes: [UInt8]) throws(ProcessMemoryError) -> DumpIndex {
        let index: DumpIndex
        do { index = try JSONDecoder().decode(DumpIndex.self, from: Data(bytes)) } catch {
            throw ProcessMemoryError(.invalidArguments, message: "not a procmem dump index: \(error)")
        }
        try index.validate()
        return index
    }

    /// Checks what a reader of the index relies on, so that an edited or hostile `index.json`
    /// gives an error instead of reads outside the dump:
    /// a known format and version 1; regions non-empty, in address order and disjoint, each
    /// processed no further than its end; segments and failed ranges non-empty, disjoint, in
    /// order and inside their region; a segment's file a relative path inside the dump directory
    /// (no leading `/`, no empty, `.` or `..` component), and its bytes addressable (`fileOffset`
    /// plus length fits in 63 bits).
    ///
    /// - Throws: `.invalidArguments` naming the first inconsistency.
    public func validate() throws(ProcessMemoryError) {
        func fail(_ what: String) -> ProcessMemoryError {
            ProcessMemoryError(.invalidArguments, message: "the dump index is inconsistent: \(what)")
        }
        guard format == "procmem-dump" || format == "procmem-core" else { throw fail("unknown format \"\(format)\"") }
        guard version == 1 else { throw fail("version \(version) is not supported") }
        guard pid > 0 else { throw fail("pid \(pid)") }
        var previousEnd: UInt64 = 0
        for region in regions {
            let name = "region 0x\(String(region.start, radix: 16))"
            guard region.start < region.end, region.start >= previousEnd else { throw fail("\(name) is empty, out of order or overlaps") }
            guard region.processedUpTo >= region.start, region.processedUpTo <= region.end else {
                throw fail("\(name) is processed outside its range")
            }
            previousEnd = region.end
            var cursor = region.start
            for segment in region.segments {
                guard segment.start < segment.end, segment.start >= cursor, segment.end <= region.end else {
                    throw fail("a segment of \(name) is empty, out of order or outside the region")
                }
                cursor = segment.end
                // The length is checked first: subtracting a length above 2^63 from Int64.max would trap.
                let length = segment.end - segment.start
                guard length <= UInt64(Int64.max), segment.fileOffset <= UInt64(Int64.max) - length else {
                    throw fail("a segment of \(name) lies beyond any file")
                }
                if let file = segment.file {
                    let parts = file.split(separator: "/", omittingEmptySubsequences: false)
                    guard !file.utf8.contains(0), !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
                        throw fail("a segment of \(name) names \"\(file)\", which is not a file in the dump directory")
                    }
                }
            }
            cursor = region.start
            for failed in region.failed {
                guard failed.start < failed.end, failed.start >= cursor, failed.end <= region.end else {
                    throw fail("a failed range of \(name) is empty, out of order or outside the region")
                }
                cursor = failed.end
            }
        }
    }
}

/// A `UInt64` address stored in JSON as a `"0x…"` string.
@propertyWrapper
public struct Hex: Codable, Sendable, Hashable {
    /// The address.
    public var wrappedValue: UInt64

    /// Wraps an address.
    public init(wrappedValue: UInt64) { self.wrappedValue = wrappedValue }

    /// Decodes `"0x…"`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard text.hasPrefix("0x"), let value = UInt64(text.dropFirst(2), radix: 16) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected a 0x hex address, not \(text)")
        }
        wrappedValue = value
    }

    /// Encodes `"0x…"`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode("0x" + String(wrappedValue, radix: 16))
    }
}
