/// A pointer chain, `base -> +off1 -> +off2 …`: start at the base address, then for each offset read
/// the 8-byte pointer at the current address and add the offset to it.
///
/// `libfoo.so+0x1234 -> +0x10 -> +0x8` reads the pointer `p1` at `libfoo.so+0x1234`, then the pointer
/// `p2` at `p1 + 0x10`, and ends at `p2 + 0x8`. The number of offsets is the number of dereferences.
/// A region-named base stays valid across runs of the target (ASLR moves modules, not the offsets
/// inside them), which is what makes chains found by ``ProcessHandle/scanPointers(to:options:progress:)`` useful.
///
/// Pointers are read as 64-bit values in native byte order (64-bit targets).
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

    /// Creates a chain from its parts.
    public init(base: Base, offsets: [Int64]) {
        self.base = base
        self.offsets = offsets
    }

    /// Parses `libfoo.so+0x1234 -> +0x10 -> -8`: a base (`0x…`, decimal, `NAME`, `NAME+OFF`,
    /// `NAME-OFF`), then any number of `-> OFFSET` hops (`+0x10`, `-8`, `0x10`).
    ///
    /// - Throws: ``ProcessMemoryError/Code/invalidArguments`` saying which part is malformed.
    public init(parsing text: String) throws(ProcessMemoryError) {
        let parts = Self.hops(in: text)
        guard let first = parts.first, !first.isEmpty else { throw .invalid("the pointer chain '\(text)' has no base") }
        base = try Self.parseBase(first)
        offsets = []
        for (index, part) in parts.dropFirst().enumerated() {
            guard let offset = Self.parseOffset(part) else {
                throw .invalid("hop \(index + 1) of '\(text)': '\(part)' is not an offset (write +0x10, -8 or 16)")
            }
            offsets.append(offset)
        }
    }

    /// `text` cut at each `->`, every part trimmed of whitespace (the base first).
    public static func hops(in text: String) -> [Substring] {
        text.split(separator: "->", omittingEmptySubsequences: false).map { trimmed($0) }
    }

    /// Parses one hop's offset: `+0x10`, `-0x10`, `0x10`, `16`, `-16`; `nil` when malformed or
    /// beyond ±2^63.
    public static func parseOffset(_ text: Substring) -> Int64? {
        var body = trimmed(text)
        var negative = false
        if body.first == "+" || body.first == "-" {
            negative = body.first == "-"
            body = trimmed(body.dropFirst())
        }
        guard let magnitude = parseUnsigned(body) else { return nil }
        if negative { return magnitude <= UInt64(Int64.max) + 1 ? Int64(truncatingIfNeeded: 0 &- magnitude) : nil }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
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
            guard let region = map.regions.first(where: { Self.region($0, isNamed: name) }) else {
                throw ProcessMemoryError(.notFound, message: "the chain's base region \(name) is not mapped")
            }
            guard let address = Self.add(offset, to: region.start) else {
                throw .invalid("\(name)\(Self.signed(offset)) lies outside the 64-bit address range")
            }
            return address
        }
    }

    /// Whether `region` is called `name`: the same bracketed pseudo-name (`[stack]` also matches
    /// `[stack:TID]`), the same path when `name` contains `/`, otherwise the same file name.
    /// These are the rules of procmem's ADDRESS expressions.
    public static func region(_ region: MemoryRegion, isNamed name: String) -> Bool {
        guard let path = region.path else { return false }
        if name.hasPrefix("[") { return path == name || (name == "[stack]" && region.kind == .stack) }
        if name.contains("/") { return path == name }
        guard path.hasPrefix("/"), let slash = path.lastIndex(of: "/") else { return false }
        return path[path.index(after: slash)...] == name
    }

    /// `address + offset`, or `nil` when that leaves 0...2^64-1.
    static func add(_ offset: Int64, to address: UInt64) -> UInt64? {
        let (result, overflow) = offset >= 0 ? address.addingReportingOverflow(UInt64(offset))
                                             : address.subtractingReportingOverflow(offset.magnitude)
        return overflow ? nil : result
    }

    /// `+0x10` or `-0x10`.
    static func signed(_ offset: Int64) -> String {
        (offset < 0 ? "-0x" : "+0x") + String(offset.magnitude, radix: 16)
    }

    private static func parseBase(_ text: Substring) throws(ProcessMemoryError) -> Base {
        if let value = parseUnsigned(text) { return .address(value) }
        var name = text
        var offset: Int64 = 0
        let searchFrom = text.hasPrefix("[") ? (text.lastIndex(of: "]") ?? text.startIndex) : text.startIndex
        if let sign = text[searchFrom...].lastIndex(where: { $0 == "+" || $0 == "-" }),
           let parsed = parseOffset(text[sign...]) {
            name = trimmed(text[..<sign])
            offset = parsed
        }
        guard !name.isEmpty else { throw .invalid("the chain's base '\(text)' has an offset but no region name") }
        if let value = parseUnsigned(name) {
            guard let address = add(offset, to: value) else { throw .invalid("the chain's base '\(text)' leaves the address range") }
            return .address(address)
        }
        return .region(String(name), offset: offset)
    }

    private static func parseUnsigned(_ text: Substring) -> UInt64? {
        let cleaned = text.filter { $0 != "_" }
        if cleaned.hasPrefix("0x") || cleaned.hasPrefix("0X") {
            let digits = cleaned.dropFirst(2)
            return digits.isEmpty ? nil : UInt64(digits, radix: 16)
        }
        guard let first = cleaned.first, first.isASCII, first.isNumber else { return nil }
        return UInt64(cleaned, radix: 10)
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
    public struct Hop: Sendable, Hashable {
        /// The address the pointer was read from.
        public var address: UInt64
        /// The pointer's value.
        public var pointer: UInt64
        /// The offset added to it.
        public var offset: Int64
        /// `pointer + offset`: the next hop's address, or the chain's result.
        public var next: UInt64
    }

    /// The hop that could not be completed.
    public struct Failure: Sendable, Hashable {
        /// Which hop failed, from 1.
        public var hop: Int
        /// The address its pointer was to be read from.
        public var address: UInt64
        /// The bytes that could be read there before the read stopped (fewer than 8).
        public var bytes: [UInt8]
        /// Why: the failing read's error, or `.invalidArguments` when `pointer + offset` overflowed.
        public var error: ProcessMemoryError
    }

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
        guard let failure, failure.hop >= 1, failure.hop <= chain.offsets.count else { return nil }
        var error = failure.error
        let offset = PointerChain.signed(chain.offsets[failure.hop - 1])
        var message = "hop \(failure.hop) of \(chain.offsets.count) (\(offset)) of '\(chain)': "
        if failure.bytes.count == 8 {
            message += error.message
        } else {
            let read = failure.bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
            message += "the pointer at 0x\(String(failure.address, radix: 16)) could not be read "
            message += "(\(failure.bytes.count) of 8 bytes\(read.isEmpty ? "" : ": " + read)): \(error.message)"
        }
        let path = ["0x" + String(base, radix: 16)] + hops.map { "0x" + String($0.next, radix: 16) }
        if !hops.isEmpty { message += "; hops before it: " + path.joined(separator: " -> ") }
        error.message = message
        return error
    }
}

