import Testing
import ProcessMemoryCore
import ProcessMemorySymbols

@Suite struct SymbolExpressionTests {
    @Test("SYMBOL, MODULE!SYMBOL and either with an offset parse into their parts")
    func parses() throws {
        let plain = try SymbolExpression.parse("g_world")
        #expect(plain.module == nil && plain.name == "g_world" && plain.offset == 0)
        let full = try SymbolExpression.parse("libc.so.6!malloc+0x10")
        #expect(full.module == "libc.so.6" && full.name == "malloc" && full.offset == 16 && !full.isNegative)
        let negative = try SymbolExpression.parse("main_arena-8")
        #expect(negative.name == "main_arena" && negative.offset == 8 && negative.isNegative)
        // A name with a dash and no number after it stays whole.
        #expect(try SymbolExpression.parse("foo-bar").name == "foo-bar")
    }

    @Test("Text that names no symbol is a malformedName error", arguments: ["", "!x", "libc!", "+0x10", "a b", "m!a!b"])
    func refuses(text: String) {
        #expect(Self.code(text) == .malformedName)
    }

    static func code(_ text: String) -> SymbolError.Code? {
        do {
            _ = try SymbolExpression.parse(text)
            return nil
        } catch {
            return error.code
        }
    }
}
