/// What resolving an ``AddressExpression`` did, hop by hop, and where it stopped if a hop failed.
public struct AddressTrace: Sendable, Hashable {
    /// One dereference: the pointer read at `address`, plus `offset`, gives `next`.
    public struct Hop: Sendable, Hashable {
        /// The address the pointer was read from.
        public var address: UInt64
        /// The pointer's value.
        public var pointer: UInt64
        /// The offset added to it.
        public var offset: Int64
        /// `pointer + offset`: the next hop's address, or the result.
        public var next: UInt64

        /// Creates a hop record.
        public init(address: UInt64, pointer: UInt64, offset: Int64, next: UInt64) {
            self.address = address
            self.pointer = pointer
            self.offset = offset
            self.next = next
        }
    }

    /// The hop that could not be completed.
    public struct Failure: Sendable, Hashable {
        /// Which hop failed, from 1.
        public var hop: Int
        /// The address its pointer was to be read from.
        public var address: UInt64
        /// The bytes that could be read there before the read stopped (fewer than a pointer when the
        /// read failed; a whole pointer when adding the offset overflowed).
        public var bytes: [UInt8]
        /// Why: the failing read's error, or `.invalidArguments` when `pointer + offset` overflowed.
        public var error: ProcessMemoryError

        /// Creates a failure record.
        public init(hop: Int, address: UInt64, bytes: [UInt8], error: ProcessMemoryError) {
            self.hop = hop
            self.address = address
            self.bytes = bytes
            self.error = error
        }
    }

    /// The base's absolute address (with its offset, before any hop).
    public var base: UInt64
    /// The hops completed, in order.
    public var hops: [Hop]
    /// The failing hop, if any.
    public var failure: Failure?

    /// Creates a trace.
    public init(base: UInt64, hops: [Hop] = [], failure: Failure? = nil) {
        self.base = base
        self.hops = hops
        self.failure = failure
    }

    /// The result: the last hop's `next` (the base when there are no hops), or `nil` when a hop failed.
    public var address: UInt64? {
        guard failure == nil else { return nil }
        return hops.last?.next ?? base
    }

    /// The failure as one error: the failing read's code, address, bytes transferred, system call
    /// and errno, with a message that names the hop, the bytes read and the hops before it:
    /// `hop 2 of 3 (+0x8) of 'game+0x4078 -> …': the pointer at 0x… could not be read (0 of 8 bytes): …`.
    ///
    /// - Parameters:
    ///   - text: the expression as the user wrote it.
    ///   - offsets: every hop's offset (to say "of N" and which offset failed).
    ///   - pointerSize: bytes per pointer.
    public func error(text: String, offsets: [Int64], pointerSize: Int) -> ProcessMemoryError? {
        guard let failure, failure.hop >= 1, failure.hop <= offsets.count else { return nil }
        var error = failure.error
        var message = "hop \(failure.hop) of \(offsets.count) (\(AddressExpression.signed(offsets[failure.hop - 1]))) of '\(text)': "
        if failure.bytes.count == pointerSize {
            message += error.message
        } else {
            let read = failure.bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
            message += "the pointer at 0x\(String(failure.address, radix: 16)) could not be read "
            message += "(\(failure.bytes.count) of \(pointerSize) bytes\(read.isEmpty ? "" : ": " + read)): \(error.message)"
        }
        let path = ["0x" + String(base, radix: 16)] + hops.map { "0x" + String($0.next, radix: 16) }
        if !hops.isEmpty { message += "; hops before it: " + path.joined(separator: " -> ") }
        error.message = message
        return error
    }
}

extension ProcessHandle {
    /// Resolves `expression`'s base (reading the map only when the base is a name) and follows its
    /// hops, recording each pointer read and the first failure.
    ///
    /// Each hop is one read of 8 bytes, little endian, in `mode` (`pread(2)` on `/proc/PID/mem`
    /// for the default mode; see ``ReadMode``); the map is `/proc/PID/maps`.
    /// - Throws: only when the base cannot be resolved: `.notFound` naming the unknown name,
    ///   `.invalidArguments` when the offset leaves the address range, or what ``memoryMap()``
    ///   throws. A hop that cannot be read is the trace's ``AddressTrace/failure``.
    public func trace(_ expression: AddressExpression, names: (any AddressNameResolver)? = nil,
                      mode: ReadMode = .default) throws(ProcessMemoryError) -> AddressTrace {
        let map = expression.needsMap ? try memoryMap() : MemoryMap(regions: [])
        let base: UInt64
        do throws(AddressExpression.Failure) {
            base = try expression.baseAddress(in: map, names: names)
        } catch {
            let code: ProcessMemoryError.Code = error.kind == .unknownName ? .notFound : .invalidArguments
            throw ProcessMemoryError(code, pid: pid, message: "cannot resolve '\(expression)': \(error.message)")
        }
        return followPointers(from: base, offsets: expression.hops, pointerSize: 8, mode: mode) { raw in
            UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
        }
    }

    /// The address `expression` stands for now.
    ///
    /// - Throws: as ``trace(_:names:mode:)``, and for a failed hop the error of
    ///   ``AddressTrace/error(text:offsets:pointerSize:)``: that read's code, address, bytes
    ///   transferred, system call and errno, with a message naming the hop.
    public func resolve(_ expression: AddressExpression, names: (any AddressNameResolver)? = nil,
                        mode: ReadMode = .default) throws(ProcessMemoryError) -> UInt64 {
        let trace = try trace(expression, names: names, mode: mode)
        if let error = trace.error(text: expression.description, offsets: expression.hops, pointerSize: 8) { throw error }
        return trace.address ?? trace.base
    }

    /// Follows `offsets` from `base`: for each, reads a pointer of `pointerSize` bytes at the current
    /// address, decodes it with `load`, and adds the offset. The one pointer-following loop: pointer
    /// chains of other formats use it too.
    package func followPointers(from base: UInt64, offsets: [Int64], pointerSize: Int, mode: ReadMode,
                                load: (UnsafeRawBufferPointer) -> UInt64) -> AddressTrace {
        var trace = AddressTrace(base: base)
        var current = base
        var word = [UInt8](repeating: 0, count: pointerSize)
        for (index, offset) in offsets.enumerated() {
            let address = current
            let outcome = word.withUnsafeMutableBytes { raw in
                Result { () throws(ProcessMemoryError) -> PartialTransfer in try readTransfer(from: address, into: raw, mode: mode) }
            }
            let transfer: PartialTransfer
            switch outcome {
            case .success(let value): transfer = value
            case .failure(let error):
                trace.failure = .init(hop: index + 1, address: current, bytes: [], error: error)
                return trace
            }
            if let stop = transfer.stop {
                trace.failure = .init(hop: index + 1, address: current, bytes: Array(word[0..<transfer.bytesTransferred]), error: stop)
                return trace
            }
            let pointer = word.withUnsafeBytes { load($0) }
            guard let next = AddressExpression.add(offset, to: pointer) else {
                let error = ProcessMemoryError.invalid(
                    "0x\(String(pointer, radix: 16)) \(AddressExpression.signed(offset)) lies outside the 64-bit address range",
                    pid: pid, address: current)
                trace.failure = .init(hop: index + 1, address: current, bytes: word, error: error)
                return trace
            }
            trace.hops.append(.init(address: current, pointer: pointer, offset: offset, next: next))
            current = next
        }
        return trace
    }
}
