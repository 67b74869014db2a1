/// Why an ELF image was refused.
///
/// The reader checks every offset, size and count against the image before it reads, and refuses a
/// malformed image with one of these instead of trapping or reading past the end.
public struct ELFError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of defect.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The image does not start with `\x7fELF`.
        case notELF
        /// An ELF class, byte order or version this reader does not know.
        case unsupported
        /// The image ends inside the ELF header, the program headers or the section headers.
        case truncatedHeader
        /// An offset or offset + size points past the end of the image (or overflows).
        case outOfBounds
        /// Two sections with contents occupy the same bytes, or a section overlaps the headers.
        case overlappingSections
        /// A count (sections, program headers, symbols) larger than the image could hold, or
        /// larger than the reader's limit.
        case hugeCount
        /// A field with a value no valid image has (an entry size too small, a string without its
        /// terminating NUL, a link to a section that does not exist).
        case badField
    }

    /// The kind of defect.
    public var kind: Kind
    /// What is wrong, naming the field or section.
    public var message: String

    /// Creates an error.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// `kind: message`.
    public var description: String { "\(kind.rawValue): \(message)" }
}
