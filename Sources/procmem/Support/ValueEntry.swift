import ArgumentParser
import ProcessMemory

/// One `--entry` of `watch` (`TYPE:ADDRESS`) or `freeze` (`TYPE:ADDRESS=VALUE`): each entry has
/// its own type and, for freeze, its own value. ADDRESS is any ADDRESS, a pointer chain included.
struct ValueEntry: Sendable {
    var type: ValueType
    var address: AddressArgument
    var value: String?

    /// Parses `u32:[heap]+0x10` or, with `value` set, `i32:game+0x40 -> +0x8=-5` (the value follows
    /// the last `=`).
    static func parse(_ text: String, withValue: Bool) throws -> ValueEntry {
        let form = withValue ? "TYPE:ADDRESS=VALUE" : "TYPE:ADDRESS"
        guard let colon = text.firstIndex(of: ":"), let type = ValueType(rawValue: String(text[..<colon])) else {
            throw ValidationError("--entry '\(text)' does not start with a type (write \(form), such as u32:[heap]+0x10\(withValue ? "=100" : ""))")
        }
        var rest = String(text[text.index(after: colon)...])
        var value: String?
        if withValue {
            guard let equals = rest.lastIndex(of: "=") else {
                throw ValidationError("--entry '\(text)' has no =VALUE (write \(form))")
            }
            value = String(rest[rest.index(after: equals)...])
            rest = String(rest[..<equals])
        }
        return ValueEntry(type: type, address: try AddressArgument.parse(rest), value: value)
    }
}
