import Foundation
import ProcessMemoryTestSupport
import Testing

@Suite("procmem write")
struct WriteTests {
    @Test("--value 42 --as u32, then read it back")
    func writeValue() throws {
        try withFixture { fixture in
            let address = hex(try fixture.layout.value("u32"))
            let write = try procmem("write", fixture.pidArgument, address, "--value", "42", "--as", "u32")
            #expect(write.status == 0)
            #expect(write.text == "wrote 4 bytes at \(address)\n")
            let read = try procmem("read", fixture.pidArgument, address, "--as", "u32")
            #expect(read.lines == ["\(address): 42"])
        }
    }

    @Test("--hex and --string write bytes; negative values need no =")
    func writeHexAndString() throws {
        try withFixture { fixture in
            let address = hex(try fixture.layout.value("u64"))
            #expect(try procmem("write", fixture.pidArgument, address, "--hex", "de ad be ef").status == 0)
            #expect(try procmem("read", fixture.pidArgument, address, "4", "--raw").stdout == [0xDE, 0xAD, 0xBE, 0xEF])
            #expect(try procmem("write", fixture.pidArgument, address, "--string", "hi").status == 0)
            // --string writes exactly the text: the third byte keeps the 0xBE written above.
            #expect(try procmem("read", fixture.pidArgument, address, "4", "--raw").stdout == [0x68, 0x69, 0xBE, 0xEF])
            let string = try procmem("write", fixture.pidArgument, address, "--string", "hé", "--json")
            #expect(string.text.contains("\"written\":3"), "\(string.text)")
            #expect(try procmem("write", fixture.pidArgument, address, "--cstring", "hi").status == 0)
            #expect(try procmem("read", fixture.pidArgument, address, "4", "--raw").stdout == [0x68, 0x69, 0, 0xEF])
            #expect(try procmem("write", fixture.pidArgument, address, "--string", "").status == 64)
            #expect(try procmem("write", fixture.pidArgument, address, "--value", "-2", "--as", "i16").status == 0)
            #expect(try procmem("read", fixture.pidArgument, address, "--as", "i16").text.hasSuffix(": -2\n"))
        }
    }

    @Test("a write across the hole is partial (1) unless --exact (16)")
    func partialWrite() throws {
        try withFixture { fixture in
            let hole = try fixture.layout.region("hole")
            let start = hex(hole.address + UInt64(fixture.layout.pageSize) - 2)
            let exact = try procmem("write", fixture.pidArgument, start, "--hex", "01020304", "--exact")
            #expect(exact.status == 16)
            let partial = try procmem("write", fixture.pidArgument, start, "--hex", "01020304")
            #expect(partial.status == 1)
            #expect(partial.text == "wrote 2 bytes at \(start)\n")
            #expect(partial.stderr.contains("short write: 2 of 4 bytes"))
        }
    }

    @Test("a value that does not fit is a usage error")
    func badValue() throws {
        try withFixture { fixture in
            let result = try procmem("write", fixture.pidArgument, hex(try fixture.layout.value("u8")), "--value", "300", "--as", "u8")
            #expect(result.status == 64)
            #expect(result.stderr.contains("does not fit in u8"))
        }
    }
}
