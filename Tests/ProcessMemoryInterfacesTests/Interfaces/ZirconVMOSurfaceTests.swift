import CProcessMemoryTestSupport
import Foundation
import Glibc
import ProcessMemory
import ProcessMemoryInterfaces
import SystemPackage
import ProcessMemoryTestSupport
import ProcessMemoryTestTraits
import Testing

// The rest of the Zircon VMO surface: zx_vmo_write (with the statuses of its document), zx_vmo_create,
// zx_vmo_get_size, zx_vmo_set_size, and VMO handles for existing objects and for the objects behind
// another process's mappings. zx_vmo_read itself is covered by ZirconVMOReadConformanceTests.

extension Interfaces {
    @Suite("Zircon surface: zx_vmo_write")
    struct ZirconVMOWriteSurfaceTests {
        @Test("\"zx_vmo_write() attempts to write exactly buffer_size bytes to a VMO at offset.\" / \"returns ZX_OK on success, and exactly buffer_size bytes will have been written from buffer.\"")
        func writesExactly() throws {
            let (handle, object) = try VMOFixture.patterned(pages: 2)
            let bytes = [UInt8](repeating: 0x5A, count: 300)
            let status = VMOFixture.write(handle, 5000, bytes)
            #expect(status == .ok)
            #expect(status.rawValue == 0)
            #expect(try object.read(count: 300, at: 5000) == bytes)
            // Only those bytes changed.
            #expect(try object.read(count: 5000, at: 0) == VMOFixture.pattern(0, 5000))
            #expect(try object.read(count: 2 * page - 5300, at: 5300) == VMOFixture.pattern(5300, 2 * page - 5300))
            // Up to the end exactly; the C shape with a longer buffer.
            #expect(VMOFixture.write(handle, UInt64(2 * page - 4), [1, 2, 3, 4]) == .ok)
            let long = [UInt8](repeating: 7, count: 64)
            #expect(long.withUnsafeBytes { Zircon.vmoWrite(handle, buffer: $0.baseAddress, offset: 0, bufferSize: 16) } == .ok)
            #expect(try object.read(count: 17, at: 0) == [UInt8](repeating: 7, count: 16) + [VMOFixture.patternByte(16)])
            #expect(VMOFixture.read(handle, UInt64(2 * page - 4), 4).bytes == [1, 2, 3, 4])
        }

        @Test("\"handle must be of type ZX_OBJ_TYPE_VMO and have ZX_RIGHT_WRITE.\"")
        func rights() throws {
            let (handle, object) = try VMOFixture.patterned(pages: 1)
            var writeOnly: Zircon.Handle?
            #expect(Zircon.handleDuplicate(handle, rights: .write, &writeOnly) == .ok)
            #expect(VMOFixture.write(try #require(writeOnly), 0, [9]) == .ok)
            #expect(try object.read(count: 1, at: 0) == [9])
            var readOnly: Zircon.Handle?
            #expect(Zircon.handleDuplicate(handle, rights: Zircon.Rights.defaultVMO.subtracting(.write), &readOnly) == .ok)
            #expect(VMOFixture.write(try #require(readOnly), 0, [8]) == .accessDenied)
            #expect(try object.read(count: 1, at: 0) == [9])
            // The order: bad handle, wrong type, rights, then the range.
            #expect(VMOFixture.write(.invalid, 0, [1]) == .badHandle)
            #expect(VMOFixture.write(Zircon.Handle.event(rights: []), 0, [1]) == .wrongType)
            #expect(VMOFixture.write(try #require(readOnly), UInt64.max, [1]) == .accessDenied)
            #expect(Zircon.vmoWrite(try #require(readOnly), buffer: nil, offset: 0, bufferSize: 1) == .accessDenied)
            let fixture = try Fixture()
            #expect(VMOFixture.write(try VMOFixture.process(fixture), 0, [1]) == .wrongType)
            #expect(Zircon.handleClose(handle) == .ok)
            #expect(VMOFixture.write(handle, 0, [1]) == .badHandle)
        }

