import Glibc
import ProcessMemory
import ProcessMemoryInterfaces
import ProcessMemoryTestSupport
import Testing

// Seed 002 through the Mach surface: Mach.vmRead / Mach.vmReadOverwrite on a Mach.Task.

extension Interfaces {
    @Suite("Mach surface: vm_read, vm_read_overwrite (seed 002)")
    struct MachSurfaceTests {
        /// vm_read_overwrite into a new buffer of `capacity` bytes filled with 0xEE, with
        /// `dataCount` starting at `dataCountIn` (the capacity by default).
        static func overwrite(_ task: Mach.Task, _ address: UInt64, size: Int, capacity: Int,
                              dataCountIn: Int? = nil) -> (Mach.KernReturn, Int, [UInt8]) {
            var bytes = [UInt8](repeating: 0xEE, count: capacity)
            var dataCount = dataCountIn ?? capacity
            let kr = bytes.withUnsafeMutableBytes {
                Mach.vmReadOverwrite(task, address: address, size: size, data: $0, dataCount: &dataCount)
            }
            return (kr, dataCount, bytes)
        }

        /// vm_read, with `data` starting nil and `dataCount` at -1.
        static func read(_ task: Mach.Task, _ address: UInt64, size: Int) -> (Mach.KernReturn, Int, [UInt8]?) {
            var data: [UInt8]?
            var dataCount = -1
            let kr = Mach.vmRead(task, address: address, size: size, data: &data, dataCount: &dataCount)
            return (kr, dataCount, data)
        }

        // MARK: behaviour

        @Test("\"The vm_read and vm_read_overwrite functions read a portion of a task's virtual memory (they enable tasks to read other tasks' memory).\"")
        func bothFormsRead() throws {
            let fixture = try Fixture()
            let task = try machTask(fixture)
            let pattern = try fixture.layout.region("pattern")
            let (kr, count, data) = Self.read(task, pattern.address, size: Int(pattern.size))
            #expect(kr == .success)
            #expect(count == Int(pattern.size))
            #expect(data == Conformance.pattern(0, Int(pattern.size)))
            let (kr2, count2, bytes) = Self.overwrite(task, pattern.address, size: Int(pattern.size), capacity: Int(pattern.size))
            #expect(kr2 == .success)
            #expect(count2 == Int(pattern.size))
            #expect(bytes == Conformance.pattern(0, Int(pattern.size)))
        }

        @Test("\"The vm_read function returns the data in a dynamically allocated array of bytes\"")
        func vmReadAllocates() throws {
            let fixture = try Fixture()
            let task = try machTask(fixture)
            let pattern = try fixture.layout.region("pattern")
            let (kr, count, data) = Self.read(task, pattern.address + 5000, size: 300)
            #expect(kr == .success)
            #expect(count == 300)
            #expect(data?.count == 300)
            #expect(data == Conformance.pattern(5000, 300))
            // Size 0 gives an empty array.
            let (kr0, count0, data0) = Self.read(task, pattern.address, size: 0)
            #expect(kr0 == .success)
            #expect(count0 == 0)
            #expect(data0 == [])
        }

        @Test("\"the vm_read_overwrite function places the data into a caller-specified buffer (the data_in parameter).\"")
        func vmReadOverwriteUsesTheBuffer() throws {
            let fixture = try Fixture()
            let task = try machTask(fixture)
            let pattern = try fixture.layout.region("pattern")
            let (kr, count, bytes) = Self.overwrite(task, pattern.address + 10, size: 1000, capacity: 8192)
            #expect(kr == .success)
            #expect(count == 1000)
            #expect(Array(bytes[0..<1000]) == Conformance.pattern(10, 1000))
            #expect(bytes[1000...].allSatisfy { $0 == 0xEE })
        }

