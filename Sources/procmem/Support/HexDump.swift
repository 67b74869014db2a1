/// xxd-style hexdump lines: `00007f1234560000: 4865 6c6c 6f20 776f 726c 6400 0000 0000  Hello world.....`.
///
/// Sixteen bytes per line in groups of two; the address column is the absolute address of the
/// line's first byte (16 hex digits); non-printable bytes show as `.` in the text column. A short
/// last line is padded so its text column lines up.
enum HexDump {
    static let bytesPerLine = 16

    /// The lines for `bytes`, which were read at `address`.
    static func lines(_ bytes: some Collection<UInt8>, address: UInt64) -> [String] {
        var result: [String] = []
        result.reserveCapacity((bytes.count + bytesPerLine - 1) / bytesPerLine)
        var lineAddress = address
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let end = bytes.index(index, offsetBy: bytesPerLine, limitedBy: bytes.endIndex) ?? bytes.endIndex
            result.append(line(bytes[index..<end], address: lineAddress))
            lineAddress &+= UInt64(bytesPerLine)
            index = end
        }
        return result
    }

    /// One line for up to 16 bytes at `address`.
    static func line(_ bytes: some Collection<UInt8>, address: UInt64) -> String {
        var hexColumn = ""
        var textColumn = ""
        for (position, byte) in bytes.enumerated() {
            if position > 0 && position % 2 == 0 { hexColumn += " " }
            hexColumn += Format.paddedHex(UInt64(byte), width: 2)
            textColumn.unicodeScalars.append(byte >= 0x20 && byte < 0x7F ? Unicode.Scalar(byte) : ".")
        }
        let fullWidth = bytesPerLine * 2 + bytesPerLine / 2 - 1
        return Format.paddedHex(address, width: 16) + ": " + Format.left(hexColumn, fullWidth) + "  " + textColumn
    }
}
