import Foundation
import ProcessMemoryTestSupport
import Testing
import ProcessMemoryCore
import ProcessMemoryScanning

/// ADDRESS expressions: parsing and resolving against a saved map (pure), and following pointer hops
/// in the fixture.
@Suite("ADDRESS expressions") struct AddressExpressionTests {
    static let maps = """
        00400000-00452000 r-xp 00000000 08:02 173521                             /usr/bin/dbus-daemon
        00651000-00652000 r--p 00051000 08:02 173521                             /usr/bin/dbus-daemon
        00e03000-00e24000 rw-p 00000000 00:00 0                                  [heap]
        7f0000000000-7f0000001000 rw-p 00000000 00:00 0                          [anon:procmem-pattern]
        7f0000002000-7f0000003000 rw-p 00000000 00:00 0                          [anon:procmem-pattern]
        7f1000000000-7f1000020000 r-xp 00000000 08:02 100                        /lib/x86_64-linux-gnu/libc.so.6
        7f1000020000-7f1000030000 r--p 00020000 08:02 100                        /lib/x86_64-linux-gnu/libc.so.6
        7f2000000000-7f2000001000 r-xp 00000000 08:02 200                        /opt/my app/lib-foo-2 (deleted)
        7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]
        7ffc00100000-7ffc00102000 r-xp 00000000 00:00 0                          [vdso]

        """

    /// Input and the address, or the failure kind, it gives.
    enum Expected: Sendable { case address(UInt64), failure(AddressExpression.Failure.Kind) }

    static let cases: [(String, Expected)] = [
        ("0x1000", .address(0x1000)),
        ("0X1000", .address(0x1000)),
        ("4096", .address(0x1000)),
        ("0x1_000", .address(0x1000)),
        (" 0x1000 ", .address(0x1000)),
        ("0x10+0x10", .address(0x20)),
        ("0x10-16", .address(0x0)),
        ("[heap]", .address(0xe03000)),
        ("[heap]+0x10", .address(0xe03010)),
        ("[heap]-16", .address(0xe02ff0)),
        ("[anon:procmem-pattern]+0x10", .address(0x7f00_0000_0010)),
        ("libc.so.6+0x1000", .address(0x7f10_0000_1000)),
        ("libc.so.6", .address(0x7f10_0000_0000)),
        ("/lib/x86_64-linux-gnu/libc.so.6+4096", .address(0x7f10_0000_1000)),
        ("dbus-daemon", .address(0x400000)),
        ("lib-foo-2+0", .address(0x7f20_0000_0000)),
        ("lib-foo-2", .address(0x7f20_0000_0000)),
        ("lib-foo-2-0x10", .address(0x7f1f_ffff_fff0)),
        ("dbus-daemon-0x10", .address(0x3ffff0)),
        ("/opt/my app/lib-foo-2", .address(0x7f20_0000_0000)),
        ("[stack]", .address(0x7ffc_0000_0000)),
        ("[vdso]+1", .address(0x7ffc_0010_0001)),
        ("0xZZ", .failure(.malformed)),
        ("12abc", .failure(.malformed)),
        ("18446744073709551616", .failure(.malformed)),
        ("", .failure(.malformed)),
        ("-5", .failure(.malformed)),
        ("[heap", .failure(.malformed)),
        ("[]", .failure(.malformed)),
        ("[heap]x", .failure(.malformed)),
        ("[heap]+zz", .failure(.malformed)),
        ("[heap]+", .failure(.malformed)),
        ("0x1__0", .failure(.malformed)),
        ("-> +8", .failure(.malformed)),
        ("[heap] -> +zz", .failure(.malformed)),
        ("[heap] -> ", .failure(.malformed)),
        ("[heap] -> +0x8000000000000000", .failure(.malformed)),
        ("libc.so", .failure(.unknownName)),
        ("[anon:other]", .failure(.unknownName)),
        ("usr/bin/dbus-daemon", .failure(.unknownName)),
        ("0x0-1", .failure(.outOfRange)),
        ("0xffffffffffffffff+1", .failure(.outOfRange)),
        ("[heap]-0xf000000", .failure(.outOfRange)),
    ]

