import ProcessMemoryCore

/// A cheat table: named values of a program, each at an address expression that is resolved again
/// whenever it is used, so a table made before a restart works after it under ASLR.
///
/// The file is a small, strict subset of TOML that people read and diff, one `[[entry]]` per value:
///
/// ```toml
/// # procmem cheat table
/// version = 1
///
/// [[entry]]
/// name = "health"
/// address = "game+0x4078 -> +0x18 -> +0x0"
/// type = "i32"
/// description = "the player's health"
/// freeze = "999"
/// ```
///
/// `address` is any ADDRESS: `0x…`, `REGION+OFFSET`, a pointer chain, a symbol (`game!g_world -> +0x18`).
/// `type` is a ``ValueType``; `description` and `freeze` are optional. Pure: parsing and encoding
/// make no system call (``CheatTable/init(contentsOf:)`` and ``CheatTable/save(to:)`` read and write files).
public struct CheatTable: Sendable, Hashable {
    /// One named value.
    public struct Entry: Sendable, Hashable {
        /// The entry's name, unique in its table.
        public var name: String
        /// The address as written.
        public var address: String
        /// The parsed address.
        public var expression: AddressExpression
        /// The value's type.
        public var type: ValueType
        /// What the value is, for people.
        public var description: String?
        /// The value `freeze` and `apply` write, as text of ``type``.
        public var freeze: String?

        /// Creates an entry, checking the address and the freeze value.
        ///
        /// - Throws: ``CheatTable/Failure`` (line 0) naming what is wrong.
        public init(name: String, address: String, type: ValueType, description: String? = nil,
                    freeze: String? = nil) throws(CheatTable.Failure) {
            self.name = name
            self.address = address
            self.type = type
            self.description = description
            self.freeze = freeze
            do throws(AddressExpression.Failure) {
                expression = try AddressExpression.parse(address)
            } catch {
                throw Failure(line: 0, message: "entry '\(name)': invalid address '\(address)': \(error.message)")
            }
            if let freeze {
                do throws(ValueType.EncodingFailure) {
                    _ = try type.encode(freeze)
                } catch {
                    throw Failure(line: 0, message: "entry '\(name)': freeze value: \(error.description)")
                }
            }
        }

        /// The bytes ``freeze`` stands for (`nil` without one). For ``ValueType/cstring`` the text
        /// without a NUL, so the string is changed in place.
        public var freezeBytes: [UInt8]? {
            guard let freeze else { return nil }
            if type == .cstring { return Array(freeze.utf8) }
            return try? type.encode(freeze)
        }
    }

    /// Why a table file was rejected: the line (1-based; 0 when not tied to a line) and a message.
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        /// The line, counting from 1.
        public var line: Int
        /// What is wrong.
        public var message: String
        /// `line N: message`.
        public var description: String { line > 0 ? "line \(line): \(message)" : message }
    }

    /// The entries, in file order.
    public var entries: [Entry]

    /// A table of `entries`.
    public init(entries: [Entry] = []) {
        self.entries = entries
    }

    /// The entry named `name`.
    public func entry(named name: String) -> Entry? { entries.first { $0.name == name } }

    /// The table's text, which ``init(parsing:)`` reads back to the same table.
    public var text: String {
        var out = "# procmem cheat table: procmem table show|watch|freeze|apply PID FILE\nversion = 1\n"
        for entry in entries {
            out += "\n[[entry]]\n"
            out += "name = \(Self.quoted(entry.name))\n"
            out += "address = \(Self.quoted(entry.address))\n"
            out += "type = \(Self.quoted(entry.type.rawValue))\n"
            if let description = entry.description { out += "description = \(Self.quoted(description))\n" }
            if let freeze = entry.freeze { out += "freeze = \(Self.quoted(freeze))\n" }
        }
        return out
    }

    /// A TOML basic string: quotes, backslashes and control characters escaped.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
