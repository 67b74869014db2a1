import CProcessMemoryTestSupport
import Foundation
import Glibc
import ProcessMemory
import SystemPackage
import ProcessMemoryTestSupport
import ProcessMemoryTestTraits
import Testing
@testable import ProcessMemoryInterfaces

// Conformance with seed 004, zx_vmo_read(), through the Zircon surface (Zircon.vmoRead) over real
// memfds, the fixture's memfd and file mappings, secret memory, and a file on an ext4 filesystem that
// has been shut down. One test per documented behaviour and error; each display name quotes the
// sentence it checks.
//
// Conditions without a Linux counterpart, and what is tested instead:
//
// - BAD_STATE, "VMO has been marked uncached and is not directly readable, or the VMO is backed by a
//   pager and the pager or the VMO is in a bad state preventing requested pages from being
//   populated". Linux objects have no cache policy and no user pager. The nearest case is secret
//   memory (memfd_secret): its pages are removed from the kernel's direct map, so the kernel cannot
//   read them for anyone (pread gives ESPIPE) and only a mapping reaches them. That is tested. An
//   object whose process has exited is NOT in a bad state (the descriptor keeps it alive), which is
//   tested too.
// - IO, "the pager encountered an I/O error while reading in the requested pages". Linux's pager is
//   the filesystem. As root, the test mounts an ext4 image through a loop device and shuts the
//   filesystem down (EXT4_IOC_SHUTDOWN): every read of its files then fails with EIO. Without root,
//   loop devices or mkfs.ext4 that test is disabled, and the EIO → .io → ZX_ERR_IO translation is
//   still checked by a unit test. (No device-mapper error target or fault injection exists here.)
// - IO_DATA_INTEGRITY, "the contents that were read in by the pager are corrupted". Linux reports
//   corrupt contents (btrfs checksums, fs-verity) as EIO, indistinguishable from other I/O errors,
//   and this kernel has no fs-verity (CONFIG_FS_VERITY is off: FS_IOC_ENABLE_VERITY is refused). So
//   the status can never be returned; a unit test checks that no core error produces it.

@Suite("Conformance: zx_vmo_read (seed 004)")
struct ZirconVMOReadConformanceTests {
    // MARK: behaviour

    @Test("\"zx_vmo_read() attempts to read exactly buffer_size bytes from a VMO at offset.\"")
    func readsExactlyAtOffset() throws {
        let (handle, object) = try VMOFixture.patterned(pages: 4)
        for (offset, count) in [(0, 1), (0, 4 * page), (5000, 300), (page - 3, 7), (4 * page - 1, 1)] {
            let result = VMOFixture.read(handle, UInt64(offset), count)
            #expect(result.status == .ok)
            #expect(result.bytes == VMOFixture.pattern(offset, count))
        }
        // The same bytes as the object itself holds.
        let held = try object.read(count: 64, at: 100)
        #expect(VMOFixture.read(handle, 100, 64).bytes == held)

        // The object behind another process's memfd mapping: 6144 bytes inside a 4-page mapping.
        let fixture = try Fixture()
        let memfd = try fixture.layout.region("memfd")
        let (vmo, offset) = try Zircon.Handle.vmo(mappedAt: memfd.address + 5000, in: VMOFixture.process(fixture))
        #expect(offset == 5000)
        let whole = VMOFixture.read(vmo, 0, 6144)
        #expect(whole.status == .ok)
        #expect(whole.bytes == [UInt8](repeating: 0xC0, count: 4096) + [UInt8](repeating: 0xC1, count: 2048))
        let inside = VMOFixture.read(vmo, offset, 1000)
        #expect(inside.status == .ok)
        #expect(inside.bytes == [UInt8](repeating: 0xC1, count: 1000))
    }

    @Test("\"buffer pointer to a user buffer to read bytes into.\"")
    func readsIntoTheBuffer() throws {
        let (handle, _) = try VMOFixture.patterned(pages: 2)
        // A 100-byte buffer inside a 200-byte array: only those 100 bytes change.
        var bytes = [UInt8](repeating: 0xEE, count: 200)
        let status = bytes.withUnsafeMutableBytes { raw in
            Zircon.vmoRead(handle, buffer: UnsafeMutableRawBufferPointer(rebasing: raw[50..<150]), offset: 10)
        }
        #expect(status == .ok)
        #expect(bytes[0..<50].allSatisfy { $0 == 0xEE })
        #expect(Array(bytes[50..<150]) == VMOFixture.pattern(10, 100))
        #expect(bytes[150...].allSatisfy { $0 == 0xEE })
    }

