// libFuzzer harness for the cheat-table reader (procmem table, a session's save): any bytes, no
// trap; a table that parses prints back to text that parses to the same table.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheatTable(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let table = try? CheatTable(parsing: bytes) else { return 0 }
    for entry in table.entries { _ = entry.freezeBytes }
    guard let again = try? CheatTable(parsing: Array(table.text.utf8)), again == table else {
        fatalError("a parsed table does not read back from its own text")
    }
    return 0
}
