import ProcessMemoryCore

/// Text to the bytes a match holds, for ``ScanSession/set(_:matches:mode:)``: pure, no system call.
enum SessionValues {
    /// `text` as a value of `type` at `width` bytes in `order`. An any-int match is written at its
    /// own width (signed when the text is negative).
    static func encode(_ text: String, type: ScanValueType, width: Int, order: ScanByteOrder,
                       pid: Int32? = nil) throws(ProcessMemoryError) -> [UInt8] {
        let valueType: ValueType
        if let fixed = type.valueType {
            valueType = fixed
        } else {
            let negative = text.trimmingSpaces.hasPrefix("-")
            switch width {
            case 1: valueType = negative ? .i8 : .u8
            case 2: valueType = negative ? .i16 : .u16
            case 4: valueType = negative ? .i32 : .u32
            default: valueType = negative ? .i64 : .u64
            }
        }
        var bytes: [UInt8]
        do throws(ValueType.EncodingFailure) {
            bytes = try valueType.encode(text)
        } catch {
            throw .invalid(error.description, pid: pid)
        }
        if order == .big { bytes.reverse() }
        return bytes
    }
}

extension String {
    var trimmingSpaces: Substring {
        var view = Substring(self)
        while let first = view.first, first.isWhitespace { view.removeFirst() }
        while let last = view.last, last.isWhitespace { view.removeLast() }
        return view
    }
}
