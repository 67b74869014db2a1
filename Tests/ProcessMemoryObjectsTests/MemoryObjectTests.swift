import Foundation
import Glibc
import SystemPackage
import ProcessMemoryTestTraits
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryObjects

/// `count` bytes where byte i is `(i * 13 + 5) & 0xff`.
func objectPattern(_ count: Int, from start: Int = 0) -> [UInt8] {
    (start..<(start + count)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
}

/// A memfd of `size` bytes filled with ``objectPattern(_:from:)``.
func patternedObject(size: Int, name: String = "procmem-test") throws -> MemoryObject {
    let object = try MemoryObject(size: UInt64(size), name: name)
    if size > 0 { try object.write(objectPattern(size), at: 0) }
    return object
}

@Suite("Memory objects") struct MemoryObjectTests {
    @Test func createGivesAZeroedMemfdWithBothRightsAndNoSeals() throws {
        let object = try MemoryObject(size: 10000, name: "procmem-create")
        #expect(object.kind == .memfd)
        #expect(object.name == "procmem-create")
        #expect(object.rights == .readWrite)
        #expect(object.deviceMajor == 0)
        #expect(try object.size() == 10000)
        #expect(try object.seals() == [])
        #expect(try object.read(count: 10000, at: 0) == [UInt8](repeating: 0, count: 10000))
        let info = try object.info()
        #expect(info.path == "/memfd:procmem-create (deleted)")
        #expect(info.size == 10000)
        #expect(info.seals == [])
        #expect(info.inode == object.inode)
        #expect(info.descriptor >= 0)
        // The descriptor is close-on-exec, as MFD_CLOEXEC asked.
        #expect(fcntl(info.descriptor, F_GETFD) & FD_CLOEXEC != 0)
    }

    @Test func createRejectsBadNamesAndSizes() throws {
        for (size, name) in [(UInt64(16), "bad\0name"), (16, String(repeating: "n", count: 250)), (UInt64(Int64.max) + 1, "big")] {
            let error = try #require(throws: ProcessMemoryError.self) { try MemoryObject(size: size, name: name) }
            #expect(error.code == .invalidArguments)
        }
        // 249 bytes is the longest name memfd_create accepts; size 0 is allowed.
        let longest = try MemoryObject(size: 0, name: String(repeating: "n", count: 249))
        #expect(try longest.size() == 0)
    }

    @Test func writesAndReadsAreExact() throws {
        let object = try patternedObject(size: 10000)
        #expect(try object.read(count: 10000, at: 0) == objectPattern(10000))
        #expect(try object.read(count: 5000, at: 4093) == objectPattern(5000, from: 4093))
        // A read that ends exactly at the size succeeds.
        #expect(try object.read(count: 1, at: 9999) == objectPattern(1, from: 9999))
        #expect(try object.read(count: 100, at: 9900) == objectPattern(100, from: 9900))
        // Into a caller buffer, without allocation.
        var buffer = [UInt8](repeating: 0xEE, count: 24)
        try buffer.withUnsafeMutableBytes { try object.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[4..<20]), at: 7000) }
        #expect(buffer == [UInt8](repeating: 0xEE, count: 4) + objectPattern(16, from: 7000) + [UInt8](repeating: 0xEE, count: 4))
        // Typed values, native byte order, at unaligned offsets.
        try object.write(UInt32(0xDEAD_BEEF), at: 4097)
        try object.write(-2.5 as Double, at: 9992)
        #expect(try object.read(UInt32.self, at: 4097) == 0xDEAD_BEEF)
        #expect(try object.read(count: 4, at: 4097) == [0xEF, 0xBE, 0xAD, 0xDE])
        #expect(try object.read(Double.self, at: 9992) == -2.5)
        // Empty reads and writes succeed anywhere up to the size.
        #expect(try object.read(count: 0, at: 10000) == [])
        try object.write([UInt8](), at: 10000)
        #expect(try object.size() == 10000)
    }

    @Test("Out-of-range reads fail before any byte moves",
          arguments: [(UInt64(10000), 1), (9999, 2), (9000, 1001), (0, 10001), (UInt64.max, 1), (UInt64.max - 5, 10),
                      (UInt64(1) << 63, 1), (10001, 0)])
    func outOfRangeReads(offset: UInt64, count: Int) throws {
        let object = try patternedObject(size: 10000)
        var buffer = [UInt8](repeating: 0xEE, count: count)
        let error = try #require(throws: ProcessMemoryError.self) {
            try buffer.withUnsafeMutableBytes { try object.read(into: $0, at: offset) }
        }
        #expect(error.code == .outOfRange)
        #expect(error.address == offset)
        #expect(error.bytesTransferred == 0)
        #expect(error.pid == nil)
        #expect(buffer == [UInt8](repeating: 0xEE, count: count), "nothing is read")
        let again = try #require(throws: ProcessMemoryError.self) { try object.read(count: count, at: offset) }
        #expect(again.code == .outOfRange)
        #expect(again.address == offset)
    }

    @Test func overflowIsNamedInTheMessage() throws {
        let object = try patternedObject(size: 16)
        let typed = try #require(throws: ProcessMemoryError.self) { try object.read(UInt32.self, at: 13) }
        #expect(typed.code == .outOfRange)
        #expect(typed.address == 13)
        let error = try #require(throws: ProcessMemoryError.self) { try object.read(count: 2, at: UInt64.max) }
        #expect(error.code == .outOfRange)
        #expect(error.message.contains("overflows"))
        let past = try #require(throws: ProcessMemoryError.self) { try object.read(count: 1, at: 16) }
        #expect(past.message.contains("size of 16 bytes"))
    }

    @Test("Out-of-range writes write nothing and never grow the object",
          arguments: [(UInt64(10000), 1), (9999, 2), (9990, 100), (UInt64.max, 1), (UInt64(1) << 62, 8)])
    func outOfRangeWrites(offset: UInt64, count: Int) throws {
        let object = try patternedObject(size: 10000)
        let error = try #require(throws: ProcessMemoryError.self) {
            try object.write([UInt8](repeating: 0x77, count: count), at: offset)
        }
        #expect(error.code == .outOfRange)
        #expect(error.address == offset)
        #expect(error.bytesTransferred == 0)
        #expect(try object.size() == 10000)
        #expect(try object.read(count: 10000, at: 0) == objectPattern(10000))
    }

    @Test func resizeGrowsWithZerosAndShrinks() throws {
        let object = try patternedObject(size: 100)
        try object.resize(to: 5000)
        #expect(try object.size() == 5000)
        #expect(try object.read(count: 5000, at: 0) == objectPattern(100) + [UInt8](repeating: 0, count: 4900))
        try object.resize(to: 10)
        #expect(try object.size() == 10)
        #expect(try object.read(count: 10, at: 0) == objectPattern(10))
        #expect(throws: ProcessMemoryError.self) { try object.read(count: 1, at: 10) }
        let error = try #require(throws: ProcessMemoryError.self) { try object.resize(to: UInt64(Int64.max) + 1) }
        #expect(error.code == .invalidArguments)
    }

    @Test func sealingTheSizeRefusesResizingAndKeepsWritesInside() throws {
        let object = try patternedObject(size: 8192)
        try object.sealSize()
        #expect(try object.seals() == .fixedSize)
        #expect(try object.seals() == [.grow, .shrink])
        let grow = try #require(throws: ProcessMemoryError.self) { try object.resize(to: 8193) }
        #expect(grow.code == .accessDenied)
        #expect(grow.message.contains("F_SEAL_GROW"))
        #expect(grow.errno == .notPermitted)
        let shrink = try #require(throws: ProcessMemoryError.self) { try object.resize(to: 4096) }
        #expect(shrink.code == .accessDenied)
        #expect(shrink.message.contains("F_SEAL_SHRINK"))
        // The same size is not a change.
        try object.resize(to: 8192)
        // Writes inside work; a write crossing the end is refused whole.
        try object.write([1, 2, 3], at: 8189)
        let crossing = try #require(throws: ProcessMemoryError.self) { try object.write([1, 2, 3, 4], at: 8189) }
        #expect(crossing.code == .outOfRange)
        #expect(try object.read(count: 3, at: 8189) == [1, 2, 3])
        #expect(try object.size() == 8192)
    }

    @Test func sealingWritesWithoutMappingsUsesFSealWrite() throws {
        let object = try patternedObject(size: 4096)
        #expect(try object.sealWrites() == .write)
        #expect(try object.seals() == .write)
        let error = try #require(throws: ProcessMemoryError.self) { try object.write([9], at: 10) }
        #expect(error.code == .accessDenied)
        #expect(error.message.contains("F_SEAL_WRITE"))
        #expect(error.address == 10)
        #expect(error.errno == .notPermitted)
        #expect(try object.read(count: 4096, at: 0) == objectPattern(4096))
        // A writable shared mapping is refused, a read-only one is fine.
        let writable = try #require(throws: ProcessMemoryError.self) { try object.map() }
        #expect(writable.code == .accessDenied)
        #expect(writable.message.contains("F_SEAL_WRITE"))
        let readOnly = try object.map(rights: .read)
        #expect(Array(readOnly.bytes) == objectPattern(4096))
        #expect(readOnly.mutableBytes == nil)
    }

    @Test("With a writable mapping, F_SEAL_WRITE is refused (EBUSY) and F_SEAL_FUTURE_WRITE is used")
    func sealingWritesWithAMappingUsesFutureWrite() throws {
        let object = try patternedObject(size: 4096)
        let mapping = try object.map()
        let busy = try #require(throws: ProcessMemoryError.self) { try object.addSeals(.write) }
        #expect(busy.code == .accessDenied)
        #expect(busy.errno == .resourceBusy)
        #expect(try object.sealWrites() == .futureWrite)
        #expect(try object.seals() == .futureWrite)
        // Stores through the existing mapping still work and are seen by reads.
        let bytes = try #require(mapping.mutableBytes)
        bytes[100] = 0xAB
        #expect(try object.read(count: 1, at: 100) == [0xAB])
        let error = try #require(throws: ProcessMemoryError.self) { try object.write([1], at: 0) }
        #expect(error.code == .accessDenied)
        #expect(error.message.contains("F_SEAL_FUTURE_WRITE"))
        let newMapping = try #require(throws: ProcessMemoryError.self) { try object.map(rights: .readWrite) }
        #expect(newMapping.code == .accessDenied)
        mapping.unmap()
    }

    @Test func fSealSealStopsFurtherSeals() throws {
        let object = try patternedObject(size: 64)
        try object.addSeals([.seal, .shrink])
        #expect(try object.seals() == [.seal, .shrink])
        let error = try #require(throws: ProcessMemoryError.self) { try object.sealSize() }
        #expect(error.code == .accessDenied)
        #expect(error.message.contains("F_SEAL_SEAL"))
        #expect(Seals([.seal, .grow]).description == "F_SEAL_SEAL|F_SEAL_GROW")
        #expect(Seals().description == "none")
    }

    /// Whether files in the working directory (which holds the package) have seals: on tmpfs they
    /// do; on a disk filesystem, where the package normally lives, they do not.
    static let workingDirectoryHasSeals: Bool = {
        let path = FileManager.default.currentDirectoryPath + "/.procmem-seals-probe-\(getpid())"
        guard FileManager.default.createFile(atPath: path, contents: Data([0])) else { return false }
        defer { unlink(path) }
        guard let object = try? MemoryObject(opening: path, rights: .read) else { return false }
        return (try? object.seals()) != nil
    }()

    @Test(.disabled(if: MemoryObjectTests.workingDirectoryHasSeals, "the working directory is on a filesystem with seals (tmpfs)"))
    func aFileOnAFilesystemWithoutSealsSaysNotSupported() throws {
        let path = FileManager.default.currentDirectoryPath + "/.procmem-object-test-\(getpid())"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(objectPattern(3000))))
        defer { unlink(path) }
        let object = try MemoryObject(opening: path, rights: .readWrite)
        #expect(object.kind == .file)
        #expect(object.name == path)
        #expect(try object.read(count: 3000, at: 0) == objectPattern(3000))
        let error = try #require(throws: ProcessMemoryError.self) { try object.seals() }
        #expect(error.code == .notSupported)
        #expect(try object.info().seals == nil)
        let add = try #require(throws: ProcessMemoryError.self) { try object.sealSize() }
        #expect(add.code == .notSupported)
        // Writes stay inside the file's size, too.
        #expect(throws: ProcessMemoryError.self) { try object.write([1], at: 3000) }
        #expect(try object.size() == 3000)
    }

    @Test func mappingsShareTheObjectsBytes() throws {
        let object = try patternedObject(size: 3 * 4096 + 100)
        let mapping = try object.map()
        #expect(mapping.count == 3 * 4096 + 100)
        #expect(mapping.offset == 0)
        #expect(mapping.rights == .readWrite)
        #expect(Array(mapping.bytes) == objectPattern(3 * 4096 + 100))
        // Stores through the mapping are reads of the object, and the other way round.
        let bytes = try #require(mapping.mutableBytes)
        bytes[5000] = 0x42
        #expect(try object.read(count: 1, at: 5000) == [0x42])
        try object.write([0x99, 0x98], at: 12000)
        #expect(mapping.bytes[12000] == 0x99 && mapping.bytes[12001] == 0x98)
        // A part of the object, from a page boundary.
        let part = try object.map(offset: 4096, count: 100, rights: .read)
        #expect(Array(part.bytes) == Array(objectPattern(100, from: 4096)))
        #expect(part.mutableBytes == nil)
        // The mapping outlives the object's descriptor.
        object.close()
        #expect(mapping.bytes[5000] == 0x42)
        mapping.unmap()
        mapping.unmap()
        #expect(!mapping.isMapped)
        #expect(mapping.bytes.isEmpty)
        #expect(mapping.mutableBytes == nil)
    }

    @Test func badMappingRequests() throws {
        let object = try patternedObject(size: 8192)
        let unaligned = try #require(throws: ProcessMemoryError.self) { try object.map(offset: 100) }
        #expect(unaligned.code == .invalidArguments)
        let past = try #require(throws: ProcessMemoryError.self) { try object.map(offset: 4096, count: 4097) }
        #expect(past.code == .outOfRange)
        #expect(past.address == 4096)
        let atEnd = try #require(throws: ProcessMemoryError.self) { try object.map(offset: 8192) }
        #expect(atEnd.code == .outOfRange)
        let empty = try #require(throws: ProcessMemoryError.self) { try object.map(count: 0) }
        #expect(empty.code == .invalidArguments)
        let readOnly = try object.duplicate(rights: .read)
        let gain = try #require(throws: ProcessMemoryError.self) { try readOnly.map(rights: .readWrite) }
        #expect(gain.code == .accessDenied)
        #expect(gain.accessDenial == .handleLacksRight)
        #expect(try readOnly.map().rights == .read)
    }

    @Test func duplicatesShareTheObjectAndNeverGainRights() throws {
        let object = try patternedObject(size: 4096)
        let same = try object.duplicate()
        #expect(same.rights == .readWrite)
        #expect(same.inode == object.inode)
        try same.write([0x11], at: 0)
        #expect(try object.read(count: 1, at: 0) == [0x11])

        let readOnly = try object.duplicate(rights: .read)
        #expect(readOnly.rights == .read)
        #expect(readOnly.inode == object.inode)
        // Its descriptor is a read-only open file description.
        let descriptor = try readOnly.info().descriptor
        #expect(fcntl(descriptor, F_GETFL) & O_ACCMODE == O_RDONLY)
        #expect(try readOnly.read(count: 1, at: 0) == [0x11])
        for attempt: () throws -> Void in [
            { try readOnly.write([1], at: 0) }, { try readOnly.resize(to: 10) }, { try readOnly.sealSize() },
        ] {
            let error = try #require(throws: ProcessMemoryError.self) { try attempt() }
            #expect(error.code == .accessDenied)
            #expect(error.accessDenial == .handleLacksRight)
        }
        let gain = try #require(throws: ProcessMemoryError.self) { try readOnly.duplicate(rights: .readWrite) }
        #expect(gain.code == .accessDenied)
        let none = try #require(throws: ProcessMemoryError.self) { try object.duplicate(rights: []) }
        #expect(none.code == .invalidArguments)
        // Closing one leaves the others working.
        object.close()
        #expect(try readOnly.read(count: 1, at: 0) == [0x11])
        #expect(try same.size() == 4096)
    }

    @Test("The kernel refuses writes on a read-only descriptor too (EBADF → accessDenied)")
    func readOnlyDescriptorIsRefusedByTheKernel() throws {
        let object = try patternedObject(size: 64)
        let path = "/proc/self/fd/\(try object.info().descriptor)"
        let readOnly = try MemoryObject(opening: path, rights: .read)
        #expect(readOnly.rights == .read)
        #expect(readOnly.kind == .memfd)
        #expect(readOnly.inode == object.inode)
        // Bypass the library's own rights check: the raw descriptor refuses pwrite with EBADF.
        let fd = try readOnly.info().descriptor
        var byte: UInt8 = 1
        guard case .failure(let errno) = Sys.pwrite(fd, &byte, 1, at: 0) else {
            Issue.record("pwrite on an O_RDONLY memfd succeeded")
            return
        }
        let error = ObjectErrnoMapping.objectFailure(errno, operation: .write, systemCall: SystemCall(.pwrite), offset: 0)
        #expect(error.code == .accessDenied)
        #expect(error.errno == .badFileDescriptor)
    }

    @Test func closedObjectsAreBadHandles() throws {
        let object = try patternedObject(size: 64)
        object.close()
        object.close()
        #expect(object.isClosed)
        let attempts: [(String, () throws -> Void)] = [
            ("read", { _ = try object.read(count: 1, at: 0) }),
            ("write", { try object.write([1], at: 0) }),
            ("size", { _ = try object.size() }),
            ("resize", { try object.resize(to: 1) }),
            ("seals", { _ = try object.seals() }),
            ("sealSize", { try object.sealSize() }),
            ("map", { _ = try object.map() }),
            ("duplicate", { _ = try object.duplicate() }),
            ("info", { _ = try object.info() }),
            ("inheritable", { _ = try object.makeInheritableDescriptor() }),
            ("send", { try object.send(over: FileDescriptor(rawValue: 0)) }),
        ]
        for (name, attempt) in attempts {
            let error = try #require(throws: ProcessMemoryError.self, "\(name)") { try attempt() }
            #expect(error.code == .badHandle, "\(name)")
        }
    }

    @Test func onlyRegularFilesAreMemoryObjects() throws {
        for path in ["/proc/self", "/dev/null"] {
            let error = try #require(throws: ProcessMemoryError.self) { try MemoryObject(opening: path) }
            #expect(error.code == .wrongType, "\(path)")
        }
        // A FIFO is refused without blocking in open(2).
        let fifo = NSTemporaryDirectory() + "procmem-object-fifo-\(getpid())"
        try #require(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        let pipe = try #require(throws: ProcessMemoryError.self) { try MemoryObject(opening: fifo) }
        #expect(pipe.code == .wrongType)
        let missing = try #require(throws: ProcessMemoryError.self) { try MemoryObject(opening: "/nonexistent/procmem") }
        #expect(missing.code == .notFound)
        let none = try #require(throws: ProcessMemoryError.self) { try MemoryObject(opening: "/dev/null", rights: []) }
        #expect(none.code == .invalidArguments)
        // Adopting closes the descriptor when it is not an object. The descriptor is of a directory
        // of this test's own, so a number another test reuses at once is told apart by its inode.
        let directory = NSTemporaryDirectory() + "procmem-object-dir-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try #require(mkdir(directory, 0o700) == 0)
        defer { rmdir(directory) }
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try #require(fd >= 0)
        var before = stat()
        try #require(fstat(fd, &before) == 0)
        let adopted = try #require(throws: ProcessMemoryError.self) { try MemoryObject(adopting: FileDescriptor(rawValue: fd)) }
        #expect(adopted.code == .wrongType)
        var after = stat()
        let stillOurs = fcntl(fd, F_GETFD) != -1 && fstat(fd, &after) == 0 && after.st_ino == before.st_ino && after.st_dev == before.st_dev
        #expect(!stillOurs, "the descriptor was closed")
    }

    @Test("Seal and write errors map as linux-semantics §13 says")
    func errnoMapping() {
        func code(_ errno: Errno, _ operation: ObjectOperation, _ seals: Seals? = nil) -> ProcessMemoryError.Code {
            ObjectErrnoMapping.objectFailure(errno, operation: operation, systemCall: SystemCall(.read), offset: 7, seals: seals).code
        }
        #expect(code(.notPermitted, .write, .write) == .accessDenied)
        #expect(code(.notPermitted, .write, .futureWrite) == .accessDenied)
        #expect(code(.notPermitted, .write, .grow) == .outOfRange)
        #expect(code(.notPermitted, .resize(grow: true), .grow) == .accessDenied)
        #expect(code(.badFileDescriptor, .write) == .accessDenied)
        #expect(code(.badFileDescriptor, .read) == .accessDenied)
        #expect(code(.ioError, .read) == .io)
        #expect(code(.noSpace, .write) == .noMemory)
        #expect(code(.invalidArgument, .seal(nil)) == .notSupported)
        #expect(code(.resourceBusy, .seal(.write)) == .accessDenied)
        let io = ObjectErrnoMapping.objectFailure(.ioError, operation: .read, systemCall: SystemCall(.pread), offset: 4096, bytesTransferred: 100)
        #expect(io.address == 4096)
        #expect(io.bytesTransferred == 100)
        #expect(io.systemCall?.name == .pread)
        #expect(io.errno == .ioError)
    }
}
