import Glibc

// Small wrappers over Glibc used by the layout and the command loop.

struct FixtureError: Error {
    let message: String
    var code: Int32? = nil
}

/// Prints `procmem-fixture: message` on stderr, removes the temp file and exits with status 2.
func die(_ message: String) -> Never {
    writeAll(2, "procmem-fixture: \(message)\n")
    cleanupTempFile()
    exit(2)
}

func errnoText(_ code: Int32) -> String { String(cString: strerror(code)) }

/// "what: strerror(errno)" for the current errno.
func failure(_ what: String) -> FixtureError {
    let code = errno
    return FixtureError(message: "\(what): \(errnoText(code))", code: code)
}

/// write(2) until done; false on error (EINTR retried).
@discardableResult
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var offset = 0
    while offset < bytes.count {
        let n = write(fd, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
        if n < 0 {
            if errno == EINTR { continue }
            return false
        }
        offset += n
    }
    return true
}

@discardableResult
func writeAll(_ fd: Int32, _ text: String) -> Bool {
    var copy = text
    return copy.withUTF8 { writeAll(fd, UnsafeRawBufferPointer($0)) }
}

/// Writes one JSON line on stdout; if stdout is gone, cleans up and exits.
func emit(_ json: JSON) {
    if !writeAll(1, json.text + "\n") {
        cleanupTempFile()
        _exit(0)
    }
}

/// "0x..." hex or decimal.
func parseNumber<S: StringProtocol>(_ text: S) -> UInt64? {
    guard let first = text.first, first != "+", first != "-" else { return nil }
    if text.hasPrefix("0x") || text.hasPrefix("0X") {
        let digits = text.dropFirst(2)
        guard let f = digits.first, f != "+", f != "-" else { return nil }
        return UInt64(digits, radix: 16)
    }
    return UInt64(text, radix: 10)
}

/// "rw-", "r--", "---", "r-x", "rwx" (an optional 4th char p/s is ignored) to PROT_* bits.
func parsePerms<S: StringProtocol>(_ text: S) -> Int32? {
    let chars = Array(text)
    guard chars.count == 3 || (chars.count == 4 && (chars[3] == "p" || chars[3] == "s")) else { return nil }
    var prot: Int32 = PROT_NONE
    switch chars[0] { case "r": prot |= PROT_READ; case "-": break; default: return nil }
    switch chars[1] { case "w": prot |= PROT_WRITE; case "-": break; default: return nil }
    switch chars[2] { case "x": prot |= PROT_EXEC; case "-": break; default: return nil }
    return prot
}

private let hexDigitBytes: [UInt8] = Array("0123456789abcdef".utf8)

func hexString(_ bytes: UnsafeRawBufferPointer) -> String {
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for b in bytes {
        out.append(hexDigitBytes[Int(b >> 4)])
        out.append(hexDigitBytes[Int(b & 0xF)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Even-length hex string to bytes.
func parseHex<S: StringProtocol>(_ text: S) -> [UInt8]? {
    let utf8 = Array(text.utf8)
    guard utf8.count % 2 == 0 else { return nil }
    func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
    var out = [UInt8]()
    out.reserveCapacity(utf8.count / 2)
    var i = 0
    while i < utf8.count {
        guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
        out.append(hi << 4 | lo)
        i += 2
    }
    return out
}

/// Array of strdup'ed C strings followed by nil, for execv. Never freed on the exec path.
func makeCArgv(_ strings: [String]) -> [UnsafeMutablePointer<CChar>?] {
    strings.map { strdup($0) } + [nil]
}

func freeCArgv(_ argv: [UnsafeMutablePointer<CChar>?]) {
    for p in argv { free(p) }
}

// MARK: - Temp file cleanup (also from signal handlers, hence a C string kept in a global)

nonisolated(unsafe) private var tempFilePath: UnsafeMutablePointer<CChar>? = nil

func registerTempFile(_ path: String) {
    tempFilePath = strdup(path)
}

func cleanupTempFile() {
    if let p = tempFilePath {
        unlink(p)
        tempFilePath = nil
        free(p)
    }
}

/// SIGCHLD ignored (children reaped by the kernel), SIGPIPE ignored (write errors instead),
/// and SIGTERM/SIGINT/SIGHUP remove the temp file before dying.
func installSignalHandlers() {
    _ = tempFilePath  // make sure the global is initialised before a handler can touch it
    signal(SIGCHLD, SIG_IGN)
    signal(SIGPIPE, SIG_IGN)
    for sig in [SIGTERM, SIGINT, SIGHUP] {
        signal(sig) { sig in
            if let p = tempFilePath { unlink(p) }
            _exit(128 + sig)
        }
    }
}

/// Back to default dispositions: before exec, and in forked children that must not touch the temp file.
func resetSignalHandlers() {
    for sig in [SIGCHLD, SIGPIPE, SIGTERM, SIGINT, SIGHUP] {
        signal(sig, SIG_DFL)
    }
}
