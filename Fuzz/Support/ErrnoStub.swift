// The fuzz harnesses compile the pure parsers straight from the sources without swift-system;
// ProcessMemoryError only stores an Errno, so this stand-in is enough for them.
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public var description: String { "errno \(rawValue)" }
}
