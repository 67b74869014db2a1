import CProcessMemoryTestSupport
import Glibc

// Lays out the fixture's memory. Every region is its own mmap, placed in an `Arena`: one after another,
// one unmapped page apart, far below the usual mmap area. So neighbouring anonymous mappings never merge
// into one VMA (anonymous VMA names, which would also prevent that, need CONFIG_ANON_VMA_NAME), and no
// later mmap (ours, malloc's) can land in a gap or in the `hole` region's unmapped middle page: the
// kernel's top-down allocator always finds room higher up first.

private let mapFixedNoReplace: Int32 = 0x100000
private let arenaBase: UInt = 0x1000_0000_0000
private let arenaStride: UInt = 0x10_0000_0000

struct Arena {
    private(set) var cursor: UInt
    let pageSize: Int

    /// Finds `size` free bytes at one of the usual bases (or anywhere, as a last resort).
    ///
    /// `PROCMEM_FIXTURE_ARENA=kernel` skips the fixed bases: ThreadSanitizer keeps its shadow memory
    /// there and aborts on any mmap hint inside it (Scripts/sanitizers.sh sets it).
    static func find(size: Int, pageSize: Int) throws -> Arena {
        let fixedBases = getenv("PROCMEM_FIXTURE_ARENA").map { String(cString: $0) } == "kernel" ? 0 : 16
        for k in 0..<fixedBases {
            let base = arenaBase + UInt(k) * arenaStride
            if let p = try? mapMemory(size, prot: PROT_NONE, at: base, what: "arena") {
                munmap(p, size)
                return Arena(cursor: base, pageSize: pageSize)
            }
        }
        // Leave a free page on each side, so the first region cannot merge with a neighbour.
        let p = try mapMemory(size + 2 * pageSize, prot: PROT_NONE, what: "arena")
        munmap(p, size + 2 * pageSize)
        return Arena(cursor: UInt(bitPattern: p) + UInt(pageSize), pageSize: pageSize)
    }

    /// The address for the next region of `size` bytes; a one-page gap is left after it.
    mutating func take(_ size: Int) -> UInt {
        let address = cursor
        cursor += UInt(size + pageSize)
        return address
    }
}

struct Layout {
    let pageSize: Int
    var regions: [(String, JSON)] = []
    var values: [(String, JSON)] = []
    var plantedAddresses: [UInt] = []
    var codeAddress: UInt = 0
    var codeBytes = ""
    /// Descriptors kept open for the process lifetime.
    var openFDs: [Int32] = []
    /// The read-write descriptor of the `truncatedFile` temp file.
    var tempFileFD: Int32 = -1
    /// Where the `map` command places its mappings.
    var arena: Arena

    init(pageSize: Int, arena: Arena) {
        self.pageSize = pageSize
        self.arena = arena
    }

    func json(pid: pid_t, stackAddress: UInt) -> JSON {
        .object([
            ("pid", .int(Int64(pid))),
            ("pageSize", .size(pageSize)),
            ("regions", .object(regions)),
            ("code", .object([("address", .address(codeAddress)), ("bytes", .string(codeBytes))])),
            // 0xFEEDFACECAFEBEEF
            ("stack", .object([("address", .address(stackAddress)), ("value", .raw("18369614221190020847"))])),
            ("values", .object(values)),
            ("planted", .object([
                ("value", .raw("1592594996")),  // 0x5EED1234
                ("type", .string("u32")),
                ("addresses", .array(plantedAddresses.map { .address($0) })),
            ])),
        ])
    }
}

// MARK: - helpers

func mapMemory(_ size: Int, prot: Int32 = PROT_READ | PROT_WRITE,
               flags: Int32 = MAP_PRIVATE | MAP_ANONYMOUS, fd: Int32 = -1,
               at address: UInt? = nil, what: String) throws -> UnsafeMutableRawPointer {
    let hint = address.flatMap { UnsafeMutableRawPointer(bitPattern: $0) }
    let allFlags = address == nil ? flags : flags | mapFixedNoReplace
    guard let p = mmap(hint, size, prot, allFlags, fd, 0), p != UnsafeMutableRawPointer(bitPattern: -1) else {
        throw failure("mmap \(what)")
    }
    if let address, UInt(bitPattern: p) != address {
        munmap(p, size)  // kernel older than 4.17 treats the flag as a hint
        throw FixtureError(message: "mmap \(what): could not map at 0x\(String(address, radix: 16))")
    }
    return p
}

