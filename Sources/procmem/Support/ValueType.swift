import ArgumentParser
import ProcessMemory

/// `--as TYPE` is the library's ``ValueType``; the CLI adds only argument parsing and JSON output.
extension ValueType: ExpressibleByArgument {
    /// The value in `bytes` as JSON: a number (integers exactly, floats in shortest form; `null` for
    /// nan and infinities), or a `"0x…"` string when `hex` is set.
    func json(_ bytes: [UInt8], hex: Bool) -> JSON {
        if hex && isInteger { return .string(format(bytes, hex: true)) }
        switch decode(bytes) {
        case .unsigned(let value): return .uint(value)
        case .signed(let value): return .int(value)
        case .floatingPoint(let value): return .double(value)
        case nil: return .null
        }
    }
}