    @Test("numbers and region names resolve against a saved map; bad expressions say why")
    func resolveAgainstMap() throws {
        let map = MemoryMap(regions: MapsParser.parse(Array(Self.maps.utf8)).regions)
        for (input, expected) in Self.cases {
            let outcome = Result { () throws(AddressExpression.Failure) -> UInt64 in
                try AddressExpression.parse(input).baseAddress(in: map)
            }
            switch (expected, outcome) {
            case (.address(let address), .success(let got)):
                #expect(got == address, "'\(input)' gave 0x\(String(got, radix: 16))")
            case (.failure(let kind), .failure(let failure)):
                #expect(failure.kind == kind, "'\(input)' failed with \(failure.kind): \(failure.message)")
                #expect(!failure.message.isEmpty)
            default:
                Issue.record("'\(input)' gave \(outcome), expected \(expected)")
            }
        }
    }

    @Test("pointer hops parse, and every expression prints back to itself")
    func hopsAndDescription() throws {
        let chain = try AddressExpression.parse("game+0x4078 -> +0x18 -> -8 ->16")
        #expect(chain.base == .name("game"))
        #expect(chain.offset == 0x4078)
        #expect(chain.hops == [0x18, -8, 16])
        #expect(chain.description == "game+0x4078 -> +0x18 -> -0x8 -> +0x10")
        for (input, expected) in Self.cases {
            guard case .address = expected else { continue }
            let expression = try AddressExpression.parse(input)
            #expect(try AddressExpression.parse(expression.description) == expression, "'\(input)' printed as '\(expression)'")
        }
        #expect(try AddressExpression.parse(chain.description) == chain)
        // Found by the fuzzer: a zero offset has one sign, so `-0` prints and re-parses as no offset.
        #expect(try AddressExpression.parse("[stack]-]-0") == AddressExpression.parse("[stack]-]"))
    }

    /// A stand-in for a symbol table.
    struct Symbols: AddressNameResolver {
        func address(of name: String, in map: MemoryMap) -> UInt64? {
            name == "libc.so.6!malloc" ? (map.firstRegion(named: "libc.so.6")?.start).map { $0 + 0x500 } : nil
        }
    }

    @Test("names no region has go to the resolver hook; regions win")
    func resolverHook() throws {
        let map = MemoryMap(regions: MapsParser.parse(Array(Self.maps.utf8)).regions)
        #expect(try AddressExpression.parse("libc.so.6!malloc+0x10").baseAddress(in: map, names: Symbols()) == 0x7f10_0000_0510)
        #expect(try AddressExpression.parse("libc.so.6+0x10").baseAddress(in: map, names: Symbols()) == 0x7f10_0000_0010)
        #expect(throws: AddressExpression.Failure.self) {
            try AddressExpression.parse("libc.so.6!free").baseAddress(in: map, names: Symbols())
        }
    }

    @Test("a chain from the executable's data follows its hops in the fixture; a failing hop is named")
    func hopsInTheFixture() throws {
        let fixture = try Fixture()
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        let target = try fixture.layout.value("u64")
        let data = try fixture.dataSegment(handle)
        let slot = data.end - 64
        let a = try fixture.mapForPointers()
        try fixture.storePointer(a, at: slot)
        try fixture.storePointer(target - 8, at: a + 0x18)
        let name = URL(fileURLWithPath: try #require(data.path)).lastPathComponent
        let moduleStart = try #require(try handle.memoryMap().firstRegion(named: name)).start
        let text = "\(name)+0x\(String(slot - moduleStart, radix: 16)) -> +0x18 -> +8"
        let expression = try AddressExpression.parse(text)
        #expect(try handle.resolve(expression) == target)
        #expect(try handle.read(UInt64.self, from: handle.resolve(expression)) == 0x0123_4567_89AB_CDEF)
        let trace = try handle.trace(expression)
        #expect(trace.hops.map(\.address) == [slot, a + 0x18])

        // The hole: hop 3 reads a pointer from unmapped memory.
        let hole = try fixture.layout.region("hole")
        let missing = hole.address + (try #require(hole.holeOffset))
        try fixture.storePointer(missing, at: a + 0x18)
        let broken = try AddressExpression.parse("\(text) -> +0")
        let error = try #require(throws: ProcessMemoryError.self) { try handle.resolve(broken) }
        #expect(error.code == .notFound)
        #expect(error.address == missing + 8)
        #expect(error.message.contains("hop 3 of 3"), "\(error.message)")
        #expect(error.message.contains("could not be read"))

        let unknown = try #require(throws: ProcessMemoryError.self) {
            try handle.resolve(try AddressExpression.parse("no-such-module.so -> +0"))
        }
        #expect(unknown.code == .notFound)
        #expect(unknown.message.contains("no region named no-such-module.so"))
    }
}
