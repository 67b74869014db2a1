import Foundation
import Testing

/// The ADDRESS resolver, tested as a pure function through the hidden
/// `procmem resolve-address --maps-file FILE` command (the test target links no module of procmem).
@Suite("ADDRESS expressions")
struct AddressExpressionTests {
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

    static let cases: [(String, String)] = [
        ("0x1000", "0x1000"),
        ("0X1000", "0x1000"),
        ("4096", "0x1000"),
        ("0x1_000", "0x1000"),
        (" 0x1000 ", "0x1000"),
        ("0x10+0x10", "0x20"),
        ("0x10-16", "0x0"),
        ("[heap]", "0xe03000"),
        ("[heap]+0x10", "0xe03010"),
        ("[heap]-16", "0xe02ff0"),
        ("[anon:procmem-pattern]+0x10", "0x7f0000000010"),
        ("libc.so.6+0x1000", "0x7f1000001000"),
        ("libc.so.6", "0x7f1000000000"),
        ("/lib/x86_64-linux-gnu/libc.so.6+4096", "0x7f1000001000"),
        ("dbus-daemon", "0x400000"),
        ("lib-foo-2+0", "0x7f2000000000"),
        ("lib-foo-2", "0x7f2000000000"),
        ("lib-foo-2-0x10", "0x7f1ffffffff0"),
        ("dbus-daemon-0x10", "0x3ffff0"),
        ("/opt/my app/lib-foo-2", "0x7f2000000000"),
        ("[stack]", "0x7ffc00000000"),
        ("[vdso]+1", "0x7ffc00100001"),
        ("0xZZ", "error: malformed"),
        ("12abc", "error: malformed"),
        ("18446744073709551616", "error: malformed"),
        ("", "error: malformed"),
        ("-5", "error: malformed"),
        ("[heap", "error: malformed"),
        ("[]", "error: malformed"),
        ("[heap]x", "error: malformed"),
        ("[heap]+zz", "error: malformed"),
        ("[heap]+", "error: malformed"),
        ("0x1__0", "error: malformed"),
        ("libc.so", "error: unknownRegion"),
        ("[anon:other]", "error: unknownRegion"),
        ("usr/bin/dbus-daemon", "error: unknownRegion"),
        ("0x0-1", "error: outOfRange"),
        ("0xffffffffffffffff+1", "error: outOfRange"),
        ("[heap]-0xf000000", "error: outOfRange"),
    ]

    @Test("resolves numbers and region names, and rejects bad expressions")
    func resolve() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("procmem-maps-\(UUID().uuidString)")
        try Self.maps.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try procmem(["resolve-address", "--maps-file", file.path, "--"] + Self.cases.map(\.0))
        #expect(result.status == 0)
        let lines = result.text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        try #require(lines.count == Self.cases.count, "\(result.text)\(result.stderr)")
        for (index, (input, expected)) in Self.cases.enumerated() {
            if expected.hasPrefix("error:") {
                #expect(lines[index].hasPrefix(expected + ": "), "'\(input)' gave \(lines[index])")
            } else {
                #expect(lines[index] == expected, "'\(input)' gave \(lines[index])")
            }
        }
    }
}
