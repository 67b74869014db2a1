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

/// A JSON value built by a command, encoded by ``JSONOutput``'s encoder; nil and non-finite
/// numbers are `null`, never left out.
enum JSON: Sendable, Encodable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    /// A floating-point number; `null` when not finite.
    case double(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])
    /// A typed `Encodable` value inside a tree, such as an ``ErrorReport``.
    case encoded(any Encodable & Sendable)

    /// `"0x…"` for an address.
    static func hex(_ value: UInt64) -> JSON { .string(Format.hex(value)) }

    /// `.null` when `value` is nil.
    static func optional<T>(_ value: T?, _ make: (T) -> JSON) -> JSON { value.map(make) ?? .null }

    /// The encoded text, one line.
    var text: String { JSONOutput.text(self) }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: any Encoder) throws {
        switch self {
        case .array(let items):
            var container = encoder.unkeyedContainer()
            for item in items { try container.encode(item) }
        case .object(let pairs):
            var container = encoder.container(keyedBy: Key.self)
            for (key, value) in pairs { try container.encode(value, forKey: Key(stringValue: key)) }
        case .encoded(let value):
            try value.encode(to: encoder)
        default:
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

    // MARK: text output

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
