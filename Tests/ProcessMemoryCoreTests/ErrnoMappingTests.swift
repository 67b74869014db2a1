import Glibc
import SystemPackage
import Testing
@testable import ProcessMemoryCore

/// The syscall layer is exercised here without a target: only errno mapping and EINTR handling.
@Suite("Errno mapping and EINTR") struct ErrnoMappingTests {
    @Test func interruptedCallsAreRetried() throws {
        var calls = 0
        let result = valueOrErrno { () -> Int in
            calls += 1
            if calls < 3 {
                Glibc.errno = EINTR
                return -1
            }
            return 42
        }
        #expect(calls == 3)
        #expect(try result.get() == 42)
    }

    @Test func interruptionIsReturnedWhenRetryIsOff() {
        var calls = 0
        let result = valueOrErrno(retryOnInterrupt: false) { () -> Int32 in
            calls += 1
            Glibc.errno = EINTR
            return -1
        }
        #expect(calls == 1)
        #expect(throws: Errno.interrupted) { try result.get() }
    }

    @Test func otherErrorsAreNotRetried() {
        var calls = 0
        let result = valueOrErrno { () -> Int in
            calls += 1
            Glibc.errno = EFAULT
            return -1
        }
        #expect(calls == 1)
        #expect(throws: Errno.badAddress) { try result.get() }
    }

    @Test(arguments: [
        (Errno.notPermitted, ProcessMemoryError.Code.accessDenied),
        (.permissionDenied, .accessDenied),
        (.noSuchProcess, .badState),
        (.badFileDescriptor, .badHandle),
        (.invalidArgument, .invalidArguments),
        (.noMemory, .noMemory),
        (.noFunction, .notSupported),
        (.ioError, .io),
        (.badAddress, .notFound),
        (.tooManyOpenFiles, .noMemory),
    ])
    func errnoTable(errno: Errno, code: ProcessMemoryError.Code) {
        #expect(ErrnoMapping.code(for: errno, systemCall: SystemCall(.read)) == code)
    }

    @Test func descriptorExhaustionSaysWhatToDo() {
        let error = ErrnoMapping.resourceFailure(.tooManyOpenFiles, systemCall: SystemCall(.open), pid: 1)
        #expect(error.code == .noMemory)
        #expect(error.message.contains("RLIMIT_NOFILE"))
        #expect(error.errno == .tooManyOpenFiles)
    }

    @Test func descriptionNamesEverything() {
        let error = ProcessMemoryError(.notFound, pid: 42, address: 0x1000, bytesTransferred: 12, systemCall: SystemCall(.processVMReadv),
                                       errno: .badAddress, message: "nothing is mapped at 0x1000")
        #expect(error.description.hasPrefix("notFound: nothing is mapped at 0x1000 (pid 42, address 0x1000, 12 bytes transferred, process_vm_readv:"))
    }

    @Test func procStatParsesCommandsWithParentheses() throws {
        let line = "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 100"
        let stat = try #require(ProcStat.parse(Array(line.utf8)))
        #expect(stat.state == "S")
        #expect(stat.flags == 4194560)
        #expect(stat.startTime == 98765)
        #expect(!stat.isKernelThread)
        #expect(ProcStat.parse(Array("garbage".utf8)) == nil)
    }
}
