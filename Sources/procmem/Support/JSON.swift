import Foundation

/// The one encoder behind every `--json` output: compact, keys sorted (JSONEncoder does not keep
/// the order in which a value encodes its keys, so sorting is what keeps the output byte-for-byte
/// stable), `/` unescaped so paths read as they are.
enum JSONOutput {
    /// A new encoder with procmem's settings.
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// `value` as one line of JSON.
    static func text(_ value: some Encodable) -> String {
        do {
            return String(decoding: try encoder().encode(value), as: UTF8.self)
        } catch {
            // Only a non-finite Double can fail, and JSON renders those as null.
            return "null"
        }
    }
}

/// A value whose JSON type is known only at run time: a typed value's number or `"0x…"` string
/// (`read --as`, `watch`, scan matches), null, or a typed report such as an ``ErrorReport``. Each
/// command's output is an `Encodable` report type that holds these where its documented shape
/// says "a number or a string".
enum JSON: Sendable, Encodable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    /// A floating-point number; `null` when not finite.
    case double(Double)
    case string(String)
    /// A typed `Encodable` value, such as an ``ErrorReport``.
    case encoded(any Encodable & Sendable)

    func encode(to encoder: any Encoder) throws {
        if case .encoded(let value) = self {
            try value.encode(to: encoder)
            return
        }
        var container = encoder.singleValueContainer()
        switch self {
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .uint(let value): try container.encode(value)
        case .double(let value) where value.isFinite: try container.encode(value)
        case .string(let value): try container.encode(value)
        default: try container.encodeNil()
        }
    }
}

/// Quoting for text (not JSON) output: strings shown the way JSON writes them.
extension JSON {
    /// Appends `text` as a JSON string literal (control characters as `\uXXXX`).
    static func escape(_ text: String, into out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let digits = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    /// `text` as a JSON string literal.
    static func quoted(_ text: String) -> String {
        var out = ""
        escape(text, into: &out)
        return out
    }
}
