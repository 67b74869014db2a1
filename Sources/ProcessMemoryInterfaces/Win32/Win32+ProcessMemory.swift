import Glibc
import ProcessMemory

extension Win32 {
    /// `ReadProcessMemory`: copies `nSize` bytes at `lpBaseAddress` in the process into `lpBuffer`,
    /// all or nothing.
    ///
    /// ```c
    /// BOOL ReadProcessMemory(HANDLE hProcess, LPCVOID lpBaseAddress, LPVOID lpBuffer,
    ///                        SIZE_T nSize, SIZE_T *lpNumberOfBytesRead);
    /// ```
    ///
    /// Returns `true` only when every byte was read. Win32 respects page protections, so this is a
    /// `ReadMode.respectingProtections` read (`process_vm_readv`): PROT_NONE memory, guard pages,
    /// `[vvar]`, secret memory and file pages past the end of the file are inaccessible.
    ///
    /// "Before any data transfer occurs, the system verifies that all data in the base address and
    /// memory of the specified size is accessible for read access": the range is read first into
    /// a private buffer of this surface, and only when every byte was read is it copied into
    /// `lpBuffer` (through the kernel, ``LocalMemory/copy(_:to:)``, so an unwritable `lpBuffer` is
    /// an error and not a crash). When the range is not all accessible, `lpBuffer` is not touched.
    /// A `nSize` above 64 MiB is first checked against the map, so a huge `nSize` over unmapped
    /// memory fails without allocating it.
    ///
    /// `lpNumberOfBytesRead` may be `nil` ("the parameter is ignored"); otherwise it is always set
    /// to "the number of bytes transferred into the specified buffer": `nSize` on success, 0 when
    /// the range is not all accessible (nothing was transferred; Windows itself reports the
    /// readable prefix there, having copied it), and, when `lpBuffer` cannot be written in part,
    /// the bytes stored before its first unwritable byte.
    ///
    /// The race: the verification and the transfer are one `process_vm_readv` into the private
    /// buffer, so there is no window between them in which the target's change can leak into
    /// `lpBuffer`. If the target unmaps or protects part of the range while that read runs, the
    /// read stops there and the call fails with ``Error/partialCopy`` (`lpBuffer` untouched, count
    /// 0); if it does so after the read, the call succeeds with the bytes as they were when read.
    /// Bytes the target writes during the read may come from before or after its write, page by
    /// page, as on Windows.
    ///
    /// Last errors (see ``getLastError()``):
    /// - ``Error/invalidHandle``: `hProcess` is `nil` or closed.
    /// - ``Error/accessDenied``: the handle lacks ``ProcessAccessRights/vmRead``; the process is
    ///   terminating or gone (Windows' `STATUS_PROCESS_IS_TERMINATING`); the Linux kernel refused
    ///   access.
    /// - ``Error/partialCopy``: some byte of the range is inaccessible (unmapped, protected, past
    ///   the end of a file), including the first.
    /// - ``Error/noAccess``: `lpBuffer` is `nil`, or part of it cannot be written (the core
    ///   library's `.invalidBuffer`); the range is not in the user address space or wraps around.
    /// - ``Error/invalidParameter``: a negative `nSize`.
    /// - ``Error/notEnoughMemory``: the kernel ran out of memory, or the private buffer of `nSize`
    ///   bytes could not be allocated.
    ///
    /// An `nSize` of 0 succeeds without reading.
    public static func readProcessMemory(_ hProcess: Handle?, _ lpBaseAddress: UInt64,
                                         _ lpBuffer: UnsafeMutableRawPointer?, _ nSize: Int,
                                         _ lpNumberOfBytesRead: UnsafeMutablePointer<Int>?) -> Bool {
        lpNumberOfBytesRead?.pointee = 0
        guard let hProcess, let target = hProcess.processHandle else { return fail(.invalidHandle) }
        guard hProcess.access.contains(.vmRead) else { return fail(.accessDenied) }
        guard nSize >= 0 else { return fail(.invalidParameter) }
        if nSize == 0 { return true }
        guard let lpBuffer else { return fail(.noAccess) }
        let (end, overflow) = lpBaseAddress.addingReportingOverflow(UInt64(nSize))
        guard !overflow else { return fail(.noAccess) }
        if nSize > 64 << 20 {
            // The read cannot succeed past the mapped memory that follows the address.
            var cursor = lpBaseAddress
            do {
                while cursor < end {
                    guard let region = try target.region(containing: cursor) else {
                        // One byte tells a hole (ERROR_PARTIAL_COPY) from an address outside the
                        // user address space (ERROR_NOACCESS), as a read of the whole range would.
                        var byte: UInt8 = 0
                        let probe = withUnsafeMutableBytes(of: &byte) { one in
                            Result { () throws(ProcessMemoryError) -> PartialTransfer in
                                try target.readTransfer(from: cursor, into: one, mode: .respectingProtections)
                            }
                        }
                        switch probe {
                        case .success(let transfer): return fail(transfer.stop.map { error(reading: $0) } ?? .partialCopy)
                        case .failure(let refused): return fail(error(reading: refused))
                        }
                    }
                    cursor = region.end
                }
            } catch {
                return fail(self.error(reading: error))
            }
        }
        guard let scratch = malloc(nSize) else { return fail(.notEnoughMemory) }
        defer { free(scratch) }
        let verified = UnsafeMutableRawBufferPointer(start: scratch, count: nSize)
        do {
            let transfer = try target.readTransfer(from: lpBaseAddress, into: verified, mode: .respectingProtections)
            if let stop = transfer.stop { return fail(error(reading: stop)) }
        } catch {
            return fail(self.error(reading: error))
        }
        do {
            try LocalMemory.copy(UnsafeRawBufferPointer(verified), to: lpBuffer)
        } catch {
            lpNumberOfBytesRead?.pointee = error.bytesTransferred
            return fail(self.error(reading: error))
        }
        lpNumberOfBytesRead?.pointee = nSize
        return true
    }