        @Test("\"data_count [in/out scalar] On input, the maximum size of the buffer; on output, the size returned (in natural-sized units).\"")
        func dataCountIsInOut() throws {
            let fixture = try Fixture()
            let task = try machTask(fixture)
            let pattern = try fixture.layout.region("pattern")
            // In: 8192 (the buffer's size); out: the 100 bytes returned.
            let (kr, count, _) = Self.overwrite(task, pattern.address, size: 100, capacity: 8192)
            #expect(kr == .success)
            #expect(count == 100)
            // size equal to the declared maximum is fine.
            let (krEqual, countEqual, _) = Self.overwrite(task, pattern.address, size: 4096, capacity: 8192, dataCountIn: 4096)
            #expect(krEqual == .success)
            #expect(countEqual == 4096)
            // size above the declared maximum: the data_in region cannot hold it.
            let (krOver, countOver, bytesOver) = Self.overwrite(task, pattern.address, size: 5000, capacity: 8192, dataCountIn: 4096)
            #expect(krOver == .invalidAddress)
            #expect(countOver == 4096)
            #expect(bytesOver.allSatisfy { $0 == 0xEE })
            // vm_read: out only.
            let (krRead, countRead, _) = Self.read(task, pattern.address, size: 777)
            #expect(krRead == .success)
            #expect(countRead == 777)
        }

        @Test("\"address The address at which to start the read.\" / \"size The number of bytes to read.\"")
        func addressAndSize() throws {
            let fixture = try Fixture()
            let task = try machTask(fixture)
            let (kr, _, data) = Self.read(task, try fixture.layout.value("u64"), size: 8)
            #expect(kr == .success)
            #expect(data == [0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01])
            for address in fixture.layout.planted.addresses {
                let (krPlanted, _, planted) = Self.read(task, address, size: 4)
                #expect(krPlanted == .success)
                #expect(planted == [0x34, 0x12, 0xED, 0x5E])
            }
        }

        // vm_address_t is a machine word: the fixture's regions lie above 4 GiB, which a 32-bit
        // address could not name.
        @Test("\"This interface is machine word length specific because of the virtual address parameter.\"")
        func addressesAreWordSized() throws {
            let fixture = try Fixture()
            let task = try machTask(fixture)
            let pattern = try fixture.layout.region("pattern")
            #expect(pattern.address > UInt64(UInt32.max))
            #expect(MemoryLayout<UInt>.size == 8)
            let (kr, _, data) = Self.read(task, pattern.address, size: 16)
            #expect(kr == .success)
            #expect(data == Conformance.pattern(0, 16))
        }

        // MARK: KERN_PROTECTION_FAILURE

