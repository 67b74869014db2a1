/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as `.gnu_debuglink` uses it (gdb's
/// `gnu_debuglink_crc32`, zlib's `crc32`). Table-driven, eight bytes a step (slicing-by-8), since
/// it runs over whole debug files.
public enum CRC32 {
    static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for index in 0..<256 {
            var value = UInt32(index)
            for _ in 0..<8 { value = value & 1 == 1 ? (value >> 1) ^ 0xEDB8_8320 : value >> 1 }
            tables[index] = value
        }
        for index in 0..<256 {
            for slice in 1..<8 {
                let previous = tables[(slice - 1) * 256 + index]
                tables[slice * 256 + index] = (previous >> 8) ^ tables[Int(previous & 0xff)]
            }
        }
        return tables
    }()

    /// The CRC of `bytes`, continuing from `crc` (0 to start).
    public static func checksum(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: crc) }
    }

    /// The CRC of `bytes`, continuing from `crc` (0 to start).
    public static func checksum(_ bytes: ArraySlice<UInt8>, continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: crc) }
    }

    /// The CRC of the bytes in `buffer`, continuing from `crc` (0 to start).
    public static func checksum(_ buffer: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        var value = ~crc
        tables.withUnsafeBufferPointer { t in
            var index = 0
            let count = buffer.count
            while index + 8 <= count {
                let low = value ^ (UInt32(buffer[index]) | UInt32(buffer[index + 1]) << 8
                                   | UInt32(buffer[index + 2]) << 16 | UInt32(buffer[index + 3]) << 24)
                value = t[7 * 256 + Int(low & 0xff)] ^ t[6 * 256 + Int((low >> 8) & 0xff)]
                    ^ t[5 * 256 + Int((low >> 16) & 0xff)] ^ t[4 * 256 + Int(low >> 24)]
                    ^ t[3 * 256 + Int(buffer[index + 4])] ^ t[2 * 256 + Int(buffer[index + 5])]
                    ^ t[1 * 256 + Int(buffer[index + 6])] ^ t[Int(buffer[index + 7])]
                index += 8
            }
            while index < count {
                value = t[Int((value ^ UInt32(buffer[index])) & 0xff)] ^ (value >> 8)
                index += 1
            }
        }
        return ~value
    }
}