    /// `ReadProcessMemory` into a buffer: `nSize` is `lpBuffer.count`.
    public static func readProcessMemory(_ hProcess: Handle?, _ lpBaseAddress: UInt64,
                                         _ lpBuffer: UnsafeMutableRawBufferPointer,
                                         _ lpNumberOfBytesRead: UnsafeMutablePointer<Int>?) -> Bool {
        readProcessMemory(hProcess, lpBaseAddress, lpBuffer.baseAddress, lpBuffer.count, lpNumberOfBytesRead)
    }

    /// `WriteProcessMemory`: copies `nSize` bytes from `lpBuffer` to `lpBaseAddress` in the
    /// process, all or nothing.
    ///
    /// ```c
    /// BOOL WriteProcessMemory(HANDLE hProcess, LPVOID lpBaseAddress, LPCVOID lpBuffer,
    ///                         SIZE_T nSize, SIZE_T *lpNumberOfBytesWritten);
    /// ```
    ///
    /// The handle needs both ``ProcessAccessRights/vmWrite`` and
    /// ``ProcessAccessRights/vmOperation``. As on Windows, which makes a read-only page writable for
    /// the copy, read-only and code pages are written (copy-on-write, through `/proc/PID/mem`: the
    /// file behind them never changes), but `PAGE_NOACCESS` pages (PROT_NONE) are not. Before any
    /// byte is written the range is checked against the map: every byte must be mapped, and not
    /// PROT_NONE, protected (`[vdso]`, `[vvar]`, `[vsyscall]`, secret memory) or a shared mapping
    /// without write permission; otherwise nothing is written.
    ///
    /// `lpNumberOfBytesWritten` may be `nil`; otherwise it is set to `nSize` on success and to the
    /// bytes written on failure: 0 when the map refused the range, the written prefix when the
    /// write itself stopped (at a guard page, which the map does not show, or when the target
    /// changed its map meanwhile).
    ///
    /// Last errors: ``Error/invalidHandle``; ``Error/accessDenied`` (a missing right, a terminating
    /// process, the kernel refused); ``Error/noAccess`` when the range is not writable and nothing
    /// was written, or `lpBuffer` is `nil` or unreadable; ``Error/partialCopy`` when only a prefix
    /// was written; ``Error/invalidParameter`` for a negative `nSize`;
    /// ``Error/notEnoughMemory``. An `nSize` of 0 succeeds without writing.
    public static func writeProcessMemory(_ hProcess: Handle?, _ lpBaseAddress: UInt64,
                                          _ lpBuffer: UnsafeRawPointer?, _ nSize: Int,
                                          _ lpNumberOfBytesWritten: UnsafeMutablePointer<Int>?) -> Bool {
        lpNumberOfBytesWritten?.pointee = 0
        guard let hProcess, let target = hProcess.processHandle else { return fail(.invalidHandle) }
        guard hProcess.access.isSuperset(of: [.vmWrite, .vmOperation]) else { return fail(.accessDenied) }
        guard nSize >= 0 else { return fail(.invalidParameter) }
        if nSize == 0 { return true }
        guard let lpBuffer else { return fail(.noAccess) }
        let (end, overflow) = lpBaseAddress.addingReportingOverflow(UInt64(nSize))
        guard !overflow else { return fail(.noAccess) }
        // PAGE_NOACCESS: Windows does not make these writable; the debugger write underneath would.
        var cursor = lpBaseAddress
        do {
            while cursor < end {
                guard let region = try target.region(containing: cursor), !region.permissions.isEmpty else {
                    return fail(.noAccess)
                }
                cursor = region.end
            }
        } catch {
            return fail(self.error(writing: error))
        }
        do {
            try target.writeExactly(UnsafeRawBufferPointer(start: lpBuffer, count: nSize), to: lpBaseAddress,
                                    mode: .debugger)
            lpNumberOfBytesWritten?.pointee = nSize
            return true
        } catch {
            lpNumberOfBytesWritten?.pointee = error.bytesTransferred
            return fail(self.error(writing: error))
        }
    }