        // The object's own rights apply underneath the Zircon rights.
        @Test("\"ZX_ERR_ACCESS_DENIED handle does not have the ZX_RIGHT_WRITE right.\" (a read-only object)")
        func readOnlyObject() throws {
            let object = try MemoryObject(size: UInt64(page), name: "vmo-read-only")
            let readOnly = try object.duplicate(rights: .read)
            #expect(Zircon.Handle(vmo: readOnly).rights == Zircon.Rights.defaultVMO.subtracting(.write).union(.resize))
            let forced = Zircon.Handle(vmo: readOnly, rights: .defaultVMO)
            #expect(VMOFixture.write(forced, 0, [1]) == .accessDenied)
            #expect(VMOFixture.read(forced, 0, 1).bytes == [0])
        }

        // Zircon has no seals. A write seal takes the write right away from every holder of the
        // object, so it is reported like a handle without ZX_RIGHT_WRITE.
        @Test("\"ZX_ERR_ACCESS_DENIED handle does not have the ZX_RIGHT_WRITE right.\" (a memfd sealed with F_SEAL_WRITE or F_SEAL_FUTURE_WRITE)",
              arguments: [Seals.write, .futureWrite])
        func writeSealed(seal: Seals) throws {
            let (handle, object) = try VMOFixture.patterned(pages: 1, options: .resizable)
            try object.addSeals(seal)
            #expect(handle.rights.contains(.write))
            #expect(VMOFixture.write(handle, 0, [1, 2, 3]) == .accessDenied)
            #expect(try object.read(count: 3, at: 0) == VMOFixture.pattern(0, 3))
            // Reads are unaffected.
            #expect(VMOFixture.read(handle, 0, 3).status == .ok)
        }

        @Test("\"ZX_ERR_OUT_OF_RANGE offset + buffer_size is greater than the size of the VMO.\" (a write never grows the VMO)",
              arguments: [Zircon.VMOOptions.resizable, []])
        func neverGrows(options: Zircon.VMOOptions) throws {
            let (handle, object) = try VMOFixture.patterned(pages: 2, options: options)
            let size = UInt64(2 * page)
            for (offset, count) in [(size, 1), (size - 1, 2), (size - 100, 4 * page), (size + 20000, 10)] {
                #expect(VMOFixture.write(handle, offset, [UInt8](repeating: 0xFF, count: count)) == .outOfRange)
            }
            #expect(VMOFixture.write(handle, UInt64.max, [1, 2]) == .outOfRange)
            #expect(Zircon.vmoWrite(handle, buffer: nil, offset: size + 1, bufferSize: 0) == .outOfRange)
            #expect(Zircon.vmoWrite(handle, buffer: nil, offset: size, bufferSize: 0) == .ok)
            var now: UInt64 = 0
            #expect(Zircon.vmoGetSize(handle, size: &now) == .ok)
            #expect(now == size)
            // Nothing was written, not even the part inside the VMO.
            #expect(try object.read(count: Int(size), at: 0) == VMOFixture.pattern(0, Int(size)))
        }

        @Test("\"ZX_ERR_INVALID_ARGS buffer is an invalid pointer or NULL.\"")
        func invalidArguments() throws {
            let (handle, object) = try VMOFixture.patterned(pages: 1)
            #expect(Zircon.vmoWrite(handle, buffer: nil, offset: 0, bufferSize: 8) == .invalidArgs)
            #expect(Zircon.vmoWrite(handle, buffer: nil, offset: UInt64(page), bufferSize: 8) == .outOfRange)
            #expect(Zircon.vmoWrite(handle, buffer: nil as UnsafeRawBufferPointer?, offset: 0) == .ok)
            // A mapped page this process cannot read.
            let none = try LocalPages(prot: PROT_NONE)
            #expect(Zircon.vmoWrite(handle, buffer: none.buffer, offset: 0) == .invalidArgs)
            #expect(try object.read(count: 16, at: 0) == VMOFixture.pattern(0, 16))
        }

