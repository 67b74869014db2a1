import ProcessMemoryCore
/// How pointers are stored in the target's memory: 8 or 4 bytes, little or big endian.
///
/// ``native`` (64-bit little endian) fits x86_64 and arm64 processes. 4-byte pointers fit a 32-bit
/// process (i386 or arm32 under a 64-bit kernel) or a structure that stores 32-bit pointers; big
/// endian fits data written for a big-endian machine. A pointer scan indexes words of this size at
/// this alignment, and a chain reads its hops in this format.
public struct PointerFormat: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The size of a pointer.
    public enum Width: Int, Sendable, Hashable, Codable, CaseIterable {
        /// 4 bytes, 4-byte aligned.
        case bits32 = 4
        /// 8 bytes, 8-byte aligned.
        case bits64 = 8
    }

    /// The pointer size.
    public var width: Width
    /// The byte order.
    public var byteOrder: ScanByteOrder

    /// 64-bit little endian: x86_64 and arm64 processes.
    public static let native = PointerFormat()

    /// Creates a format; the default is ``native``.
    public init(width: Width = .bits64, byteOrder: ScanByteOrder = .little) {
        self.width = width
        self.byteOrder = byteOrder
    }

    /// Bytes per pointer, 4 or 8.
    public var size: Int { width.rawValue }

    /// `64-bit little endian`, `32-bit big endian`, …
    public var description: String { "\(size * 8)-bit \(byteOrder.rawValue) endian" }

    /// The pointer whose bytes start at `offset` of `bytes`, zero-extended to 64 bits.
    @inline(__always)
    func load(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        switch (width, byteOrder) {
        case (.bits64, .little): return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        case (.bits64, .big): return UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        case (.bits32, .little): return UInt64(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        case (.bits32, .big): return UInt64(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        }
    }
}

/// A pointer chain, `base -> +off1 -> +off2 …`: start at the base address, then for each offset read
/// the pointer at the current address (8 bytes little endian unless ``format`` says otherwise) and
/// add the offset to it.
///
/// `libfoo.so+0x1234 -> +0x10 -> +0x8` reads the pointer `p1` at `libfoo.so+0x1234`, then the pointer
/// `p2` at `p1 + 0x10`, and ends at `p2 + 0x8`. The number of offsets is the number of dereferences.
/// A region-named base stays valid across runs of the target (ASLR moves modules, not the offsets
/// inside them), which is what makes chains found by ``ProcessHandle/scanPointers(to:options:progress:cancellation:baseNames:)`` useful.
///
/// The text form (``description``, ``init(parsing:format:)``) does not carry ``format``; a
/// ``PointerChainList`` records it once for all its chains.
public struct PointerChain: Sendable, Hashable, CustomStringConvertible {
    /// Where a chain starts.
    public enum Base: Sendable, Hashable {
        /// An absolute address.
        case address(UInt64)
        /// The start of the first (lowest) region named `name` plus `offset`: a bracketed pseudo-name
        /// (`[heap]`), a path (contains `/`), or the file name of a mapped file (`libc.so.6`).
        case region(String, offset: Int64)
    }

    /// Where the chain starts.
    public var base: Base
    /// The offset added after each dereference, in order.
    public var offsets: [Int64]
    /// How each pointer is stored; ``PointerFormat/native`` unless given.
    public var format: PointerFormat

    /// Creates a chain from its parts.
    public init(base: Base, offsets: [Int64], format: PointerFormat = .native) {
        self.base = base
        self.offsets = offsets
        self.format = format
    }

    /// Parses `libfoo.so+0x1234 -> +0x10 -> -8`: a base (`0x…`, decimal, `NAME`, `NAME+OFF`,
    /// `NAME-OFF`), then any number of `-> OFFSET` hops (`+0x10`, `-8`, `0x10`).
    ///
    /// - Throws: ``ProcessMemoryError/Code/invalidArguments`` saying which part is malformed.
    public init(parsing text: String, format: PointerFormat = .native) throws(ProcessMemoryError) {
        let expression: AddressExpression
        do throws(AddressExpression.Failure) {
            expression = try AddressExpression.parse(text)
        } catch {
            throw .invalid(error.message)
        }
        try self.init(expression, format: format)
    }

    /// The chain `expression` writes: its base (a number, or a region name and offset) and hops.
    ///
    /// - Throws: ``ProcessMemoryError/Code/invalidArguments`` when a numeric base leaves the 64-bit
    ///   range or a region's offset is beyond ±2^63.
    public init(_ expression: AddressExpression, format: PointerFormat = .native) throws(ProcessMemoryError) {
        self.format = format
        offsets = expression.hops
        switch expression.base {
        case .absolute:
            do throws(AddressExpression.Failure) {
                base = .address(try expression.baseAddress(in: MemoryMap(regions: [])))
            } catch {
                throw .invalid("the chain's base '\(expression)' leaves the address range: \(error.message)")
            }
        case .name(let name):
            let limit = expression.isNegative ? UInt64(Int64.max) + 1 : UInt64(Int64.max)
            guard expression.offset <= limit else { throw .invalid("the offset of '\(expression)' is beyond ±2^63") }
            let offset = expression.isNegative ? Int64(truncatingIfNeeded: 0 &- expression.offset) : Int64(expression.offset)
            base = .region(name, offset: offset)
        }
    }

    /// `text` cut at each `->`, every part trimmed of whitespace (the base first).
    public static func hops(in text: String) -> [Substring] {
        text.split(separator: "->", omittingEmptySubsequences: false).map { trimmed($0) }
    }

    /// Parses one hop's offset: `+0x10`, `-0x10`, `0x10`, `16`, `-16`; `nil` when malformed or
    /// beyond ±2^63. The rules of ``AddressExpression/parseOffset(_:)``.
    public static func parseOffset(_ text: Substring) -> Int64? {
        AddressExpression.parseOffset(text)
    }

    /// `libfoo.so+0x1234 -> +0x10 -> +0x8`.
    public var description: String {
        var text: String
        switch base {
        case .address(let address): text = "0x" + String(address, radix: 16)
        case .region(let name, let offset): text = name + (offset == 0 ? "" : Self.signed(offset))
        }
        for offset in offsets { text += " -> " + Self.signed(offset) }
        return text
    }

    /// The base's absolute address in `map`.
    ///
    /// - Throws: `.notFound` when no region has the name; `.invalidArguments` when the offset leaves
    ///   the 64-bit range.
    public func baseAddress(in map: MemoryMap) throws(ProcessMemoryError) -> UInt64 {
        switch base {
        case .address(let address): return address
        case .region(let name, let offset):
            guard let region = map.firstRegion(named: name) else {
                throw ProcessMemoryError(.notFound, message: "the chain's base region \(name) is not mapped")
            }
            guard let address = Self.add(offset, to: region.start) else {
                throw .invalid("\(name)\(Self.signed(offset)) lies outside the 64-bit address range")
            }
            return address
        }
    }

    /// Whether `region` is called `name`: the rules of ``MemoryRegion/isNamed(_:)``, which
    /// procmem's ADDRESS expressions use too.
    public static func region(_ region: MemoryRegion, isNamed name: String) -> Bool {
        region.isNamed(name)
    }

    /// `address + offset`, or `nil` when that leaves 0...2^64-1.
    static func add(_ offset: Int64, to address: UInt64) -> UInt64? {
        AddressExpression.add(offset, to: address)
    }

    /// `+0x10` or `-0x10`.
    static func signed(_ offset: Int64) -> String {
        AddressExpression.signed(offset)
    }

    private static func trimmed(_ text: Substring) -> Substring {
        var view = text
        while let first = view.first, first.isWhitespace { view.removeFirst() }
        while let last = view.last, last.isWhitespace { view.removeLast() }
        return view
    }
}

/// What following a ``PointerChain`` did, hop by hop, and where it stopped if it failed.
public struct PointerChainTrace: Sendable, Hashable {
    /// One dereference: the pointer read at `address`, plus `offset`, gives `next`.
    public typealias Hop = AddressTrace.Hop

    /// The hop that could not be completed.
    public typealias Failure = AddressTrace.Failure

    /// The chain that was followed.
    public var chain: PointerChain
    /// The base's absolute address.
    public var base: UInt64
    /// The hops completed, in order.
    public var hops: [Hop]
    /// The failing hop, if any.
    public var failure: Failure?

    /// The chain's result: the last hop's `next` (the base for a chain without offsets), or `nil`
    /// when a hop failed.
    public var address: UInt64? {
        guard failure == nil else { return nil }
        return hops.last?.next ?? base
    }

    /// The failure as one error: the failing read's code, address, bytes transferred, system call
    /// and errno, with a message that names the hop and the bytes read, and lists the hops before it:
    /// `hop 2 of 3 (+0x8) of '…': the pointer at 0x… could not be read (0 of 8 bytes): …`.
    public var error: ProcessMemoryError? {
        AddressTrace(base: base, hops: hops, failure: failure)
            .error(text: chain.description, offsets: chain.offsets, pointerSize: chain.format.size)
    }
}

extension ProcessHandle {
    /// Follows `chain` hop by hop, recording each pointer read and the first failure.
    ///
    /// Each pointer is one `pread(2)` of the chain's pointer size (8 or 4 bytes) on `/proc/PID/mem`
    /// in `mode` (the default sees what a debugger sees), decoded in the chain's byte order.
    /// - Throws: only when the chain cannot start: the base region is not mapped (`.notFound`), the
    ///   map cannot be read, or the handle is closed. A hop that cannot be read is the trace's
    ///   ``PointerChainTrace/failure``.
    public func trace(_ chain: PointerChain, mode: ReadMode = .default) throws(ProcessMemoryError) -> PointerChainTrace {
        try trace(chain, map: nil, mode: mode)
    }

    /// ``trace(_:mode:)`` with the map already read (`nil`: read it when the base needs it).
    func trace(_ chain: PointerChain, map: MemoryMap?, mode: ReadMode) throws(ProcessMemoryError) -> PointerChainTrace {
        let base: UInt64
        if case .address(let address) = chain.base {
            base = address
        } else {
            do throws(ProcessMemoryError) {
                let regions: MemoryMap
                if let map { regions = map } else { regions = try memoryMap() }
                base = try chain.baseAddress(in: regions)
            } catch {
                var located = error
                located.pid = pid
                throw located
            }
        }
        let format = chain.format
        let followed = followPointers(from: base, offsets: chain.offsets, pointerSize: format.size, mode: mode) { raw in
            format.load(raw, at: 0)
        }
        return PointerChainTrace(chain: chain, base: base, hops: followed.hops, failure: followed.failure)
    }

    /// The address `chain` leads to.
    ///
    /// - Throws: as ``trace(_:mode:)``, and for a failed hop an error with that read's code,
    ///   address, bytes transferred, system call and errno, whose message names the hop
    ///   (`hop 2 of 3 (+0x8): the pointer at 0x… could not be read: …`) and lists the hops before it.
    public func resolve(_ chain: PointerChain, mode: ReadMode = .default) throws(ProcessMemoryError) -> UInt64 {
        let trace = try trace(chain, mode: mode)
        if let error = trace.error { throw error }
        return trace.address ?? trace.base
    }
}

/// What a re-checked chain must lead to, for ``ProcessHandle/recheck(_:expecting:mode:)``.
public enum PointerChainExpectation: Sendable, Hashable {
    /// The chain ends at this address: the target's address now (after a restart, found again by a
    /// value scan).
    case address(UInt64)
    /// The chain ends at memory that starts with these bytes: the target's value, when its new
    /// address is not known.
    case bytes([UInt8])
}

/// The outcome of ``ProcessHandle/recheck(_:expecting:mode:)``.
public struct PointerRecheckResult: Sendable, Hashable {
    /// The chains that still lead to what was expected, in their original order.
    public var kept: [PointerChain]
    /// Where each chain checked leads now, in order, or `nil` when its base is not mapped or a hop
    /// could not be read.
    public var addresses: [UInt64?]
    /// How many chains could not be followed to their end.
    public var broken: Int
}

extension ProcessHandle {
    /// Follows each of `chains` in the process as it is now and keeps those that still lead to
    /// `expected`: how candidates from ``scanPointers(to:options:progress:cancellation:baseNames:)`` are narrowed down, by
    /// restarting the target, finding the value again, and re-checking the saved list.
    ///
    /// The map is read once (`/proc/PID/maps`); each hop is one `pread(2)` on `/proc/PID/mem` in
    /// `mode`, and with ``PointerChainExpectation/bytes(_:)`` one more read at the chain's end. A
    /// chain whose base region is missing or whose hop cannot be read is dropped and counted in
    /// ``PointerRecheckResult/broken``.
    /// - Throws: `.badState`, `.execed`, `.badHandle` when the process goes away; what
    ///   ``memoryMap()`` throws.
    public func recheck(_ chains: [PointerChain], expecting expected: PointerChainExpectation,
                        mode: ReadMode = .default) throws(ProcessMemoryError) -> PointerRecheckResult {
        let map = try memoryMap()
        var result = PointerRecheckResult(kept: [], addresses: [], broken: 0)
        var buffer: [UInt8] = []
        if case .bytes(let bytes) = expected { buffer = [UInt8](repeating: 0, count: bytes.count) }
        for chain in chains {
            let trace: PointerChainTrace
            do throws(ProcessMemoryError) {
                trace = try self.trace(chain, map: map, mode: mode)
            } catch {
                if error.code == .notFound || error.code == .invalidArguments {
                    result.addresses.append(nil)
                    result.broken += 1
                    continue
                }
                throw error
            }
            if let failure = trace.failure, Self.processIsGone(failure.error) { throw failure.error }
            guard let address = trace.address else {
                result.addresses.append(nil)
                result.broken += 1
                continue
            }
            result.addresses.append(address)
            switch expected {
            case .address(let target):
                if address == target { result.kept.append(chain) }
            case .bytes(let bytes):
                let transfer: PartialTransfer
                do throws(ProcessMemoryError) {
                    let result = buffer.withUnsafeMutableBytes { raw in
                        Result { () throws(ProcessMemoryError) -> PartialTransfer in try readTransfer(from: address, into: raw, mode: mode) }
                    }
                    transfer = try result.get()
                } catch {
                    if Self.processIsGone(error) { throw error }
                    continue
                }
                if let stop = transfer.stop, Self.processIsGone(stop) { throw stop }
                if transfer.bytesTransferred == bytes.count && buffer == bytes { result.kept.append(chain) }
            }
        }
        return result
    }

    private static func processIsGone(_ error: ProcessMemoryError) -> Bool {
        error.code == .badState || error.code == .execed || error.code == .badHandle
    }
}

/// A saved list of candidate chains, as `procmem pointer scan --save` writes it: a small header of
/// `#` lines, then one chain per line.
///
/// ```
/// # procmem pointer chains
/// # format: 64-bit little endian
/// # target: 0x55d0c0a01234
/// procmem-fixture+0x4f10 -> +0x30 -> +0x8
/// ```
///
/// Lines without a header (the plain output of `procmem pointer scan`) parse too, in the format
/// given to ``init(parsing:defaultFormat:)``. Blank lines and other `#` lines are ignored.
public struct PointerChainList: Sendable, Hashable {
    /// The first line of a saved list.
    public static let magic = "# procmem pointer chains"

    /// How the chains' pointers are stored.
    public var format: PointerFormat
    /// The address the chains led to when they were found, if recorded.
    public var target: UInt64?
    /// The chains, each with ``format``.
    public var chains: [PointerChain]

    /// Creates a list; every chain takes `format`.
    public init(format: PointerFormat = .native, target: UInt64? = nil, chains: [PointerChain]) {
        self.format = format
        self.target = target
        self.chains = chains.map { chain in
            var copy = chain
            copy.format = format
            return copy
        }
    }

    /// Parses a saved list, or plain chain lines.
    ///
    /// - Throws: `.invalidArguments` naming the line that is not a chain or a malformed header.
    public init(parsing text: String, defaultFormat: PointerFormat = .native) throws(ProcessMemoryError) {
        format = defaultFormat
        target = nil
        chains = []
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingPrefix(while: \.isWhitespace)
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                let body = line.dropFirst().trimmingPrefix(while: \.isWhitespace)
                if body.hasPrefix("format:") {
                    format = try Self.parseFormat(body.dropFirst("format:".count), line: number + 1)
                } else if body.hasPrefix("target:") {
                    let value = body.dropFirst("target:".count).trimmingPrefix(while: \.isWhitespace)
                    guard value.hasPrefix("0x"), let address = UInt64(value.dropFirst(2).filter { !$0.isWhitespace }, radix: 16) else {
                        throw .invalid("line \(number + 1): '\(rawLine)' is not a '# target: 0x…' header")
                    }
                    target = address
                }
                continue
            }
            do throws(ProcessMemoryError) {
                chains.append(try PointerChain(parsing: String(line), format: format))
            } catch {
                throw .invalid("line \(number + 1): \(error.message)")
            }
        }
    }

    /// The list as text, header first.
    public var text: String {
        var lines = [Self.magic, "# format: \(format)"]
        if let target { lines.append("# target: 0x" + String(target, radix: 16)) }
        lines += chains.map(\.description)
        return lines.joined(separator: "\n") + "\n"
    }

    private static func parseFormat(_ text: Substring, line: Int) throws(ProcessMemoryError) -> PointerFormat {
        let words = text.split(whereSeparator: \.isWhitespace)
        guard words.count == 3, words[2] == "endian", let order = ScanByteOrder(rawValue: String(words[1])),
              let width = PointerFormat.Width.allCases.first(where: { "\($0.rawValue * 8)-bit" == words[0] }) else {
            throw .invalid("line \(line): '\(text)' is not a format such as '64-bit little endian'")
        }
        return PointerFormat(width: width, byteOrder: order)
    }
}
