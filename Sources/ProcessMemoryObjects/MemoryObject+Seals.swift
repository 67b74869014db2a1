import CProcessMemory
import Glibc
import SystemPackage
import ProcessMemoryCore

/// The seals of a memory object (`fcntl(F_ADD_SEALS)`): restrictions that, once added, hold for
/// every descriptor and mapping of the object and can never be removed.
public struct Seals: OptionSet, Sendable, Hashable, CustomStringConvertible {
    /// The bit pattern of the `F_SEAL_*` constants.
    public let rawValue: Int32
    /// Creates a set from the bit pattern of the `F_SEAL_*` constants.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// `F_SEAL_SEAL`: no further seals can be added. A memfd created without `MFD_ALLOW_SEALING`
    /// carries this seal from the start.
    public static let seal = Seals(rawValue: CProcessMemory_F_SEAL_SEAL)
    /// `F_SEAL_SHRINK`: the size cannot decrease.
    public static let shrink = Seals(rawValue: CProcessMemory_F_SEAL_SHRINK)
    /// `F_SEAL_GROW`: the size cannot increase (also not by writing past the end).
    public static let grow = Seals(rawValue: CProcessMemory_F_SEAL_GROW)
    /// `F_SEAL_WRITE`: the contents cannot change; refused while a writable shared mapping exists.
    public static let write = Seals(rawValue: CProcessMemory_F_SEAL_WRITE)
    /// `F_SEAL_FUTURE_WRITE` (Linux 5.1+): no new writes or writable mappings, but existing
    /// writable mappings keep working.
    public static let futureWrite = Seals(rawValue: CProcessMemory_F_SEAL_FUTURE_WRITE)

    /// `F_SEAL_GROW | F_SEAL_SHRINK`: the size is fixed, which makes every range check race-free.
    public static let fixedSize: Seals = [.grow, .shrink]

    /// The C names of the seals in the set, in bit order (`F_SEAL_SEAL`, `F_SEAL_SHRINK`, …).
    public var names: [String] {
        Self.named.compactMap { contains($0.seal) ? $0.name : nil }
    }

    /// `F_SEAL_GROW|F_SEAL_SHRINK`, or `none`.
    public var description: String { isEmpty ? "none" : names.joined(separator: "|") }

    static let named: [(seal: Seals, name: String)] = [
        (.seal, "F_SEAL_SEAL"), (.shrink, "F_SEAL_SHRINK"), (.grow, "F_SEAL_GROW"),
        (.write, "F_SEAL_WRITE"), (.futureWrite, "F_SEAL_FUTURE_WRITE"),
    ]
}

extension MemoryObject {
    /// The object's seals.
    ///
    /// - Throws: `.notSupported` when the object's filesystem has no seals (a file on ext4, for
    ///   example; memfds and shared-memory/tmpfs files have them), `.badHandle` when closed.
    ///
    /// The corresponding C call is `fcntl(F_GET_SEALS)`.
    public func seals() throws(ProcessMemoryError) -> Seals {
        try guardedDescriptor.use { (fd) throws(ProcessMemoryError) -> Seals in
            switch fd.seals() {
            case .success(let raw): return Seals(rawValue: raw)
            case .failure(let error):
                throw ObjectErrnoMapping.objectFailure(error, operation: .seal(nil), systemCall: SystemCall(.fcntl, "F_GET_SEALS"))
            }
        }
    }

    /// Adds `seals`. Seals can only be added, never removed, and they bind every holder of the object.
    ///
    /// - Throws: `.accessDenied` (no write right; `F_SEAL_SEAL` is set, which a memfd created without
    ///   `MFD_ALLOW_SEALING` has; or `F_SEAL_WRITE` while a writable shared mapping exists: use
    ///   ``sealWrites()``), `.notSupported` (a filesystem without seals), `.badHandle`.
    ///
    /// The corresponding C call is `fcntl(F_ADD_SEALS)`.
    public func addSeals(_ seals: Seals) throws(ProcessMemoryError) {
        guard rights.contains(.write) else {
            throw ProcessMemoryError(.accessDenied, accessDenial: .handleLacksRight,
                                     message: "adding seals needs the write right (the kernel refuses it on a read-only descriptor)")
        }
        try guardedDescriptor.use { (fd) throws(ProcessMemoryError) in
            if case .failure(let error) = fd.addSeals(seals.rawValue) {
                throw ObjectErrnoMapping.objectFailure(error, operation: .seal(seals), systemCall: SystemCall(.fcntl, "F_ADD_SEALS"),
                                                 seals: Self.currentSeals(fd))
            }
        }
    }

    /// Fixes the size: adds `F_SEAL_GROW | F_SEAL_SHRINK`.
    ///
    /// After this, the size read by a read or write cannot change before the data moves, so the
    /// range check is exact without any race; a mapping can never see its pages vanish (no
    /// `SIGBUS`); and ``resize(to:)`` fails with `.accessDenied`.
    /// - Throws: as ``addSeals(_:)``.
    public func sealSize() throws(ProcessMemoryError) {
        try addSeals(.fixedSize)
    }

    /// Makes the contents read-only for every holder: adds `F_SEAL_WRITE`, or `F_SEAL_FUTURE_WRITE`
    /// when the kernel refuses `F_SEAL_WRITE` because a writable shared mapping exists (`EBUSY`).
    ///
    /// With `F_SEAL_FUTURE_WRITE`, stores through writable mappings that already exist keep working
    /// (including ones in other processes); only new writes and new writable mappings are refused.
    /// Unmap writable mappings first when the contents must be frozen.
    /// - Returns: The seal that was added: ``Seals/write`` or ``Seals/futureWrite``.
    /// - Throws: as ``addSeals(_:)``.
    ///
    /// The corresponding C call is `fcntl(F_ADD_SEALS)`.
    @discardableResult
    public func sealWrites() throws(ProcessMemoryError) -> Seals {
        do {
            try addSeals(.write)
            return .write
        } catch where error.errno == .resourceBusy {
            try addSeals(.futureWrite)
            return .futureWrite
        }
    }
}
