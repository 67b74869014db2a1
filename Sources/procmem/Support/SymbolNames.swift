import ProcessMemory
import ProcessMemorySymbols

/// Names in ADDRESS expressions that no mapped region has, looked up as symbols: `g_world`,
/// `libc.so.6!malloc`, `main+0x10` (inside chains too). The process's modules are read only when
/// an expression first names something that is not a region.
final class SymbolNames: AddressNameResolver {
    private let handle: ProcessHandle
    private var symbolizer: Symbolizer?

    init(handle: ProcessHandle) {
        self.handle = handle
    }

    func address(of name: String, in map: MemoryMap) -> UInt64? {
        if symbolizer == nil { symbolizer = try? Symbolizer(handle: handle) }
        return try? symbolizer?.address(of: name)
    }
}