    @Test("\"buffer_size number of bytes to attempt to read. buffer buffer should be large enough for at least this many bytes.\"")
    func readsBufferSizeBytes() throws {
        let (handle, _) = try VMOFixture.patterned(pages: 2)
        // The C shape: a pointer to 300 bytes, buffer_size 100.
        var bytes = [UInt8](repeating: 0xEE, count: 300)
        let status = bytes.withUnsafeMutableBytes { raw in
            Zircon.vmoRead(handle, buffer: raw.baseAddress, offset: 4000, bufferSize: 100)
        }
        #expect(status == .ok)
        #expect(Array(bytes[0..<100]) == VMOFixture.pattern(4000, 100))
        #expect(bytes[100...].allSatisfy { $0 == 0xEE })
    }

    // MARK: rights

    @Test("\"handle must be of type ZX_OBJ_TYPE_VMO and have ZX_RIGHT_READ.\"")
    func readRightSuffices() throws {
        let (full, _) = try VMOFixture.patterned(pages: 1)
        #expect(full.objectType == .vmo)
        var duplicate: Zircon.Handle?
        #expect(Zircon.handleDuplicate(full, rights: .read, &duplicate) == .ok)
        let minimal = try #require(duplicate)
        #expect(minimal.rights == .read)
        let result = VMOFixture.read(minimal, 0, 256)
        #expect(result.status == .ok)
        #expect(result.bytes == VMOFixture.pattern(0, 256))
    }

    // MARK: return value

    @Test("\"zx_vmo_read() returns ZX_OK on success, and exactly buffer_size bytes will have been written to buffer.\"")
    func successWritesExactlyBufferSize() throws {
        let (handle, _) = try VMOFixture.patterned(pages: 2)
        var bytes = [UInt8](repeating: 0xEE, count: 2 * page + 16)
        let status = bytes.withUnsafeMutableBytes { raw in
            Zircon.vmoRead(handle, buffer: UnsafeMutableRawBufferPointer(rebasing: raw[0..<(2 * page)]), offset: 0)
        }
        #expect(status == .ok)
        #expect(status.rawValue == 0)
        #expect(Array(bytes[0..<(2 * page)]) == VMOFixture.pattern(0, 2 * page))
        #expect(bytes[(2 * page)...].allSatisfy { $0 == 0xEE })
    }

