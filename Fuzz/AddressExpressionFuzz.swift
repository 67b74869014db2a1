// libFuzzer harness for the core's AddressExpression parser and base resolver (procmem's ADDRESS):
// any text, no trap; a parsed expression prints back to text that parses to the same expression.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAddressExpression(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let map = MemoryMap(regions: [
        MemoryRegion(start: 0x1000, end: 0x3000, permissions: [.read, .write], isShared: false, path: "[heap]"),
        MemoryRegion(start: 0x7f00_0000_0000, end: 0x7f00_0001_0000, permissions: [.read], isShared: false,
                     inode: 7, path: "/usr/lib/libc.so.6"),
        MemoryRegion(start: 0x7f00_0002_0000, end: 0x7f00_0003_0000, permissions: [.read], isShared: false,
                     inode: 8, path: "/opt/lib-foo-2"),
    ])
    if let expression = try? AddressExpression.parse(text) {
        _ = try? expression.baseAddress(in: map)
        guard let again = try? AddressExpression.parse(expression.description), again == expression else {
            fatalError("'\(text)' printed as '\(expression)', which does not parse back to it")
        }
    }
    return 0
}