    /// `WriteProcessMemory` from a buffer: `nSize` is `lpBuffer.count`.
    public static func writeProcessMemory(_ hProcess: Handle?, _ lpBaseAddress: UInt64,
                                          _ lpBuffer: UnsafeRawBufferPointer,
                                          _ lpNumberOfBytesWritten: UnsafeMutablePointer<Int>?) -> Bool {
        writeProcessMemory(hProcess, lpBaseAddress, lpBuffer.baseAddress, lpBuffer.count, lpNumberOfBytesWritten)
    }

    /// The last error for a read that did not complete.
    static func error(reading error: ProcessMemoryError) -> Error {
        switch error.code {
        case .notFound, .protectionFailure, .outOfRange, .io: return .partialCopy
        case .invalidArguments, .invalidBuffer: return .noAccess
        case .badState, .execed, .accessDenied, .wrongType: return .accessDenied
        case .badHandle: return .invalidHandle
        case .noMemory: return .notEnoughMemory
        case .notSupported: return .notSupported
        }
    }

    /// The last error for a write that did not complete.
    static func error(writing error: ProcessMemoryError) -> Error {
        switch error.code {
        case .accessDenied:
            if case .protectedMemory = error.accessDenial { return error.bytesTransferred > 0 ? .partialCopy : .noAccess }
            return .accessDenied
        case .notFound, .protectionFailure, .outOfRange, .io, .notSupported, .invalidArguments:
            return error.bytesTransferred > 0 ? .partialCopy : .noAccess
        case .invalidBuffer:
            // "lpBuffer … cannot be read": the caller's side, whatever was written before it.
            return .noAccess
        case .badState, .execed, .wrongType: return .accessDenied
        case .badHandle: return .invalidHandle
        case .noMemory: return .notEnoughMemory
        }
    }
}