    @Test("\"In the event of failure, a negative error value is returned, and the number of bytes written to buffer is undefined.\"")
    func failuresAreNegative() throws {
        let (handle, _) = try VMOFixture.patterned(pages: 1)
        var noRead: Zircon.Handle?
        #expect(Zircon.handleDuplicate(handle, rights: .write, &noRead) == .ok)
        let local = try LocalPages(prot: PROT_READ)
        let failures: [Zircon.Status] = [
            VMOFixture.read(handle, UInt64(page), 1).status,
            VMOFixture.read(try #require(noRead), 0, 1).status,
            VMOFixture.read(Zircon.Handle.event(), 0, 1).status,
            VMOFixture.read(.invalid, 0, 1).status,
            Zircon.vmoRead(handle, buffer: nil, offset: 0, bufferSize: 1),
            Zircon.vmoRead(handle, buffer: local.mutableBuffer, offset: 0),
        ]
        #expect(failures == [.outOfRange, .accessDenied, .wrongType, .badHandle, .invalidArgs, .invalidArgs])
        #expect(failures.allSatisfy { $0.rawValue < 0 && !$0.isOK })
    }

    // MARK: errors

    @Test("\"ZX_ERR_BAD_HANDLE handle is not a valid handle.\"")
    func badHandle() throws {
        let (handle, object) = try VMOFixture.patterned(pages: 1)
        #expect(VMOFixture.read(.invalid, 0, 16).status == .badHandle)
        var duplicate: Zircon.Handle?
        #expect(Zircon.handleDuplicate(handle, rights: .sameRights, &duplicate) == .ok)
        #expect(Zircon.handleClose(handle) == .ok)
        let closed = VMOFixture.read(handle, 0, 16)
        #expect(closed.status == .badHandle)
        #expect(closed.bytes.allSatisfy { $0 == 0xEE })
        // Checked before the rights and the buffer.
        #expect(Zircon.vmoRead(handle, buffer: nil, offset: 0, bufferSize: 16) == .badHandle)
        // The duplicate still refers to the object.
        let copy = try #require(duplicate)
        #expect(VMOFixture.read(copy, 0, 16).status == .ok)
        // The memfd closed underneath: the handle no longer refers to an object.
        object.close()
        #expect(VMOFixture.read(copy, 0, 16).status == .badHandle)
    }

    @Test("\"ZX_ERR_WRONG_TYPE handle is not a VMO handle.\"")
    func wrongType() throws {
        #expect(VMOFixture.read(Zircon.Handle.event(), 0, 16).status == .wrongType)
        let fixture = try Fixture()
        let process = try VMOFixture.process(fixture)
        let result = VMOFixture.read(process, 0, 16)
        #expect(result.status == .wrongType)
        #expect(result.bytes.allSatisfy { $0 == 0xEE })
        // Before the rights: an event handle without any right is still the wrong type.
        #expect(VMOFixture.read(Zircon.Handle.event(rights: []), 0, 16).status == .wrongType)
    }

    @Test("\"ZX_ERR_ACCESS_DENIED handle does not have the ZX_RIGHT_READ right.\"")
    func withoutReadRight() throws {
        let (handle, _) = try VMOFixture.patterned(pages: 1)
        var duplicate: Zircon.Handle?
        #expect(Zircon.handleDuplicate(handle, rights: Zircon.Rights.defaultVMO.subtracting(.read), &duplicate) == .ok)
        let denied = try #require(duplicate)
        let result = VMOFixture.read(denied, 0, 64)
        #expect(result.status == .accessDenied)
        #expect(result.bytes.allSatisfy { $0 == 0xEE })
        // Before the range and the buffer.
        #expect(VMOFixture.read(denied, UInt64.max, 64).status == .accessDenied)
        #expect(Zircon.vmoRead(denied, buffer: nil, offset: 0, bufferSize: 64) == .accessDenied)
        // A handle to a write-only object: the object's own rights apply underneath.
        let object = try MemoryObject(size: UInt64(page), name: "vmo-write-only")
        let writeOnly = try MemoryObject(opening: "/proc/self/fd/\(object.info().descriptor)", rights: .write)
        let forced = Zircon.Handle(vmo: writeOnly, rights: .defaultVMO)
        #expect(VMOFixture.read(forced, 0, 16).status == .accessDenied)
    }

    @Test("\"ZX_ERR_INVALID_ARGS buffer is an invalid pointer or NULL.\"")
    func invalidArguments() throws {
        let (handle, _) = try VMOFixture.patterned(pages: 2)
        // NULL with a nonzero buffer_size.
        #expect(Zircon.vmoRead(handle, buffer: nil, offset: 0, bufferSize: 16) == .invalidArgs)
        // The range is checked first, as the kernel checks it before touching the buffer.
        #expect(Zircon.vmoRead(handle, buffer: nil, offset: UInt64(2 * page), bufferSize: 16) == .outOfRange)
        // NULL with buffer_size 0 copies nothing: ZX_OK, as in the Zircon kernel (a nil Swift
        // buffer is an empty one).
        #expect(Zircon.vmoRead(handle, buffer: nil, offset: 0, bufferSize: 0) == .ok)
        #expect(Zircon.vmoRead(handle, buffer: nil as UnsafeMutableRawBufferPointer?, offset: 0) == .ok)
        // A negative size is not a size.
        var byte: UInt8 = 0
        #expect(Zircon.vmoRead(handle, buffer: &byte, offset: 0, bufferSize: -1) == .invalidArgs)
        // An invalid pointer: mapped in this process, but not writable. pread fails with EFAULT;
        // the page is mapped, so this is not NOT_FOUND. (The Zircon kernel would pass on its page
        // fault's status; the document names this case "an invalid pointer".)
        let readOnly = try LocalPages(pages: 2, prot: PROT_READ)
        #expect(Zircon.vmoRead(handle, buffer: readOnly.mutableBuffer, offset: 0) == .invalidArgs)
        #expect(readOnly.bytes.allSatisfy { $0 == 0xA5 })
        let none = try LocalPages(prot: PROT_NONE)
        #expect(Zircon.vmoRead(handle, buffer: none.mutableBuffer, offset: 0) == .invalidArgs)
    }

    @Test("\"ZX_ERR_NOT_FOUND buffer address does not map to address in address space.\"")
    func bufferNotMapped() throws {
        let (handle, _) = try VMOFixture.patterned(pages: 4)
        // A page of this process that was mapped and then unmapped: pread into it gives EFAULT.
        let unmapped = try VMOFixture.withUnmappedPage { hole in
            Zircon.vmoRead(handle, buffer: UnsafeMutableRawBufferPointer(start: hole, count: page), offset: 0)
        }
        #expect(unmapped == .notFound)
        // A buffer whose first page is mapped and whose second is not.
        let straddling = try VMOFixture.withUnmappedPage { hole in
            Zircon.vmoRead(handle, buffer: UnsafeMutableRawBufferPointer(start: hole - 100, count: 200), offset: 0)
        }
        #expect(straddling == .notFound)
        let large = try VMOFixture.withUnmappedPage { hole in
            Zircon.vmoRead(handle, buffer: UnsafeMutableRawBufferPointer(start: hole - page, count: 3 * page), offset: 0)
        }
        #expect(large == .notFound)
        // Addresses where nothing can be mapped: below mmap_min_addr, and the kernel half.
        for address in [UInt(0x1000), UInt(0xFFFF_8000_0000_0000)] {
            let pointer = try #require(UnsafeMutableRawPointer(bitPattern: address))
            #expect(Zircon.vmoRead(handle, buffer: UnsafeMutableRawBufferPointer(start: pointer, count: 64), offset: 0) == .notFound)
            #expect(Zircon.vmoRead(handle, buffer: pointer, offset: 0, bufferSize: 64) == .notFound)
        }
    }

    @Test("\"ZX_ERR_OUT_OF_RANGE offset + buffer_size is greater than the size of the VMO.\"")
    func outOfRange() throws {
        let (handle, _) = try VMOFixture.patterned(pages: 2)
        let size = UInt64(2 * page)
        var vmoSize: UInt64 = 0
        #expect(Zircon.vmoGetSize(handle, size: &vmoSize) == .ok)
        #expect(vmoSize == size)
        for (offset, count) in [(size, 1), (size - 1, 2), (size - 100, 200), (0, Int(size) + 1), (size + 4096, 16)] {
            let result = VMOFixture.read(handle, offset, count)
            #expect(result.status == .outOfRange, "offset \(offset), \(count) bytes")
            // The range is checked before any byte moves.
            #expect(result.bytes.allSatisfy { $0 == 0xEE })
        }
        // offset + buffer_size overflows 64 bits.
        #expect(VMOFixture.read(handle, UInt64.max, 2).status == .outOfRange)
        #expect(VMOFixture.read(handle, UInt64.max - 10, 100).status == .outOfRange)
        // Exactly up to the end is not greater than the size.
        let last = VMOFixture.read(handle, size - 100, 100)
        #expect(last.status == .ok)
        #expect(last.bytes == VMOFixture.pattern(Int(size) - 100, 100))
        #expect(VMOFixture.read(handle, 0, Int(size)).status == .ok)
        // An empty read at any offset up to the size (the end included) reads nothing and succeeds.
        for offset in [0, 100, size] {
            #expect(VMOFixture.read(handle, offset, 0).status == .ok)
            #expect(Zircon.vmoRead(handle, buffer: nil, offset: offset, bufferSize: 0) == .ok)
        }
        #expect(VMOFixture.read(handle, size + 1, 0).status == .outOfRange)
        #expect(VMOFixture.read(handle, UInt64.max, 0).status == .outOfRange)
    }

    // The fixture maps 4 pages of its memfd and of a file, both truncated to 6144 bytes: the VMO
    // size is the object's, not the mapping's.
    @Test("\"ZX_ERR_OUT_OF_RANGE offset + buffer_size is greater than the size of the VMO.\" (the objects behind the fixture's 4-page mappings of 6144-byte objects)", arguments: ["memfd", "truncatedFile"])
    func outOfRangeBehindMappings(region name: String) throws {
        let fixture = try Fixture()
        let region = try fixture.layout.region(name)
        let fileSize = try #require(region.fileSize)
        let (vmo, offset) = try Zircon.Handle.vmo(mappedAt: region.address, in: VMOFixture.process(fixture))
        #expect(offset == 0)
        var size: UInt64 = 0
        #expect(Zircon.vmoGetSize(vmo, size: &size) == .ok)
        #expect(size == fileSize)
        #expect(VMOFixture.read(vmo, 0, Int(fileSize)).status == .ok)
        #expect(VMOFixture.read(vmo, fileSize - 1, 1).status == .ok)
        #expect(VMOFixture.read(vmo, fileSize, 0).status == .ok)
        for (at, count) in [(fileSize, 1), (fileSize - 1, 2), (UInt64(6000), 200), (UInt64(8192), 1), (region.size - 1, 1)] {
            #expect(VMOFixture.read(vmo, at, count).status == .outOfRange, "offset \(at), \(count) bytes")
        }
        // Inside the mapping but past the object: the VMO of an address in the last page starts
        // past the end, so every nonempty read from there is out of range.
        let (tail, tailOffset) = try Zircon.Handle.vmo(mappedAt: region.address + region.size - 1, in: VMOFixture.process(fixture))
        #expect(tailOffset == region.size - 1)
        #expect(VMOFixture.read(tail, tailOffset, 1).status == .outOfRange)
    }

    // No Linux counterpart of an uncached VMO or a pager in a bad state; the nearest case is an
    // object the kernel itself cannot read, which only a mapping reaches (see the top of the file).
    @Test("\"ZX_ERR_BAD_STATE VMO has been marked uncached and is not directly readable, or the VMO is backed by a pager and the pager or the VMO is in a bad state preventing requested pages from being populated.\" (secret memory)",
          .requiresSecretMemory)
    func secretMemoryIsNotDirectlyReadable() throws {
        let secret = try VMOFixture.secretObject(size: UInt64(2 * page))
        let handle = Zircon.Handle(vmo: secret)
        var size: UInt64 = 0
        #expect(Zircon.vmoGetSize(handle, size: &size) == .ok)
        #expect(size == UInt64(2 * page))
        let result = VMOFixture.read(handle, 0, 64)
        #expect(result.status == .badState)
        #expect(result.bytes.allSatisfy { $0 == 0xEE })
        #expect(Zircon.vmoWrite(handle, buffer: UnsafeRawBufferPointer(start: nil, count: 0), offset: 0) == .ok)
        #expect([UInt8](repeating: 1, count: 16).withUnsafeBytes { Zircon.vmoWrite(handle, buffer: $0, offset: 0) } == .badState)
        // The range is still checked first.
        #expect(VMOFixture.read(handle, UInt64(2 * page), 1).status == .outOfRange)
    }

    @Test("\"ZX_ERR_BAD_STATE … the VMO is in a bad state preventing requested pages from being populated.\" (not for an object whose process has exited: the VMO keeps it alive)")
    func objectOutlivesItsProcess() throws {
        let fixture = try Fixture()
        let memfd = try fixture.layout.region("memfd")
        let (vmo, _) = try Zircon.Handle.vmo(mappedAt: memfd.address, in: VMOFixture.process(fixture))
        fixture.kill()
        fixture.reap()
        let result = VMOFixture.read(vmo, 4096, 2048)
        #expect(result.status == .ok)
        #expect(result.bytes == [UInt8](repeating: 0xC1, count: 2048))
    }

    // A real I/O error: an ext4 filesystem on a loop device, shut down with EXT4_IOC_SHUTDOWN, fails
    // every read of its files with EIO (root only; see the top of the file).
    @Test("\"ZX_ERR_IO The VMO is backed by a pager and the pager encountered an I/O error while reading in the requested pages.\"",
          .enabled(if: ScratchMount.ext4Available, "needs root, a loop device and mkfs.ext4"))
    func ioErrorOfTheFilesystem() throws {
        let mount = try ScratchMount(ext4Bytes: 8 << 20)
        defer { mount.unmount() }
        let path = mount.directory + "/object"
        let contents = VMOFixture.pattern(0, 3 * page)
        try Data(contents).write(to: URL(fileURLWithPath: path))
        let object = try MemoryObject(opening: path, rights: .readWrite)
        defer { object.close() }
        let handle = Zircon.Handle(vmo: object)
        #expect(VMOFixture.read(handle, 0, 3 * page).bytes == contents)
        try mount.shutDown()
        let result = VMOFixture.read(handle, 0, 64)
        #expect(result.status == .io)
        #expect([UInt8](repeating: 1, count: 16).withUnsafeBytes { Zircon.vmoWrite(handle, buffer: $0, offset: 0) } == .io)
        // The core error underneath: EIO from pread.
        let error = try #require(throws: ProcessMemoryError.self) { try object.read(count: 64, at: 0) }
        #expect(error.code == .io)
        #expect(error.errno == .ioError)
    }

    @Test("\"ZX_ERR_IO The VMO is backed by a pager and the pager encountered an I/O error while reading in the requested pages.\" (the translation of EIO)")
    func ioErrorTranslation() {
        let eio = ProcessMemoryError(.io, address: 0, systemCall: SystemCall(.pread), errno: .ioError, message: "EIO")
        #expect(Zircon.status(vmo: eio, buffer: nil) == .io)
        // ESPIPE is also .io in the core, but means the object has no positional reads at all.
        let espipe = ProcessMemoryError(.io, address: 0, systemCall: SystemCall(.pread), errno: .illegalSeek, message: "ESPIPE")
        #expect(Zircon.status(vmo: espipe, buffer: nil) == .badState)
    }

    // No Linux counterpart: corrupt contents are reported as EIO (see the top of the file).
    @Test("\"ZX_ERR_IO_DATA_INTEGRITY The VMO is backed by a pager and the contents that were read in by the pager are corrupted.\" (cannot arise on Linux)")
    func dataIntegrityCannotArise() {
        for code in ProcessMemoryError.Code.allCases {
            for errno: Errno? in [nil, .ioError, .badAddress, .invalidArgument, .illegalSeek, .noSpace] {
                let error = ProcessMemoryError(code, address: 0, systemCall: SystemCall(.pread), errno: errno, message: "")
                #expect(Zircon.status(vmo: error, buffer: nil) != .ioDataIntegrity)
            }
        }
    }
}

// MARK: - helpers

private var page: Int { Conformance.page }

/// Helpers for the VMO suites.
enum VMOFixture {
    /// The pattern byte at `offset` of a patterned VMO.
    static func patternByte(_ offset: Int) -> UInt8 { UInt8(truncatingIfNeeded: offset &* 7 &+ offset >> 8 &+ 1) }

