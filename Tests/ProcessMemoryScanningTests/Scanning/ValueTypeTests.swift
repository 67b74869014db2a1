import Testing
import ProcessMemoryCore
import ProcessMemoryScanning

@Suite("Typed values") struct ValueTypeTests {
    @Test("text encodes to native-order bytes and formats back", arguments: [
        (ValueType.u8, "255", "255", "0xff"), (.i8, "-1", "-1", "0xff"), (.i16, "-2", "-2", "0xfffe"),
        (.u32, "3735928559", "3735928559", "0xdeadbeef"), (.i32, "0xfffffffb", "-5", "0xfffffffb"),
        (.u64, "1_000", "1000", "0x00000000000003e8"), (.f32, "3.25", "3.25", "3.25"), (.f64, "-2.5e10", "-25000000000.0", "-25000000000.0"),
    ])
    func roundTrip(type: ValueType, input: String, decimal: String, hex: String) throws {
        let bytes = try type.encode(input)
        #expect(bytes.count == type.size)
        #expect(type.format(bytes, hex: false) == decimal)
        #expect(type.format(bytes, hex: true) == hex)
    }

    @Test("out-of-range and malformed text is refused with the type's range")
    func refusals() {
        for (type, input) in [(ValueType.u8, "256"), (.u16, "-1"), (.i8, "128"), (.i8, "-129"), (.u32, "12abc"), (.f32, "x")] {
            let failure = #expect(throws: ValueType.EncodingFailure.self) { try type.encode(input) }
            #expect(failure?.description.contains(input) == true)
        }
        #expect(ValueType.u32.format([1, 2], hex: false) == "?")
        #expect(ValueType.cstring.decode([0]) == nil)
    }

    @Test("a cstring is the exact UTF-8 bytes and one NUL")
    func cstring() throws {
        #expect(try ValueType.cstring.encode("hé") == [0x68, 0xC3, 0xA9, 0])
    }

    @Test("the scanner's fixed-width types are the core's")
    func scanTypes() {
        for type in ScanValueType.allCases {
            // The same type by name: the switch in ScanValueType.valueType misses none.
            #expect(type.valueType == ValueType(rawValue: type.rawValue))
            #expect(type.width == type.valueType?.size)
            #expect(type.isSigned == (type.valueType?.isSigned ?? false))
        }
        #expect(ScanValueType.anyInt.valueType == nil)
    }
}