extension ProcessHandle {
    /// Follows `chain` hop by hop, recording each pointer read and the first failure.
    ///
    /// Each pointer is one 8-byte `pread(2)` on `/proc/PID/mem` in `mode` (the default sees what a
    /// debugger sees).
    /// - Throws: only when the chain cannot start: the base region is not mapped (`.notFound`), the
    ///   map cannot be read, or the handle is closed. A hop that cannot be read is the trace's
    ///   ``PointerChainTrace/failure``.
    public func trace(_ chain: PointerChain, mode: ReadMode = .default) throws(ProcessMemoryError) -> PointerChainTrace {
        let base: UInt64
        if case .address(let address) = chain.base {
            base = address
        } else {
            do throws(ProcessMemoryError) {
                base = try chain.baseAddress(in: memoryMap())
            } catch {
                var located = error
                located.pid = pid
                throw located
            }
        }
        var trace = PointerChainTrace(chain: chain, base: base, hops: [], failure: nil)
        var current = base
        var word = [UInt8](repeating: 0, count: 8)
        for (index, offset) in chain.offsets.enumerated() {
            let transfer: PartialTransfer
            do throws(ProcessMemoryError) {
                let address = current
                let result = word.withUnsafeMutableBytes { raw in
                    Result { () throws(ProcessMemoryError) -> PartialTransfer in try readTransfer(from: address, into: raw, mode: mode) }
                }
                transfer = try result.get()
            } catch {
                trace.failure = .init(hop: index + 1, address: current, bytes: [], error: error)
                return trace
            }
            if let stop = transfer.stop {
                trace.failure = .init(hop: index + 1, address: current, bytes: Array(word[0..<transfer.bytesTransferred]), error: stop)
                return trace
            }
            let pointer = word.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
            guard let next = PointerChain.add(offset, to: pointer) else {
                let error = ProcessMemoryError.invalid(
                    "0x\(String(pointer, radix: 16)) \(PointerChain.signed(offset)) lies outside the 64-bit address range",
                    pid: pid, address: current)
                trace.failure = .init(hop: index + 1, address: current, bytes: word, error: error)
                return trace
            }
            trace.hops.append(.init(address: current, pointer: pointer, offset: offset, next: next))
            current = next
        }
        return trace
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
