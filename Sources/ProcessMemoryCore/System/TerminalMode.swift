import Glibc
import SystemPackage

/// A terminal's line discipline, for procmem's interactive session: whether a descriptor is a
/// terminal (`isatty(3)`), and raw input (no echo, no canonical lines, no signals from keys) while
/// a line is edited, restored afterwards (`tcgetattr(3)`/`tcsetattr(3)`, `TCSADRAIN`).
package struct TerminalMode {
    private var saved: termios
    /// The descriptor whose mode was changed.
    package let fd: CInt

    /// Whether `fd` is a terminal.
    package static func isTerminal(_ fd: CInt) -> Bool { isatty(fd) == 1 }

    /// Puts `fd` in raw mode (character at a time, no echo, Ctrl-C and Ctrl-Z as bytes, output
    /// processing kept so `\n` still starts a line); `nil` when it is not a terminal or refuses.
    package static func raw(_ fd: CInt) -> TerminalMode? {
        var original = termios()
        guard case .success = valueOrErrno({ tcgetattr(fd, &original) }) else { return nil }
        var raw = original
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL | BRKINT | INPCK | ISTRIP)
        raw.c_cflag |= tcflag_t(CS8)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        guard case .success = valueOrErrno({ tcsetattr(fd, TCSADRAIN, &raw) }) else { return nil }
        return TerminalMode(saved: original, fd: fd)
    }

    /// Restores the mode found by ``raw(_:)``.
    package func restore() {
        var original = saved
        _ = valueOrErrno { tcsetattr(fd, TCSADRAIN, &original) }
    }

    /// The terminal's width in columns (`ioctl(TIOCGWINSZ)`), 80 when unknown.
    package static func columns(_ fd: CInt) -> Int {
        var size = winsize()
        guard case .success = valueOrErrno({ ioctl(fd, UInt(TIOCGWINSZ), &size) }), size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }
}