        @Test("\"ZX_ERR_NOT_FOUND buffer address does not map to address in address space.\"")
        func bufferNotMapped() throws {
            let (handle, _) = try VMOFixture.patterned(pages: 2)
            let status = try VMOFixture.withUnmappedPage { hole in
                Zircon.vmoWrite(handle, buffer: UnsafeRawBufferPointer(start: hole, count: 64), offset: 0)
            }
            #expect(status == .notFound)
            let straddling = try VMOFixture.withUnmappedPage { hole in
                Zircon.vmoWrite(handle, buffer: UnsafeRawBufferPointer(start: hole - 32, count: 64), offset: 0)
            }
            #expect(straddling == .notFound)
            let kernel = try #require(UnsafeRawPointer(bitPattern: UInt(0xFFFF_8000_0000_0000)))
            #expect(Zircon.vmoWrite(handle, buffer: kernel, offset: 0, bufferSize: 8) == .notFound)
        }

        // Writes to the object behind another process's shared mapping change what that process sees.
        @Test("\"zx_vmo_write() attempts to write exactly buffer_size bytes to a VMO at offset.\" (the memfd behind the fixture's mapping)")
        func writesReachTheMappingProcess() throws {
            let fixture = try Fixture()
            let memfd = try fixture.layout.region("memfd")
            let (vmo, offset) = try Zircon.Handle.vmo(mappedAt: memfd.address + 4096, in: VMOFixture.process(fixture))
            #expect(vmo.rights.contains(.write))
            #expect(VMOFixture.write(vmo, offset + 10, [1, 2, 3, 4]) == .ok)
            #expect(try fixture.selfRead(memfd.address + 4096 + 8, 8) == [0xC1, 0xC1, 1, 2, 3, 4, 0xC1, 0xC1])
            // Past the 6144-byte object, inside the 4-page mapping.
            #expect(VMOFixture.write(vmo, 6144, [1]) == .outOfRange)
            #expect(VMOFixture.write(vmo, 6140, [1, 2, 3, 4, 5]) == .outOfRange)
            var size: UInt64 = 0
            #expect(Zircon.vmoGetSize(vmo, size: &size) == .ok)
            #expect(size == 6144)
        }

        // A hugetlbfs file can be written only through a mapping: pwrite gives EINVAL.
        @Test("\"ZX_ERR_BAD_STATE VMO has been marked uncached and is not directly writable.\" (a hugetlbfs memfd)",
              .enabled(if: VMOSurface.hugetlbMemfd() != nil, "MFD_HUGETLB is not available"))
        func hugetlbIsNotDirectlyWritable() throws {
            let object = try #require(VMOSurface.hugetlbMemfd())
            let handle = Zircon.Handle(vmo: object)
            #expect(VMOFixture.write(handle, 0, [1, 2, 3]) == .badState)
            // Reading it works: its holes read as zero.
            let read = VMOFixture.read(handle, 0, 16)
            #expect(read.status == .ok)
            #expect(read.bytes == [UInt8](repeating: 0, count: 16))
        }

        @Test("\"ZX_ERR_BAD_STATE VMO has been marked uncached and is not directly writable.\" (secret memory)",
              .requiresSecretMemory)
        func secretMemoryIsNotDirectlyWritable() throws {
            let handle = Zircon.Handle(vmo: try VMOFixture.secretObject(size: UInt64(page)))
            #expect(VMOFixture.write(handle, 0, [1]) == .badState)
        }

        // A full filesystem: a tmpfs of 64 KiB holding a sparse 1 MiB object; writing its pages needs
        // memory the filesystem does not have (ENOSPC).
        @Test("\"ZX_ERR_NO_MEMORY Failure to allocate system memory to complete write.\"",
              .enabled(if: ScratchMount.tmpfsAvailable, "needs root to mount a tmpfs"))
        func noMemory() throws {
            let mount = try ScratchMount(tmpfsSize: "64k")
            defer { mount.unmount() }
            let path = mount.directory + "/object"
            #expect(FileManager.default.createFile(atPath: path, contents: nil))
            let object = try MemoryObject(opening: path, rights: .readWrite)
            defer { object.close() }
            try object.resize(to: 1 << 20)
            let handle = Zircon.Handle(vmo: object)
            #expect(VMOFixture.write(handle, 0, [UInt8](repeating: 1, count: 512 << 10)) == .noMemory)
        }
    }