    /// `count` pattern bytes from `offset`.
    static func pattern(_ offset: Int, _ count: Int) -> [UInt8] { (offset..<(offset + count)).map(patternByte) }

    /// A new VMO of `pages` pages (zx_vmo_create) holding the pattern, and its memory object.
    static func patterned(pages: Int, options: Zircon.VMOOptions = []) throws -> (Zircon.Handle, MemoryObject) {
        var out: Zircon.Handle?
        #expect(Zircon.vmoCreate(size: UInt64(pages * page), options: options, &out) == .ok)
        let handle = try #require(out)
        let vmo = try handle.object(Zircon.VMO.self, requiring: []).get()
        try vmo.memoryObject.write(pattern(0, pages * page), at: 0)
        return (handle, vmo.memoryObject)
    }

    /// The outcome of a read: the status and the buffer afterwards.
    struct Result {
        var status: Zircon.Status
        var bytes: [UInt8]
    }

    /// `zx_vmo_read` of `count` bytes at `offset` into a new buffer filled with `fill`.
    static func read(_ handle: Zircon.Handle, _ offset: UInt64, _ count: Int, fill: UInt8 = 0xEE) -> Result {
        var bytes = [UInt8](repeating: fill, count: count)
        let status = bytes.withUnsafeMutableBytes { Zircon.vmoRead(handle, buffer: $0, offset: offset) }
        return Result(status: status, bytes: bytes)
    }