/// prctl(PR_SET_VMA_ANON_NAME); failures (no CONFIG_ANON_VMA_NAME) are ignored.
func nameMapping(_ p: UnsafeMutableRawPointer, _ size: Int, _ name: String) {
    _ = name.withCString { cname in
        CProcessMemoryTestSupport_prctl(CProcessMemoryTestSupport_PR_SET_VMA, UInt(CProcessMemoryTestSupport_PR_SET_VMA_ANON_NAME),
                             UInt(bitPattern: p), UInt(size), UInt(bitPattern: cname))
    }
}

private func region(_ p: UnsafeRawPointer, _ size: Int, _ extra: [(String, JSON)] = []) -> JSON {
    .object([("address", .address(UInt(bitPattern: p))), ("size", .size(size))] + extra)
}

private func fill(_ p: UnsafeMutableRawPointer, _ byte: UInt8, _ size: Int) {
    memset(p, Int32(byte), size)
}

/// Writes `pages` pages to fd, page k filled with `first + k`.
private func writePages(_ fd: Int32, pages: Int, pageSize: Int, first: UInt8, what: String) throws {
    for k in 0..<pages {
        let page = [UInt8](repeating: first &+ UInt8(k), count: pageSize)
        let ok = page.withUnsafeBytes { writeAll(fd, $0) }
        if !ok { throw failure("write \(what)") }
    }
}

/// 0x5EED1234 written byte by byte, so the u32 never sits in a register spill or heap object.
@inline(never)
private func plantSeed(_ p: UnsafeMutableRawPointer) {
    p.storeBytes(of: 0x34 as UInt8, toByteOffset: 0, as: UInt8.self)
    p.storeBytes(of: 0x12 as UInt8, toByteOffset: 1, as: UInt8.self)
    p.storeBytes(of: 0xED as UInt8, toByteOffset: 2, as: UInt8.self)
    p.storeBytes(of: 0x5E as UInt8, toByteOffset: 3, as: UInt8.self)
}

/// The function whose address and first bytes are reported as `code`.
@inline(never)
func fixtureCodeMarker(_ x: UInt64) -> UInt64 {
    (x &* 0x9E37_79B9_7F4A_7C15) ^ (x >> 29)
}

// MARK: - layout