    @Suite("Zircon surface: zx_vmo_create, zx_vmo_get_size, zx_vmo_set_size")
    struct ZirconVMOSizeSurfaceTests {
        @Test func createRoundsUpAndGivesDefaultRights() throws {
            var out: Zircon.Handle?
            #expect(Zircon.vmoCreate(size: 100, &out) == .ok)
            let handle = try #require(out)
            #expect(handle.objectType == .vmo)
            #expect(handle.rights == .defaultVMO)
            #expect(Zircon.Rights.defaultVMO.rawValue == 0xD0EF)
            var size: UInt64 = 0
            #expect(Zircon.vmoGetSize(handle, size: &size) == .ok)
            #expect(size == UInt64(page))
            // A new VMO reads as zero, up to the rounded size.
            let all = VMOFixture.read(handle, 0, page)
            #expect(all.status == .ok)
            #expect(all.bytes.allSatisfy { $0 == 0 })
            // Size 0 is allowed.
            var empty: Zircon.Handle?
            #expect(Zircon.vmoCreate(size: 0, &empty) == .ok)
            #expect(Zircon.vmoGetSize(try #require(empty), size: &size) == .ok)
            #expect(size == 0)
            #expect(VMOFixture.read(try #require(empty), 0, 0).status == .ok)
            #expect(VMOFixture.read(try #require(empty), 0, 1).status == .outOfRange)
            // Resizable: ZX_RIGHT_RESIZE too.
            var resizable: Zircon.Handle?
            #expect(Zircon.vmoCreate(size: UInt64(page), options: .resizable, &resizable) == .ok)
            #expect(try #require(resizable).rights == Zircon.Rights.defaultVMO.union(.resize))
            #expect(Zircon.Rights.resize.rawValue == 1 << 22)
        }

        @Test func createOptions() throws {
            var out: Zircon.Handle?
            #expect(Zircon.vmoCreate(size: 4096, options: Zircon.VMOOptions(rawValue: 1 << 0), &out) == .invalidArgs)
            #expect(Zircon.vmoCreate(size: 4096, options: Zircon.VMOOptions(rawValue: 1 << 3), &out) == .invalidArgs)
            #expect(Zircon.vmoCreate(size: 4096, options: [.resizable, .unbounded], &out) == .invalidArgs)
            #expect(Zircon.vmoCreate(size: 4096, options: .discardable, &out) == .notSupported)
            #expect(Zircon.vmoCreate(size: UInt64.max, &out) == .outOfRange)
            #expect(Zircon.vmoCreate(size: UInt64(Int64.max), &out) == .outOfRange)
            #expect(out == nil)
            // Unbounded: the largest size, sparse; reads anywhere give zeros.
            #expect(Zircon.vmoCreate(size: 10, options: .unbounded, &out) == .ok)
            let unbounded = try #require(out)
            var size: UInt64 = 0
            #expect(Zircon.vmoGetSize(unbounded, size: &size) == .ok)
            #expect(size == Zircon.maxVMOSize)
            #expect(VMOFixture.write(unbounded, size - 8, [1, 2, 3, 4, 5, 6, 7, 8]) == .ok)
            #expect(VMOFixture.read(unbounded, size - 16, 16).bytes == [0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
            #expect(VMOFixture.read(unbounded, size, 1).status == .outOfRange)
        }

        @Test func getSizeNeedsNoRights() throws {
            let (handle, _) = try VMOFixture.patterned(pages: 3)
            var none: Zircon.Handle?
            #expect(Zircon.handleDuplicate(handle, rights: [], &none) == .ok)
            var size: UInt64 = 7
            #expect(Zircon.vmoGetSize(try #require(none), size: &size) == .ok)
            #expect(size == UInt64(3 * page))
            size = 7
            #expect(Zircon.vmoGetSize(.invalid, size: &size) == .badHandle)
            #expect(Zircon.vmoGetSize(Zircon.Handle.event(), size: &size) == .wrongType)
            #expect(size == 7)
        }