    /// `zx_vmo_write` of `bytes` at `offset`.
    static func write(_ handle: Zircon.Handle, _ offset: UInt64, _ bytes: [UInt8]) -> Zircon.Status {
        bytes.withUnsafeBytes { Zircon.vmoWrite(handle, buffer: $0, offset: offset) }
    }

    /// A Zircon handle to the fixture process.
    static func process(_ fixture: Fixture, rights: Zircon.Rights = .defaultProcess) throws -> Zircon.Handle {
        try Zircon.Handle.open(koid: UInt64(fixture.pid), rights: rights)
    }

    /// Runs `body` with the address of a page of this process that was mapped and then unmapped,
    /// between two mapped pages. Another thread could map something there meanwhile; then the call
    /// is repeated with a new hole.
    static func withUnmappedPage<R>(_ body: (UnsafeMutableRawPointer) throws -> R) throws -> R {
        for _ in 0..<10 {
            guard let base = mmap(nil, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                  base != MAP_FAILED else { throw FixtureError.spawn(errno) }
            defer { munmap(base, 3 * page) }
            let hole = base + page
            munmap(hole, page)
            let result = try body(hole)
            // msync fails with ENOMEM for an unmapped page.
            if msync(hole, page, MS_ASYNC) == -1 && errno == ENOMEM { return result }
        }
        throw FixtureError.closed
    }

    /// A memory object for new secret memory of `size` bytes.
    static func secretObject(size: UInt64) throws -> MemoryObject {
        let fd = CProcessMemoryTestSupport_memfd_secret(0)
        guard fd >= 0 else { throw FixtureError.spawn(errno) }
        let object = try MemoryObject(adopting: FileDescriptor(rawValue: fd))
        try object.resize(to: size)
        return object
    }
}

/// A filesystem mounted on a new temporary directory for one test (root only).
final class ScratchMount {
    let directory: String
    private let image: String?
    private var mounted = true

