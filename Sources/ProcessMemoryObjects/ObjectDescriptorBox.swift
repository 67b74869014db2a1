import Glibc
import ProcessMemoryCore

/// A memory object's descriptor, guarded like a handle's: `close()` never closes it while an
/// operation in another thread is still using it.
typealias ObjectDescriptorBox = GuardedResource<CInt>

extension GuardedResource where Value == CInt {
    convenience init(_ descriptor: CInt) {
        self.init(descriptor) { Sys.close($0) }
    }

    /// Runs `body` with the descriptor, or throws `badHandle` when the object was closed.
    func use<R>(_ body: (CInt) throws(ProcessMemoryError) -> R) throws(ProcessMemoryError) -> R {
        try use(ifClosed: { .objectClosed() }, body)
    }
}

extension ProcessMemoryError {
    static func objectClosed() -> Self {
        Self(.badHandle, message: "the memory object has been closed")
    }

    static func objectLacksRight(_ right: String, offset: UInt64? = nil) -> Self {
        Self(.accessDenied, address: offset, accessDenial: .handleLacksRight,
             message: "the memory object was opened without the \(right) right")
    }
}
