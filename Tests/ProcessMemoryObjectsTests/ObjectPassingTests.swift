import Foundation
import Glibc
import SystemPackage
import Testing
@testable import ProcessMemoryCore
@testable import ProcessMemoryObjects

/// A connected pair of Unix stream sockets, closed at the end of the scope that owns it.
final class SocketPair {
    let first: FileDescriptor
    let second: FileDescriptor

    init() throws {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw Errno(rawValue: errno)
        }
        first = FileDescriptor(rawValue: fds[0])
        second = FileDescriptor(rawValue: fds[1])
    }

    deinit {
        try? first.close()
        try? second.close()
    }
}

@Suite("Passing memory objects") struct ObjectPassingTests {
    @Test func sendAndReceiveOverASocketPair() throws {
        let sockets = try SocketPair()
        let object = try patternedObject(size: 5000, name: "procmem-passed")
        try object.sealSize()
        try object.send(over: sockets.first)
        let received = try MemoryObject.receive(from: sockets.second)
        #expect(received.inode == object.inode)
        #expect(received.kind == .memfd)
        #expect(received.name == "procmem-passed")
        #expect(received.rights == .readWrite)
        #expect(try received.info().descriptor != (try object.info().descriptor))
        #expect(try received.read(count: 5000, at: 0) == objectPattern(5000))
        #expect(try received.seals() == .fixedSize)
        // The same object: a write on one side is read on the other.
        try received.write([0xAA, 0xBB], at: 4998)
        #expect(try object.read(count: 2, at: 4998) == [0xAA, 0xBB])
        // Still exact on the receiving side.
        let error = try #require(throws: ProcessMemoryError.self) { try received.read(count: 3, at: 4998) }
        #expect(error.code == .outOfRange)
        // The received descriptor is close-on-exec (MSG_CMSG_CLOEXEC).
        #expect(fcntl(try received.info().descriptor, F_GETFD) & FD_CLOEXEC != 0)
    }

    @Test func aReadOnlyObjectStaysReadOnlyWhenPassed() throws {
        let sockets = try SocketPair()
        let object = try patternedObject(size: 100)
        try object.duplicate(rights: .read).send(over: sockets.first)
        let received = try MemoryObject.receive(from: sockets.second)
        #expect(received.rights == .read)
        #expect(try received.read(count: 100, at: 0) == objectPattern(100))
        let error = try #require(throws: ProcessMemoryError.self) { try received.write([1], at: 0) }
        #expect(error.code == .accessDenied)
    }

    @Test func receivingWithoutADescriptorFails() throws {
        let sockets = try SocketPair()
        // A plain byte: no descriptor.
        var byte: UInt8 = 1
        #expect(Glibc.write(sockets.first.rawValue, &byte, 1) == 1)
        let plain = try #require(throws: ProcessMemoryError.self) { try MemoryObject.receive(from: sockets.second) }
        #expect(plain.code == .wrongType)
        // The peer closes: end of file.
        try sockets.first.close()
        let closed = try #require(throws: ProcessMemoryError.self) { try MemoryObject.receive(from: sockets.second) }
        #expect(closed.code == .io)
        // Not a socket.
        let object = try patternedObject(size: 1)
        let pipeFDs = try FileDescriptor.pipe()
        defer { try? pipeFDs.readEnd.close(); try? pipeFDs.writeEnd.close() }
        let notSocket = try #require(throws: ProcessMemoryError.self) { try object.send(over: pipeFDs.writeEnd) }
        #expect(notSocket.code == .invalidArguments)
    }

    @Test("A child inherits the descriptor; another process reaches it through /proc/CHILD/fd/N")
    func inheritedByAChild() throws {
        let object = try patternedObject(size: 4096, name: "procmem-inherited")
        let inheritable = try object.makeInheritableDescriptor()
        #expect(fcntl(inheritable.rawValue, F_GETFD) & FD_CLOEXEC == 0)
        let original = try object.info().descriptor
        var child: pid_t = 0
        let argv = ["/bin/sleep", "30"]
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        try #require(posix_spawn(&child, argv[0], nil, nil, &cArgs, environ) == 0)
        defer {
            kill(child, SIGKILL)
            var status: Int32 = 0
            waitpid(child, &status, 0)
        }
        try inheritable.close()
        // Wait for the exec, after which only inherited descriptors remain.
        for _ in 0..<2000 {
            if (try? String(contentsOfFile: "/proc/\(child)/comm", encoding: .utf8))?.hasPrefix("sleep") == true { break }
            usleep(1000)
        }
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(child)/fd/\(inheritable.rawValue)")
        #expect(link == "/memfd:procmem-inherited (deleted)")
        let originalLink = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(child)/fd/\(original)")
        #expect(originalLink != link, "the close-on-exec descriptor did not cross execve")
        let theirs = try MemoryObject(opening: "/proc/\(child)/fd/\(inheritable.rawValue)")
        #expect(theirs.inode == object.inode)
        #expect(theirs.rights == .read)
        #expect(try theirs.read(count: 4096, at: 0) == objectPattern(4096))
        // The memfd outlives our own descriptor: the child keeps it alive.
        object.close()
        #expect(try theirs.read(count: 16, at: 100) == objectPattern(16, from: 100))
    }
}