func buildLayout(_ options: Options) throws -> Layout {
    let page = sysconf(Int32(_SC_PAGESIZE))
    guard page > 0 else { throw failure("sysconf(_SC_PAGESIZE)") }
    let rw = PROT_READ | PROT_WRITE

    // 1. pattern (mapped first: --pattern-at must not find the arena in its way)
    let patternSize = 16 * page
    var fixedPattern: UnsafeMutableRawPointer? = nil
    if let address = options.patternAt {
        fixedPattern = try mapMemory(patternSize, at: address, what: "pattern")
    }
    // Sizes of the arena regions, in pages, in order: pattern, values, planted, hole, protNone, readOnly,
    // truncatedFile, readOnlySharedFile, memfd, sharedAnon, guard, secret.
    let slots = (fixedPattern == nil ? [16] : []) + [1, 8, 3, 2, 1, 4, 1, 4, 2, 3, 1]
    var arena = try Arena.find(size: slots.reduce(0) { $0 + ($1 + 1) * page }, pageSize: page)
    var layout = Layout(pageSize: page, arena: arena)
    /// An anonymous (or file) mapping at the next arena slot.
    func map(_ size: Int, prot: Int32 = rw, flags: Int32 = MAP_PRIVATE | MAP_ANONYMOUS, fd: Int32 = -1,
             what: String) throws -> UnsafeMutableRawPointer {
        try mapMemory(size, prot: prot, flags: flags, fd: fd, at: arena.take(size), what: what)
    }
    let pattern = try fixedPattern ?? map(patternSize, what: "pattern")
    let patternBytes = pattern.assumingMemoryBound(to: UInt8.self)
    if let byte = options.fill {
        fill(pattern, byte, patternSize)
    } else {
        for i in 0..<patternSize {
            patternBytes[i] = UInt8(truncatingIfNeeded: (i &* 7 &+ (i >> 12)) & 0xff)
        }
    }
    nameMapping(pattern, patternSize, "procmem-pattern")
    layout.regions.append(("pattern", region(pattern, patternSize)))

    // 2. values
    let v = try map(page, what: "values")
    nameMapping(v, page, "procmem-values")
    v.storeBytes(of: 0xAB as UInt8, toByteOffset: 0, as: UInt8.self)
    v.storeBytes(of: 0xBEEF as UInt16, toByteOffset: 8, as: UInt16.self)
    v.storeBytes(of: 0xDEAD_BEEF as UInt32, toByteOffset: 16, as: UInt32.self)
    v.storeBytes(of: 0x0123_4567_89AB_CDEF as UInt64, toByteOffset: 24, as: UInt64.self)
    v.storeBytes(of: -5 as Int8, toByteOffset: 32, as: Int8.self)
    v.storeBytes(of: -1234 as Int16, toByteOffset: 40, as: Int16.self)
    v.storeBytes(of: -123_456_789 as Int32, toByteOffset: 48, as: Int32.self)
    v.storeBytes(of: -1_234_567_890_123 as Int64, toByteOffset: 56, as: Int64.self)
    v.storeBytes(of: 3.25 as Float, toByteOffset: 64, as: Float.self)
    v.storeBytes(of: -2.5e10 as Double, toByteOffset: 72, as: Double.self)
    let greeting = "procmem fixture says hello"
    _ = greeting.withCString { strcpy(v.advanced(by: 128).assumingMemoryBound(to: CChar.self), $0) }
    v.storeBytes(of: 7 as UInt32, toByteOffset: 256, as: UInt32.self)
    v.storeBytes(of: 9 as UInt32, toByteOffset: 260, as: UInt32.self)
    v.storeBytes(of: 0x1122_3344_5566_7788 as UInt64, toByteOffset: 264, as: UInt64.self)
    layout.regions.append(("values", region(v, page)))
    let base = UInt(bitPattern: v)
    func value(_ offset: UInt, _ text: String) -> JSON {
        .object([("address", .address(base + offset)), ("value", .raw(text))])
    }
    layout.values = [
        ("u8", value(0, "171")),
        ("u16", value(8, "48879")),
        ("u32", value(16, "3735928559")),
        ("u64", value(24, "81985529216486895")),
        ("i8", value(32, "-5")),
        ("i16", value(40, "-1234")),
        ("i32", value(48, "-123456789")),
        ("i64", value(56, "-1234567890123")),
        ("f32", value(64, "3.25")),
        ("f64", value(72, "-25000000000")),
        ("cstring", .object([("address", .address(base + 128)), ("value", .string(greeting))])),
        ("struct", .object([("address", .address(base + 256)), ("size", .size(16))])),
    ]

    // 3. planted
    let plantedSize = 8 * page
    let planted = try map(plantedSize, what: "planted")
    nameMapping(planted, plantedSize, "procmem-planted")
    for offset in [0, 4096 + 12, 8192 + 1000, 12288 + 4092, 16384 + 2048, 20480 + 8, 32764] {
        plantSeed(planted + offset)
        layout.plantedAddresses.append(UInt(bitPattern: planted) + UInt(offset))
    }
    layout.regions.append(("planted", region(planted, plantedSize)))

    // 4. hole: 3 pages, the middle one unmapped
    let hole = try map(3 * page, what: "hole")
    nameMapping(hole, 3 * page, "procmem-hole")
    fill(hole, 0x10, page)
    fill(hole + 2 * page, 0x12, page)
    guard munmap(hole + page, page) == 0 else { throw failure("munmap hole") }
    layout.regions.append(("hole", region(hole, 3 * page, [("holeOffset", .size(page)), ("holeSize", .size(page))])))

    // 5. protNone: readable page then a PROT_NONE page
    let protNone = try map(2 * page, what: "protNone")
    nameMapping(protNone, 2 * page, "procmem-protnone")
    fill(protNone, 0x15, page)
    fill(protNone + page, 0x16, page)
    guard mprotect(protNone + page, page, PROT_NONE) == 0 else { throw failure("mprotect protNone") }
    layout.regions.append(("protNone", region(protNone, 2 * page, [("protNoneOffset", .size(page))])))

    // 6. readOnly
    let readOnly = try map(page, what: "readOnly")
    nameMapping(readOnly, page, "procmem-readonly")
    fill(readOnly, 0x18, page)
    guard mprotect(readOnly, page, PROT_READ) == 0 else { throw failure("mprotect readOnly") }
    layout.regions.append(("readOnly", region(readOnly, page)))

    // 8./9. truncatedFile and readOnlySharedFile
    var dir = getenv("TMPDIR").map { String(cString: $0) } ?? ""
    if dir.isEmpty { dir = "/tmp" }
    while dir.count > 1 && dir.hasSuffix("/") { dir.removeLast() }
    let path = (dir == "/" ? "" : dir) + "/procmem-fixture-\(getpid()).bin"
    let fileFD = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
    guard fileFD >= 0 else { throw failure("open \(path)") }
    registerTempFile(path)
    layout.openFDs.append(fileFD)
    layout.tempFileFD = fileFD
    try writePages(fileFD, pages: 4, pageSize: page, first: 0xB0, what: path)
    let fileMap = try map(4 * page, flags: MAP_SHARED, fd: fileFD, what: "truncatedFile")
    let roFD = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
    guard roFD >= 0 else { throw failure("open \(path) read-only") }
    layout.openFDs.append(roFD)
    let roMap = try map(page, prot: PROT_READ, flags: MAP_SHARED, fd: roFD, what: "readOnlySharedFile")
    guard ftruncate(fileFD, 6144) == 0 else { throw failure("ftruncate \(path)") }
    layout.regions.append(("truncatedFile", region(fileMap, 4 * page, [("path", .string(path)), ("fileSize", .size(6144))])))
    layout.regions.append(("readOnlySharedFile", region(roMap, page)))

    // 10. memfd
    let memfd = CProcessMemoryTestSupport_memfd_create("procmem-fixture", CProcessMemoryTestSupport_MFD_CLOEXEC)
    guard memfd >= 0 else { throw failure("memfd_create") }
    layout.openFDs.append(memfd)
    try writePages(memfd, pages: 4, pageSize: page, first: 0xC0, what: "memfd")
    let memfdMap = try map(4 * page, flags: MAP_SHARED, fd: memfd, what: "memfd")
    guard ftruncate(memfd, 6144) == 0 else { throw failure("ftruncate memfd") }
    layout.regions.append(("memfd", region(memfdMap, 4 * page, [("fileSize", .size(6144)), ("fd", .int(Int64(memfd)))])))

    // 11. sharedAnon
    let shared = try map(2 * page, flags: MAP_SHARED | MAP_ANONYMOUS, what: "sharedAnon")
    nameMapping(shared, 2 * page, "procmem-sharedanon")
    fill(shared, 0x5A, 2 * page)
    layout.regions.append(("sharedAnon", region(shared, 2 * page)))

    // 12. guard (omitted when MADV_GUARD_INSTALL is unsupported)
    let guardMap = try map(3 * page, what: "guard")
    nameMapping(guardMap, 3 * page, "procmem-guard")
    for k in 0..<3 { fill(guardMap + k * page, 0x1A + UInt8(k), page) }
    if madvise(guardMap + page, page, CProcessMemoryTestSupport_MADV_GUARD_INSTALL) == 0 {
        layout.regions.append(("guard", region(guardMap, 3 * page, [("guardOffset", .size(page))])))
    } else {
        munmap(guardMap, 3 * page)
    }

    // 13. secret (omitted when memfd_secret is unavailable)
    let secretFD = CProcessMemoryTestSupport_memfd_secret(0)
    if secretFD >= 0 {
        if ftruncate(secretFD, off_t(page)) == 0,
           let secret = try? map(page, flags: MAP_SHARED, fd: secretFD, what: "secret") {
            fill(secret, 0x5E, page)
            layout.openFDs.append(secretFD)
            layout.regions.append(("secret", region(secret, page)))
        } else {
            close(secretFD)
        }
    }

    // 15. heap
    guard let heap = malloc(64) else { throw failure("malloc") }
    fill(heap, 0x77, 64)
    layout.regions.append(("heap", region(heap, 64)))

    // 7. code
    let marker: @convention(c) (UInt64) -> UInt64 = fixtureCodeMarker
    _ = marker(1)
    layout.codeAddress = unsafeBitCast(marker, to: UInt.self)
    layout.codeBytes = hexString(UnsafeRawBufferPointer(start: unsafeBitCast(marker, to: UnsafeRawPointer.self), count: 16))

    layout.arena = arena
    return layout
}
