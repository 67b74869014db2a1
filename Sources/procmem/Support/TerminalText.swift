/// Text from a target or a file (mapping paths, command lines, paths saved in match files) made
/// safe for a terminal (issue 16): a name holding ESC, OSC, BEL, CR or a newline could retitle the
/// terminal, hide output or fake a table row. `--json` output escapes them already.
extension Format {
    /// `text` with every control character (C0, DEL, C1) and the backslash escaped: `\n`, `\r`,
    /// `\t`, `\e`, `\\`, else `\xNN` (C1 as `\u{NN}`). Printable text, UTF-8 included, is unchanged.
    static func printable(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { needsEscape($0) }) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar) else {
                out.unicodeScalars.append(scalar)
                continue
            }
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{1b}": out += "\\e"
            case "\\": out += "\\\\"
            default:
                out += scalar.value < 0x80 ? "\\x" + paddedHex(UInt64(scalar.value), width: 2)
                                           : "\\u{" + String(scalar.value, radix: 16) + "}"
            }
        }
        return out
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || scalar.value == 0x7f || (0x80...0x9f).contains(scalar.value) || scalar == "\\"
    }
}
