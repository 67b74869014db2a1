import Glibc
import ProcessMemoryCore
import SystemPackage

/// A memory object's descriptor, guarded like a handle's: `close()` never closes it while an
/// operation in another thread is still using it.
typealias ObjectDescriptorBox = GuardedResource<FileDescriptor>

extension GuardedResource where Value == FileDescriptor {
    convenience init(_ descriptor: FileDescriptor) {
        self.init(descriptor) { ($0).closeQuietly() }
    }

    /// Runs `body` with the descriptor, or throws `badHandle` when the object was closed.
    func use<R>(_ body: (FileDescriptor) throws(ProcessMemoryError) -> R) throws(ProcessMemoryError) -> R {
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
