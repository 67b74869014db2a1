import ArgumentParser
import ProcessMemory

/// `--mode debugger|protect`: which kernel path a read or write takes.
enum AccessModeOption: String, CaseIterable, Sendable, ExpressibleByArgument {
    /// `/proc/PID/mem`: sees what a debugger sees (PROT_NONE pages; writes to read-only private pages).
    case debugger
    /// Only what the target itself could access (`process_vm_readv` for reads; writable pages only).
    case protect

    var readMode: ReadMode { self == .debugger ? .debugger : .respectingProtections }
    var writeMode: WriteMode { self == .debugger ? .debugger : .respectingProtections }

    static let help: ArgumentHelp = """
        debugger (default): what a debugger sees, PROT_NONE pages included; protect: only what \
        the process itself could access.
        """}