        @Test func setSizeOfAResizableVMO() throws {
            let (handle, object) = try VMOFixture.patterned(pages: 2, options: .resizable)
            var size: UInt64 = 0
            #expect(Zircon.vmoSetSize(handle, size: UInt64(4 * page)) == .ok)
            #expect(Zircon.vmoGetSize(handle, size: &size) == .ok)
            #expect(size == UInt64(4 * page))
            // The new bytes read as zero; the old ones are kept.
            #expect(VMOFixture.read(handle, UInt64(2 * page), 2 * page).bytes.allSatisfy { $0 == 0 })
            #expect(try object.read(count: 2 * page, at: 0) == VMOFixture.pattern(0, 2 * page))
            // Rounded up to the page size.
            #expect(Zircon.vmoSetSize(handle, size: 1) == .ok)
            #expect(Zircon.vmoGetSize(handle, size: &size) == .ok)
            #expect(size == UInt64(page))
            #expect(VMOFixture.read(handle, UInt64(page - 1), 2).status == .outOfRange)
            #expect(Zircon.vmoSetSize(handle, size: 0) == .ok)
            #expect(Zircon.vmoGetSize(handle, size: &size) == .ok)
            #expect(size == 0)
            // Rounding overflows, or the size is too large.
            #expect(Zircon.vmoSetSize(handle, size: UInt64.max) == .outOfRange)
            #expect(Zircon.vmoSetSize(handle, size: Zircon.maxVMOSize + 1) == .outOfRange)
        }

        @Test func setSizeRights() throws {
            let (handle, _) = try VMOFixture.patterned(pages: 1, options: .resizable)
            var noResize: Zircon.Handle?
            #expect(Zircon.handleDuplicate(handle, rights: .defaultVMO, &noResize) == .ok)
            #expect(Zircon.vmoSetSize(try #require(noResize), size: UInt64(2 * page)) == .accessDenied)
            var noWrite: Zircon.Handle?
            #expect(Zircon.handleDuplicate(handle, rights: Zircon.Rights.defaultVMO.union(.resize).subtracting(.write), &noWrite) == .ok)
            #expect(Zircon.vmoSetSize(try #require(noWrite), size: UInt64(2 * page)) == .accessDenied)
            #expect(Zircon.vmoSetSize(.invalid, size: 0) == .badHandle)
            #expect(Zircon.vmoSetSize(Zircon.Handle.event(), size: 0) == .wrongType)
            var size: UInt64 = 0
            #expect(Zircon.vmoGetSize(handle, size: &size) == .ok)
            #expect(size == UInt64(page))
        }

        // ZX_ERR_UNAVAILABLE is Zircon's status for resizing a VMO created without
        // ZX_VMO_RESIZABLE; on Linux, a memfd with a size seal.
        @Test func setSizeOfANonResizableVMO() throws {
            let (handle, object) = try VMOFixture.patterned(pages: 1)
            #expect(try object.seals().isSuperset(of: .fixedSize))
            #expect(!handle.rights.contains(.resize))
            let vmo = try handle.object(Zircon.VMO.self, requiring: []).get()
            #expect(!vmo.isResizable)
            #expect(Zircon.vmoSetSize(handle, size: UInt64(2 * page)) == .unavailable)
            #expect(Zircon.vmoSetSize(handle, size: UInt64(page)) == .unavailable)
            // Rounding overflow is checked before.
            #expect(Zircon.vmoSetSize(handle, size: UInt64.max) == .outOfRange)
            // Any size seal makes an existing memfd non-resizable, even for a handle with RESIZE.
            let memfd = try MemoryObject(size: UInt64(page), name: "vmo-grow-sealed")
            let wrapped = Zircon.Handle(vmo: memfd)
            #expect(wrapped.rights.contains(.resize))
            try memfd.addSeals(.grow)
            #expect(Zircon.vmoSetSize(wrapped, size: UInt64(2 * page)) == .unavailable)
            #expect(Zircon.vmoSetSize(wrapped, size: 0) == .unavailable)
            #expect(Zircon.Handle(vmo: memfd).rights == .defaultVMO)
        }
    }

