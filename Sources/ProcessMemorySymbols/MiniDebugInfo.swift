import Glibc

/// MiniDebugInfo (`.gnu_debugdata`): an xz-compressed ELF image holding the `.symtab` entries that
/// a stripped module's `.dynsym` lacks (Fedora and others ship it; gdb reads it, "MiniDebugInfo").
///
/// Decompressed with liblzma (xz-utils), the library every Linux distribution installs for its
/// package manager. It is loaded at run time with dlopen(3) (`liblzma.so.5`,
/// `lzma_stream_buffer_decode`), so the package gains no build-time or link-time dependency; where
/// liblzma is missing, MiniDebugInfo is skipped and the module's notes say so.
enum MiniDebugInfo {
    /// `lzma_stream_buffer_decode(memlimit, flags, allocator, in, in_pos, in_size, out, out_pos, out_size)`.
    typealias Decode = @convention(c) (UnsafeMutablePointer<UInt64>?, UInt32, OpaquePointer?, UnsafePointer<UInt8>?,
                                       UnsafeMutablePointer<Int>?, Int, UnsafeMutablePointer<UInt8>?,
                                       UnsafeMutablePointer<Int>?, Int) -> CInt

    struct Decoder: @unchecked Sendable { // a C function pointer: immutable, callable from any thread
        let decode: Decode
    }

    /// liblzma's decoder, looked up once; `nil` when liblzma.so.5 cannot be loaded.
    static let decoder: Decoder? = {
        guard let library = dlopen("liblzma.so.5", RTLD_NOW | RTLD_LOCAL),
              let symbol = dlsym(library, "lzma_stream_buffer_decode") else { return nil }
        return Decoder(decode: unsafeBitCast(symbol, to: Decode.self))
    }()

    /// Whether MiniDebugInfo can be read on this machine.
    static var isAvailable: Bool { decoder != nil }

    enum Failure: Error, CustomStringConvertible {
        case noDecoder
        case corrupt(CInt)
        case tooLarge(Int)
        var description: String {
            switch self {
            case .noDecoder: return "liblzma.so.5 could not be loaded (dlopen)"
            case .corrupt(let code): return "liblzma refused the xz stream (lzma_ret \(code))"
            case .tooLarge(let limit): return "decompresses to more than \(limit) bytes"
            }
        }
    }

    /// The decompressed bytes of one xz stream, at most `limit` bytes.
    static func decompress(_ input: ArraySlice<UInt8>, limit: Int) throws(Failure) -> [UInt8] {
        guard let decoder else { throw .noDecoder }
        let lzmaBufferError: CInt = 10 // LZMA_BUF_ERROR: the output buffer is too small
        var capacity = max(4096, min(limit, input.count * 8))
        while true {
            var output = [UInt8](repeating: 0, count: capacity)
            var memlimit = UInt64(256 << 20)
            var inPosition = 0
            var outPosition = 0
            let status = input.withUnsafeBufferPointer { source in
                output.withUnsafeMutableBufferPointer { destination in
                    decoder.decode(&memlimit, 0, nil, source.baseAddress, &inPosition, source.count,
                                   destination.baseAddress, &outPosition, destination.count)
                }
            }
            if status == 0 || status == 1 { // LZMA_OK, LZMA_STREAM_END
                output.removeLast(output.count - min(outPosition, output.count))
                return output
            }
            guard status == lzmaBufferError else { throw .corrupt(status) }
            guard capacity < limit else { throw .tooLarge(limit) }
            capacity = min(limit, capacity * 4)
        }
    }

    /// Adds the `.symtab` symbols inside `image`'s `.gnu_debugdata` to `builder`; `false` (and
    /// `builder` unchanged) when it has none or they cannot be read.
    static func add(_ image: ELFImage, to builder: inout SymbolTable.Builder, limit: Int, notes: inout [String]) -> Bool {
        guard let section = image.section(named: ".gnu_debugdata"), section.hasFileContents else { return false }
        do {
            let bytes = try decompress(image.contents(of: section), limit: limit)
            let inner = try ELFImage(bytes: bytes)
            var added = builder
            try added.add(inner, symtabSource: .miniDebugInfo, symtabOnly: true)
            builder = added
            return true
        } catch let error as Failure {
            notes.append("MiniDebugInfo (.gnu_debugdata) not read: \(error)")
        } catch {
            notes.append("MiniDebugInfo (.gnu_debugdata) is not a valid ELF image: \(error)")
        }
        return false
    }
}
