import Foundation
import Glibc
import ProcessMemoryTestSupport
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryScanning

/// Ignore-case strings beyond ASCII: simple case folding per scalar in UTF-8 and UTF-16LE, on
/// buffers and in the fixture's memory.
@Suite("Case folding")
struct CaseFoldingTests {
    func encode(_ text: String, utf16: Bool) -> [UInt8] {
        utf16 ? text.utf16.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8($0 >> 8)] } : Array(text.utf8)
    }

    /// Offsets where `pattern` matches in `haystack` (with filler around it).
    func find(_ pattern: String, in haystack: String, utf16: Bool = false, ignoreCase: Bool = true) -> [Int] {
        let compiled = BytePattern(string: pattern, utf16: utf16, ignoreCase: ignoreCase)
        let bytes = [UInt8](repeating: 0x2E, count: 3) + encode(haystack, utf16: utf16) + [0x2E, 0x2E]
        var hits: [Int] = []
        bytes.withUnsafeBytes { raw in
            let starts = raw.count - compiled.count + 1
            if starts > 0 { compiled.forEachMatch(in: raw, starts: starts, address: 0, alignment: 1) { hits.append($0 - 3); return true } }
        }
        return hits
    }

    @Test("letters of other scripts match in any case, in UTF-8 and UTF-16LE", arguments: [false, true])
    func scripts(utf16: Bool) {
        #expect(find("é", in: "É", utf16: utf16) == [0])
        #expect(find("ÉCOLE", in: "école", utf16: utf16) == [0])
        #expect(find("Ж", in: "ж", utf16: utf16) == [0])
        #expect(find("журнал", in: "ЖУРНАЛ", utf16: utf16) == [0])
        // Greek sigma: capital, medial and final forms are one letter.
        #expect(find("ΣΟΦΌΣ", in: "σοφός", utf16: utf16) == [0])
        #expect(find("σ", in: "ΣσςX", utf16: utf16).count == 3)
        #expect(find("ς", in: "Σ", utf16: utf16) == [0])
        // Title case: Dž, DŽ and dž.
        #expect(find("ǅ", in: "Ǆǆ", utf16: utf16).count == 2)
        // Case matters without ignoreCase.
        #expect(find("é", in: "É", utf16: utf16, ignoreCase: false).isEmpty)
        // Full folding changes the length: out of scope.
        #expect(find("straße", in: "STRASSE", utf16: utf16).isEmpty)
        // Turkic dotless i folds only to itself.
        #expect(find("i", in: "ı", utf16: utf16).isEmpty)
        // A letter among others: only the letter is free.
        #expect(find("ÀB", in: "àb àc", utf16: utf16) == [0])
    }

    @Test("variants of another encoded length match only where the length is the same")
    func lengths() {
        // Kelvin sign (U+212A) is 3 bytes in UTF-8 but one unit in UTF-16, like k.
        #expect(find("k", in: "\u{212A}").isEmpty)
        #expect(find("k", in: "\u{212A}", utf16: true) == [0])
        #expect(find("\u{212A}", in: "kK", utf16: true).count == 2)
        // Capital sharp s (3 bytes in UTF-8) and ß (2 bytes): one unit each in UTF-16.
        #expect(find("ß", in: "ẞ").isEmpty)
        #expect(find("ß", in: "ẞ", utf16: true) == [0])
        // Deseret: 4 bytes and a surrogate pair in either case.
        #expect(find("𐐀", in: "𐐨") == [0])
        #expect(find("𐐀", in: "𐐨", utf16: true) == [0])
    }

    @Test("UTF-16: only ASCII code units fold as ASCII (с U+0441 is not ѡ U+0461)")
    func utf16LowBytes() {
        #expect(find("с", in: "ѡ", utf16: true).isEmpty)
        #expect(find("с", in: "С", utf16: true) == [0])
    }

    @Test("candidates: memchr on one known byte when there is one, else a table of a letter's first bytes")
    func anchors() {
        let ascii = BytePattern(string: "Hello, World", ignoreCase: true)
        #expect(ascii.anchorValues.count == 1)
        #expect(ascii.variants.isEmpty)
        let cyrillic = BytePattern(string: "Жук", ignoreCase: true)
        #expect(cyrillic.anchorValues == [0xD0])  // Ж and ж share their first byte
        let sigma = BytePattern(string: "Σ", ignoreCase: true)
        #expect(Set(sigma.anchorValues) == [0xCE, 0xCF])
        #expect(sigma.anchor == 0)
        let letters = BytePattern(string: "abc", ignoreCase: true)
        #expect(letters.anchorValues.count == 2)
    }

    @Test("the fixture: one string in UTF-8 and UTF-16LE, found in another case")
    func fixture() throws {
        let fixture = try Fixture()
        let reply = try fixture.ok("map 8192")
        let base = UInt64(try #require(reply["address"] as? Int))
        let text = "Ünïcode ЖУРНАЛ Σίσυφος"
        let hex = { (bytes: [UInt8]) in bytes.map { String(format: "%02x", $0) }.joined() }
        try fixture.ok("write \(base + 100) \(hex(encode(text, utf16: false)))")
        try fixture.ok("write \(base + 4090) \(hex(encode(text, utf16: true)))")  // across a page boundary
        let handle = try ProcessHandle(pid: fixture.pid)
        defer { handle.close() }
        var options = ScanOptions(chunkSize: 4096)
        options.regions.addressRange = base..<(base + 8192)
        let scanner = ProcessMemoryScanning.Scanner(handle: handle, options: options)
        let query = "üNÏCODE журнал ΣΊΣΥΦΟΣ"
        let utf8 = try scanner.scan(.pattern(BytePattern(string: query, ignoreCase: true)))
        #expect(utf8.matches.matches.map(\.address) == [base + 100])
        let wide = try scanner.scan(.pattern(BytePattern(string: query, utf16: true, ignoreCase: true)))
        #expect(wide.matches.matches.map(\.address) == [base + 4090])
        // The set records the string: it still matches after the case changes again.
        try fixture.ok("write \(base + 100) \(hex(encode("ÜNÏCODE", utf16: false)))")
        let again = try scanner.rescan(utf8.matches, where: .matches(try #require(utf8.matches.pattern)))
        #expect(again.matches.matches.map(\.address) == [base + 100])
    }
}
