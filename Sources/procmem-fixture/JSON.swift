// A tiny JSON value with ordered keys, rendered on one line. Numbers are decimal integers; known
// values (floats included) are pre-rendered text.
enum JSON {
    case int(Int64)
    case uint(UInt64)
    case string(String)
    case bool(Bool)
    case array([JSON])
    case object([(String, JSON)])
    /// Pre-rendered JSON text (used for known values so their binary form is never materialised).
    case raw(String)

    static func address(_ value: UInt) -> JSON { .uint(UInt64(value)) }
    static func size(_ value: Int) -> JSON { .int(Int64(value)) }

    var text: String {
        var out = ""
        render(into: &out)
        return out
    }

    func render(into out: inout String) {
        switch self {
        case .int(let v): out += String(v)
        case .uint(let v): out += String(v)
        case .string(let s): JSON.escape(s, into: &out)
        case .bool(let b): out += b ? "true" : "false"
        case .raw(let text): out += text
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.render(into: &out)
            }
            out += "]"
        case .object(let pairs):
            out += "{"
            for (i, (key, value)) in pairs.enumerated() {
                if i > 0 { out += "," }
                JSON.escape(key, into: &out)
                out += ":"
                value.render(into: &out)
            }
            out += "}"
        }
    }

    static func escape(_ s: String, into out: inout String) {
        let hexDigits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let v = Int(scalar.value)
                    out += "\\u00"
                    out.append(hexDigits[v >> 4])
                    out.append(hexDigits[v & 0xF])
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

/// `{"ok":true, ...extra}`.
func okReply(_ extra: [(String, JSON)] = []) -> JSON {
    .object([("ok", .bool(true))] + extra)
}

/// `{"ok":false,"error":message[,"errno":N]}`.
func errorReply(_ message: String, errno code: Int32? = nil) -> JSON {
    var pairs: [(String, JSON)] = [("ok", .bool(false)), ("error", .string(message))]
    if let code { pairs.append(("errno", .int(Int64(code)))) }
    return .object(pairs)
}
