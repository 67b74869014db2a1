import ArgumentParser
import Glibc
import ProcessMemory

/// `procmem object`: memory objects (memfds and the files behind mappings), read and written
/// exactly at object offsets.
struct Object: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "object",
        abstract: "Create, read, write and describe memory objects (memfds, files behind mappings).",
        discussion: """
            A memory object is the memfd, shared-memory file or file behind a mapping. Its reads and \
            writes are exact: they move exactly LENGTH bytes at OFFSET, or fail with outOfRange (18) \
            when OFFSET + LENGTH goes past the object's size; nothing is ever partial, and a write \
            never grows the object.

            The object is named either by a process and a mapping, `PID REGION`, where REGION is an \
            ADDRESS as for `procmem read` (0x…, [anon:NAME]+0x10, a path, a quoted pointer chain) and selects the mapping \
            that contains it; or by a PATH, such as /proc/PID/fd/N for a memfd another process holds \
            (printed by `procmem object create --hold`). OFFSET is always an offset in the object \
            (0 is the object's first byte), not in the mapping: REGION only picks the object. The \
            object behind a mapping is read through its own descriptor, so PROT_NONE mappings and \
            pages the process never touched read like any others.
            """,
        subcommands: [Create.self, Read.self, Write.self, Info.self]
    )
}