        @Test("\"KERN_PROTECTION_FAILURE Specified memory is valid, but does not permit reading.\" (PROT_NONE)")
        func protNoneIsProtectionFailure() throws {
            let fixture = try Fixture()
            let task = try machTask(fixture)
            let region = try fixture.layout.region("protNone")
            let offset = Int(try #require(region.protNoneOffset))
            // Starting in the PROT_NONE page, and running into it from the readable page before.
            for (address, size) in [(region.address + UInt64(offset), 64), (region.address, Int(region.size))] {
                let (kr, count, data) = Self.read(task, address, size: size)
                #expect(kr == .protectionFailure)
                #expect(count == -1)
                #expect(data == nil)
                let (kr2, count2, _) = Self.overwrite(task, address, size: size, capacity: size)
                #expect(kr2 == .protectionFailure)
                #expect(count2 == size)
            }
            // The readable part alone succeeds.
            #expect(Self.read(task, region.address, size: offset).0 == .success)
        }

        @Test("\"KERN_PROTECTION_FAILURE Specified memory is valid, but does not permit reading.\" (guard page, [vvar], secret memory)")
        func unreadableMappingsAreProtectionFailure() throws {
            let fixture = try Fixture()
            let task = try machTask(fixture)
            let guardRegion = try fixture.layout.region("guard")
            let core = try ProcessHandle(pid: fixture.pid)
            let addresses = [
                guardRegion.address + (try #require(guardRegion.guardOffset)),
                try Conformance.region(.vvar, in: core).start,
                try fixture.layout.region("secret").address,
            ]
            for address in addresses {
                #expect(Self.read(task, address, size: 64).0 == .protectionFailure, "0x\(String(address, radix: 16))")
                #expect(Self.overwrite(task, address, size: 64, capacity: 64).0 == .protectionFailure)
            }
            // Across the guard page from the readable page before it.
            #expect(Self.read(task, guardRegion.address, size: Int(guardRegion.size)).0 == .protectionFailure)
        }

        // MARK: KERN_INVALID_ADDRESS

        @Test("\"KERN_INVALID_ADDRESS The address is illegal\"")
        func illegalAddressIsInvalid() throws {
            let fixture = try Fixture()
            let task = try machTask(fixture)
            let cases: [(UInt64, Int)] = [
                (UInt64(1) << 47, 8), (UInt64(1) << 63, 8), (0xFFFF_FFFF_FF60_0000, 8), (UInt64.max - 10, 100),
            ]
            for (address, size) in cases {
                #expect(Self.read(task, address, size: size).0 == .invalidAddress, "0x\(String(address, radix: 16))")
                #expect(Self.overwrite(task, address, size: size, capacity: size).0 == .invalidAddress)
            }
        }

        @Test("\"or specifies a non-allocated region\"")
        func unmappedIsInvalid() throws {
            let fixture = try Fixture()
            let task = try machTask(fixture)
            let hole = try fixture.layout.region("hole")
            let start = hole.address + (try #require(hole.holeOffset))
            for address in [start, start + 100, 0] {
                let (kr, count, data) = Self.read(task, address, size: 16)
                #expect(kr == .invalidAddress)
                #expect(count == -1)
                #expect(data == nil)
                let (kr2, count2, bytes) = Self.overwrite(task, address, size: 16, capacity: 16)
                #expect(kr2 == .invalidAddress)
                #expect(count2 == 16)
                #expect(bytes.allSatisfy { $0 == 0xEE })
            }
        }

        @Test("\"or there are less than size bytes of data following the address\"")
        func shortDataIsInvalid() throws {
            let fixture = try Fixture()
            let task = try machTask(fixture)
            let hole = try fixture.layout.region("hole")
            let holeOffset = Int(try #require(hole.holeOffset))
            #expect(Self.read(task, hole.address, size: Int(hole.size)).0 == .invalidAddress)
            #expect(Self.read(task, hole.address + 100, size: holeOffset - 99).0 == .invalidAddress)
            #expect(Self.overwrite(task, hole.address, size: holeOffset + 1, capacity: 2 * holeOffset).0 == .invalidAddress)
            // Exactly the bytes that follow succeed.
            let (kr, count, data) = Self.read(task, hole.address + 100, size: holeOffset - 100)
            #expect(kr == .success)
            #expect(count == holeOffset - 100)
            #expect(data == [UInt8](repeating: 0x10, count: holeOffset - 100))
            // A huge size over an unmapped tail fails without allocating it.
            #expect(Self.read(task, hole.address, size: 1 << 40).0 == .invalidAddress)
        }

        @Test("\"or the region specified by the data_in parameter cannot be written to.\"")
        func unwritableDataInIsInvalid() throws {
            let fixture = try Fixture()
            let task = try machTask(fixture)
            let pattern = try fixture.layout.region("pattern")
            let local = try LocalPages(prot: PROT_READ)
            var dataCount = local.count
            #expect(Mach.vmReadOverwrite(task, address: pattern.address, size: 64, data: local.mutableBuffer, dataCount: &dataCount) == .invalidAddress)
            #expect(dataCount == local.count)
            #expect(local.bytes.allSatisfy { $0 == 0xA5 })
            // No buffer at all, and a buffer smaller than size.
            #expect(Mach.vmReadOverwrite(task, address: pattern.address, size: 64,
                                         data: UnsafeMutableRawBufferPointer(start: nil, count: 0), dataCount: &dataCount) == .invalidAddress)
            #expect(Self.overwrite(task, pattern.address, size: 65, capacity: 64, dataCountIn: 1000).0 == .invalidAddress)
        }

        // The document lists two codes for the address; a file page past EOF is mapped but holds
        // no data, so "less than size bytes of data" follow the address (KERN_INVALID_ADDRESS),
        // never the undocumented KERN_MEMORY_ERROR.
        @Test("\"KERN_INVALID_ADDRESS ... or there are less than size bytes of data following the address\" (a file page past its end)")
        func pastEndOfFileIsInvalidAddress() throws {
            let fixture = try Fixture()
            let task = try machTask(fixture)
            for name in ["truncatedFile", "memfd"] {
                let region = try fixture.layout.region(name)
                #expect(Self.read(task, region.address + UInt64(2 * page), size: 16).0 == .invalidAddress, "\(name)")
                #expect(Self.read(task, region.address, size: Int(region.size)).0 == .invalidAddress, "\(name)")
                #expect(Self.overwrite(task, region.address + UInt64(3 * page), size: 16, capacity: 16).0 == .invalidAddress)
                // The object's pages themselves read (the EOF page's tail reads as 0).
                let (kr, _, data) = Self.read(task, region.address, size: 2 * page)
                #expect(kr == .success)
                #expect(data?[6144..<(2 * page)].allSatisfy { $0 == 0 } == true)
            }
        }

        // MARK: the task port

        @Test("\"target_task [in task send right] The port for the task whose memory is to be read.\"")
        func taskPort() throws {
            let fixture = try Fixture()
            let pattern = try fixture.layout.region("pattern")
            // task_for_pid says KERN_FAILURE for every refusal: no such process, a kernel thread.
            var missing: Mach.Task?
            #expect(Mach.taskForPid(Int32.max, &missing) == .failure)
            #expect(Mach.taskForPid(2, &missing) == .failure)
            #expect(Mach.taskForPid(0, &missing) == .failure)
            #expect(missing == nil)
            // A deallocated port is a dead name.
            let task = try machTask(fixture)
            #expect(Mach.portDeallocate(task) == .success)
            #expect(Self.read(task, pattern.address, size: 16).0 == .sendInvalidDest)
            #expect(Self.overwrite(task, pattern.address, size: 16, capacity: 16).0 == .sendInvalidDest)
            #expect(Mach.portDeallocate(task) == .invalidName)
            #expect(Mach.KernReturn.sendInvalidDest.rawValue == 0x1000_0003)
            #expect(Mach.machErrorString(.invalidAddress) == "(os/kern) invalid address")
        }

        @Test("\"target_task [in task send right] The port for the task whose memory is to be read.\" (a task that terminated)")
        func terminatedTask() throws {
            let fixture = try Fixture()
            let task = try machTask(fixture)
            let pattern = try fixture.layout.region("pattern")
            fixture.kill()
            fixture.waitForZombie()
            #expect(Self.read(task, pattern.address, size: 16).0 == .sendInvalidDest)
            let (kr, count, bytes) = Self.overwrite(task, pattern.address, size: 16, capacity: 16)
            #expect(kr == .sendInvalidDest)
            #expect(count == 16)
            // No byte of the pattern is handed out (the core library clears the buffer).
            #expect(bytes.allSatisfy { $0 == 0xEE || $0 == 0 })
            fixture.reap()
        }

        @Test("KERN_* values are those of mach/kern_return.h")
        func kernReturnValues() {
            let values: [(Mach.KernReturn, Int32)] = [
                (.success, 0), (.invalidAddress, 1), (.protectionFailure, 2), (.noSpace, 3), (.invalidArgument, 4),
                (.failure, 5), (.resourceShortage, 6), (.noAccess, 8), (.memoryFailure, 9), (.memoryError, 10),
                (.invalidName, 15), (.invalidTask, 16), (.terminated, 37), (.notSupported, 46),
            ]
            for (kr, value) in values { #expect(kr.rawValue == value, "\(kr)") }
        }
    }
}