    /// Whether an ext4 image can be made and mounted through a loop device here (tried once).
    static let ext4Available: Bool = {
        guard getuid() == 0, FileManager.default.fileExists(atPath: "/dev/loop-control"), mkfsExt4 != nil else { return false }
        guard let probe = try? ScratchMount(ext4Bytes: 4 << 20) else { return false }
        probe.unmount()
        return true
    }()

    /// Whether a tmpfs can be mounted here (tried once).
    static let tmpfsAvailable: Bool = {
        guard getuid() == 0, let probe = try? ScratchMount(tmpfsSize: "64k") else { return false }
        probe.unmount()
        return true
    }()

    static var mkfsExt4: String? {
        ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// A tmpfs of `size` (`64k`, …).
    init(tmpfsSize size: String) throws {
        directory = try Self.makeDirectory()
        image = nil
        guard Glibc.mount("tmpfs", directory, "tmpfs", 0, "size=\(size)") == 0 else {
            let code = errno
            rmdir(directory)
            throw FixtureError.spawn(code)
        }
    }

    /// A new ext4 filesystem of `bytes` bytes in an image file, mounted through a loop device.
    init(ext4Bytes bytes: Int) throws {
        directory = try Self.makeDirectory()
        let image = directory + ".img"
        self.image = image
        do {
            guard let mkfs = Self.mkfsExt4, FileManager.default.createFile(atPath: image, contents: nil),
                  truncate(image, off_t(bytes)) == 0 else { throw FixtureError.closed }
            try Self.run(mkfs, ["-q", "-F", image])
            try Self.run("/bin/mount", ["-o", "loop", image, directory])
        } catch {
            unlink(image)
            rmdir(directory)
            throw error
        }
    }

    deinit { unmount() }

    /// Shuts the ext4 filesystem down (`EXT4_IOC_SHUTDOWN`, without flushing the log): from now on
    /// every read and write of its files fails with `EIO`.
    func shutDown() throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { throw FixtureError.spawn(errno) }
        defer { Glibc.close(fd) }
        var flags: UInt32 = 2 // EXT4_GOING_FLAGS_NOLOGFLUSH
        let ext4IocShutdown: UInt = 0x8004_587D // _IOR('X', 125, __u32)
        guard CProcessMemoryTestSupport_ioctl_ptr(fd, ext4IocShutdown, &flags) == 0 else { throw FixtureError.spawn(errno) }
    }

    /// Unmounts (lazily, if something still holds a file) and removes the directory and image.
    func unmount() {
        guard mounted else { return }
        mounted = false
        if umount2(directory, 0) != 0 { umount2(directory, 2) } // MNT_DETACH
        rmdir(directory)
        if let image { unlink(image) }
    }

    private static func makeDirectory() throws -> String {
        var template = Array((NSTemporaryDirectory() + "/procmem-vmo-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw FixtureError.spawn(errno) }
        return String(cString: made)
    }

    private static func run(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw FixtureError.spawn(process.terminationStatus) }
    }
}
