import ProcessMemory
import SystemPackage

/// The session's line input: on a terminal, a small line editor with history; otherwise plain
/// lines from standard input (a pipe or a file), with no prompt.
///
/// Hand-written on purpose: the machine and CI have no libedit headers (`histedit.h`), GNU
/// readline is GPL, and no line-editing Swift package is available to this build, so this file
/// does the few things a prompt needs, in raw mode (``TerminalMode``): left/right, Home/End
/// (and Ctrl-A/Ctrl-E), Backspace/Delete, Up/Down through the history, Ctrl-U (kill to start),
/// Ctrl-K (kill to end), Ctrl-W (kill a word), Ctrl-L (redraw), Ctrl-C (drop the line),
/// Ctrl-D (end on an empty line). It assumes one column per character.
final class SessionLineEditor {
    private let input = FileDescriptor.standardInput
    /// Whether standard input is a terminal (then prompts are shown and keys edited).
    let interactive: Bool
    private var history: [String] = []
    private var pending: [UInt8] = []
    private var atEnd = false
    /// History entries kept at most.
    let historyLimit = 500

    init() {
        interactive = TerminalMode.isTerminal(0) && TerminalMode.isTerminal(1)
    }

    /// The next line, `nil` at end of input.
    func readLine(prompt: String) -> String? {
        guard interactive, let mode = TerminalMode.raw(0) else { return plainLine() }
        defer { mode.restore() }
        let line = editLine(prompt: prompt)
        if let line, !line.trimmingWhitespace.isEmpty, history.last != line {
            history.append(line)
            if history.count > historyLimit { history.removeFirst() }
        }
        return line
    }

    /// A line from a pipe or file: bytes up to a newline (a last line without one counts).
    private func plainLine() -> String? {
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(pending[..<newline])
                pending.removeSubrange(...newline)
                return String(decoding: line, as: UTF8.self)
            }
            if atEnd {
                guard !pending.isEmpty else { return nil }
                defer { pending.removeAll() }
                return String(decoding: pending, as: UTF8.self)
            }
            guard let chunk = readBytes(4096) else {
                atEnd = true
                continue
            }
            pending += chunk
            if pending.count > 1 << 20 {
                // A "line" of a megabyte is not a command: hand it over so the parser rejects it.
                defer { pending.removeAll() }
                return String(decoding: pending, as: UTF8.self)
            }
        }
    }

    /// Up to `count` bytes, `nil` at end of input or on an error.
    private func readBytes(_ count: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        let result = buffer.withUnsafeMutableBytes { raw -> Result<Int, Errno> in
            guard let base = raw.baseAddress else { return .success(0) }
            return input.readSome(base, raw.count)
        }
        guard case .success(let n) = result, n > 0 else { return nil }
        return Array(buffer[..<n])
    }

    private func nextByte() -> UInt8? {
        if pending.isEmpty {
            guard let bytes = readBytes(256) else { return nil }
            pending = bytes
        }
        return pending.removeFirst()
    }

    private func editLine(prompt: String) -> String? {
        var line: [Character] = []
        var cursor = 0
        var historyIndex = history.count
        var draft: [Character] = []
        var utf8: [UInt8] = []

        func redraw() {
            let tail = line.count - cursor
            var text = "\r" + prompt + String(line) + "\u{1b}[K"
            if tail > 0 { text += "\u{1b}[\(tail)D" }
            Output.out(text)
        }
        func show(_ entry: [Character]) {
            line = entry
            cursor = line.count
            redraw()
        }

        Output.out(prompt)
        while true {
            guard let byte = nextByte() else {
                Output.out("\n")
                return line.isEmpty ? nil : String(line)
            }
            switch byte {
            case 0x0D, 0x0A:
                Output.out("\r\n")
                return String(line)
            case 0x01: cursor = 0; redraw()
            case 0x05: cursor = line.count; redraw()
            case 0x02: if cursor > 0 { cursor -= 1; redraw() }
            case 0x06: if cursor < line.count { cursor += 1; redraw() }
            case 0x03:
                Output.out("^C\r\n")
                return ""
            case 0x04:
                if line.isEmpty {
                    Output.out("\r\n")
                    return nil
                }
                if cursor < line.count { line.remove(at: cursor); redraw() }
            case 0x7F, 0x08:
                if cursor > 0 {
                    line.remove(at: cursor - 1)
                    cursor -= 1
                    redraw()
                }
            case 0x15:
                line.removeSubrange(0..<cursor)
                cursor = 0
                redraw()
            case 0x0B:
                line.removeSubrange(cursor...)
                redraw()
            case 0x17:
                var start = cursor
                while start > 0 && line[start - 1] == " " { start -= 1 }
                while start > 0 && line[start - 1] != " " { start -= 1 }
                line.removeSubrange(start..<cursor)
                cursor = start
                redraw()
            case 0x0C:
                Output.out("\u{1b}[H\u{1b}[2J")
                redraw()
            case 0x1B:
                guard let kind = nextByte() else { continue }
                guard kind == UInt8(ascii: "[") || kind == UInt8(ascii: "O") else { continue }
                var code: [UInt8] = []
                while let next = nextByte() {
                    code.append(next)
                    if (0x40...0x7E).contains(next) || code.count > 8 { break }
                }
                switch String(decoding: code, as: UTF8.self) {
                case "A":
                    guard historyIndex > 0 else { continue }
                    if historyIndex == history.count { draft = line }
                    historyIndex -= 1
                    show(Array(history[historyIndex]))
                case "B":
                    guard historyIndex < history.count else { continue }
                    historyIndex += 1
                    show(historyIndex == history.count ? draft : Array(history[historyIndex]))
                case "C": if cursor < line.count { cursor += 1; redraw() }
                case "D": if cursor > 0 { cursor -= 1; redraw() }
                case "H", "1~", "7~": cursor = 0; redraw()
                case "F", "4~", "8~": cursor = line.count; redraw()
                case "3~": if cursor < line.count { line.remove(at: cursor); redraw() }
                default: break
                }
            default:
                guard byte >= 0x20 else { continue }
                utf8.append(byte)
                // A character is inserted once its UTF-8 sequence is whole.
                let expected = utf8[0] < 0x80 ? 1 : utf8[0] >= 0xF0 ? 4 : utf8[0] >= 0xE0 ? 3 : 2
                guard utf8.count >= expected else { continue }
                let text = String(decoding: utf8, as: UTF8.self)
                utf8.removeAll()
                guard line.count < 4096 else { continue }
                for character in text {
                    line.insert(character, at: cursor)
                    cursor += 1
                }
                redraw()
            }
        }
    }
}