    @Suite("Zircon surface: VMO handles for objects and mappings")
    struct ZirconVMOHandleSurfaceTests {
        @Test func handleForAMemoryObject() throws {
            let object = try MemoryObject(size: 8192, name: "vmo-wrapped")
            try object.write([1, 2, 3], at: 4096)
            let handle = Zircon.Handle(vmo: object)
            #expect(handle.objectType == .vmo)
            #expect(handle.rights == Zircon.Rights.defaultVMO.union(.resize))
            #expect(VMOFixture.read(handle, 4096, 3).bytes == [1, 2, 3])
            #expect(Zircon.Handle(vmo: object, rights: .read).rights == .read)
        }

        @Test func handleForAMapping() throws {
            let fixture = try Fixture()
            let process = try VMOFixture.process(fixture)
            let file = try fixture.layout.region("truncatedFile")
            let (vmo, offset) = try Zircon.Handle.vmo(mappedAt: file.address + 100, in: process)
            #expect(offset == 100)
            #expect(VMOFixture.read(vmo, 100, 10).bytes == [UInt8](repeating: 0xB0, count: 10))
            // Read-only when the process handle cannot write, or when asked.
            var readOnlyProcess: Zircon.Handle?
            #expect(Zircon.handleDuplicate(process, rights: Zircon.Rights.defaultProcess.subtracting(.write), &readOnlyProcess) == .ok)
            let (readOnly, _) = try Zircon.Handle.vmo(mappedAt: file.address, in: try #require(readOnlyProcess))
            #expect(!readOnly.rights.contains(.write))
            #expect(VMOFixture.write(readOnly, 0, [1]) == .accessDenied)
            #expect(throws: Zircon.Status.accessDenied) {
                try Zircon.Handle.vmo(mappedAt: file.address, in: try #require(readOnlyProcess), rights: .defaultVMO)
            }
            // Errors.
            var noRead: Zircon.Handle?
            #expect(Zircon.handleDuplicate(process, rights: Zircon.Rights.defaultProcess.subtracting(.read), &noRead) == .ok)
            #expect(throws: Zircon.Status.accessDenied) { try Zircon.Handle.vmo(mappedAt: file.address, in: try #require(noRead)) }
            #expect(throws: Zircon.Status.wrongType) { try Zircon.Handle.vmo(mappedAt: file.address, in: Zircon.Handle.event()) }
            #expect(throws: Zircon.Status.badHandle) { try Zircon.Handle.vmo(mappedAt: file.address, in: .invalid) }
            let pattern = try fixture.layout.region("pattern")
            #expect(throws: Zircon.Status.wrongType) { try Zircon.Handle.vmo(mappedAt: pattern.address, in: process) }
            #expect(throws: Zircon.Status.notFound) { try Zircon.Handle.vmo(mappedAt: 0x1000, in: process) }
            #expect(throws: Zircon.Status.notFound) { try Zircon.Handle.vmo(mappedAt: UInt64.max, in: process) }
        }
    }
}

private var page: Int { Conformance.page }

enum VMOSurface {
    /// A memfd on hugetlbfs of one huge page (2 MiB), or `nil` when the kernel has none.
    static func hugetlbMemfd() -> MemoryObject? {
        let mfdHugetlb: UInt32 = 0x0004 // MFD_HUGETLB
        let fd = CProcessMemoryTestSupport_memfd_create("vmo-hugetlb", CProcessMemoryTestSupport_MFD_CLOEXEC | mfdHugetlb)
        guard fd >= 0 else { return nil }
        guard ftruncate(fd, 2 << 20) == 0 else {
            Glibc.close(fd)
            return nil
        }
        return try? MemoryObject(adopting: FileDescriptor(rawValue: fd))
    }
}
