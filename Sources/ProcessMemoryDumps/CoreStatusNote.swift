import SystemPackage
import ProcessMemoryCore
/// The note that marks a core as complete or partial in the core file itself (issue 16: only the
/// `.json` sidecar said so, and a reader given the core alone could not tell).
///
/// One note, owner `PROCMEM-STATUS`, type 1, with a fixed 256-byte descriptor: NUL-padded UTF-8
/// text, `complete` or `partial: REASON`. It is written as `partial: the dump did not finish`
/// before any memory is read and rewritten in place when the dump ends, so a core cut short by a
/// crash says partial too. Readers that do not know the owner skip it.
enum CoreStatusNote {
    static let name = "PROCMEM-STATUS"
    static let type: UInt32 = 1
    static let descriptorSize = 256
    /// Where the descriptor starts in the note: `Elf64_Nhdr` (12 bytes), the name with its NUL,
    /// padded to 4.
    static let descriptorOffset = 12 + (name.utf8.count + 1 + 3) / 4 * 4

    static let unfinished = "partial: the dump did not finish"

    /// `text` as the fixed-size descriptor (cut to 255 bytes at a character boundary).
    static func descriptor(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for character in text {
            let encoded = Array(String(character).utf8)
            if bytes.count + encoded.count > descriptorSize - 1 { break }
            bytes += encoded
        }
        return bytes + [UInt8](repeating: 0, count: descriptorSize - bytes.count)
    }

    /// The whole note, saying `text`.
    static func note(_ text: String) -> [UInt8] {
        ELF.note(name: name, type: type, descriptor: descriptor(text))
    }

    /// The text for a dump's outcome.
    static func text(partialReason: String?) -> String {
        partialReason.map { "partial: " + $0 } ?? "complete"
    }
}
