import ProcessMemory

extension Mach {
    /// `vm_read`: reads `size` bytes at `address` in `targetTask` into a newly allocated array.
    ///
    /// ```c
    /// kern_return_t vm_read(vm_task_t target_task, vm_address_t address, vm_size_t size,
    ///                       pointer_t *data_out, mach_msg_type_number_t *data_count);
    /// ```
    ///
    /// All or nothing, respecting the target's page protections, as Mach does: a
    /// `ReadMode.respectingProtections` read (`process_vm_readv`), which reads only what the
    /// target itself could read. On success `data` holds exactly `size` bytes and `dataCount` is
    /// `size`. On failure neither is changed, and the status names the first byte that could not be
    /// read:
    /// - ``KernReturn/protectionFailure``: "Specified memory is valid, but does not permit reading":
    ///   PROT_NONE (or write-only) memory, a guard page, `[vvar]`, secret memory.
    /// - ``KernReturn/invalidAddress``: "The address is illegal or specifies a non-allocated region,
    ///   or there are less than size bytes of data following the address": an unmapped address
    ///   (the start, or anywhere in the range), an address outside the user address space, a range
    ///   that wraps around; and a page of a file or memfd mapping past the end of the file, where
    ///   the mapping exists but there are less than `size` bytes of data following the address
    ///   (the file has none there). Only the two documented codes are returned for the address,
    ///   so code ported from macOS that tests for them sees one of them.
    /// - ``KernReturn/sendInvalidDest``: the port was deallocated, or the task terminated (exited,
    ///   zombie, or exec'd: the address space the port named is gone).
    /// - ``KernReturn/invalidArgument``: a negative `size`.
    /// - ``KernReturn/resourceShortage``: the kernel ran out of memory.
    /// - ``KernReturn/failure``: the Linux kernel refused the read for another reason (for example a
    ///   seccomp filter that forbids `process_vm_readv`).
    ///
    /// A `size` of 0 succeeds with an empty array. A `size` above 64 MiB is first checked against the
    /// map, so a huge `size` over an unmapped range fails without allocating it.
    public static func vmRead(_ targetTask: Task, address: UInt64, size: Int, data: inout [UInt8]?,
                              dataCount: inout Int) -> KernReturn {
        guard let target = targetTask.processHandle else { return .sendInvalidDest }
        guard size >= 0 else { return .invalidArgument }
        if size == 0 {
            data = []
            dataCount = 0
            return .success
        }
        guard !address.addingReportingOverflow(UInt64(size)).overflow else { return .invalidAddress }
        // The array is allocated uninitialized, so its pages cost nothing until the read stores into
        // them. A large size is first bounded by the mapped memory that follows the address: the
        // read cannot succeed past it, so a huge size over an unmapped range allocates no more.
        var count = size
        if size > 64 << 20 {
            var covered: UInt64 = 0
            do throws(ProcessMemoryError) {
                var cursor = address
                while covered < UInt64(size), let region = try target.region(containing: cursor) {
                    covered += region.end - cursor
                    cursor = region.end
                }
            } catch {
                return kernReturn(for: error)
            }
            if covered == 0 { return .invalidAddress }
            count = Int(min(covered, UInt64(size)))
        }
        var failure: KernReturn?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { storage, initialized in
            initialized = 0
            do throws(ProcessMemoryError) {
                let transfer = try target.readTransfer(from: address, into: UnsafeMutableRawBufferPointer(storage),
                                                       mode: .respectingProtections)
                if let stop = transfer.stop { failure = kernReturn(for: stop) }
            } catch {
                failure = kernReturn(for: error)
            }
            if failure == nil { initialized = count }
        }
        if let failure { return failure }
        // The map said the bytes after `count` are not mapped.
        guard count == size else { return .invalidAddress }
        data = bytes
        dataCount = size
        return .success
    }

    /// `vm_read_overwrite`: reads `size` bytes at `address` in `targetTask` into the caller's
    /// buffer `data` (`data_in`).
    ///
    /// ```c
    /// kern_return_t vm_read_overwrite(vm_task_t target_task, vm_address_t address, vm_size_t size,
    ///                                 pointer_t data_in, mach_msg_type_number_t *data_count);
    /// ```
    ///
    /// `dataCount` is in/out, as documented: on input, the maximum size of the buffer (the
    /// smaller of `dataCount` and `data.count` counts); on output, the size returned (`size`). The
    /// read is all or nothing and respects page protections, with the statuses of
    /// ``vmRead(_:address:size:data:dataCount:)``, and also ``KernReturn/invalidAddress`` when "the
    /// region specified by the data_in parameter cannot be written to": `data` has no base address,
    /// is smaller than `size` bytes (by its count or by the input `dataCount`), or any part of its
    /// first `size` bytes lies in memory this process cannot write (unmapped, read-only, PROT_NONE,
    /// a guard page): the core library reports that as `.invalidBuffer`, a fault on the caller's
    /// side, never as a fault in the task.
    ///
    /// On failure `dataCount` is not changed, and the first `size` bytes of `data` are undefined:
    /// unlike XNU, which copies the whole range in before it touches `data_in`, the bytes before the
    /// first unreadable address may already have been stored (and when the task has terminated the
    /// core library clears them, so no byte of another process is ever handed out). Bytes past
    /// `size` are never touched.
    public static func vmReadOverwrite(_ targetTask: Task, address: UInt64, size: Int,
                                       data: UnsafeMutableRawBufferPointer, dataCount: inout Int) -> KernReturn {
        guard let target = targetTask.processHandle else { return .sendInvalidDest }
        guard size >= 0, dataCount >= 0 else { return .invalidArgument }
        if size == 0 {
            dataCount = 0
            return .success
        }
        guard data.baseAddress != nil, size <= min(dataCount, data.count) else { return .invalidAddress }
        guard !address.addingReportingOverflow(UInt64(size)).overflow else { return .invalidAddress }
        let destination = UnsafeMutableRawBufferPointer(rebasing: data[0..<size])
        do {
            let transfer = try target.readTransfer(from: address, into: destination, mode: .respectingProtections)
            if let stop = transfer.stop { return kernReturn(for: stop) }
        } catch {
            return kernReturn(for: error)
        }
        dataCount = size
        return .success
    }

    /// The `kern_return_t` for the first byte a read could not transfer.
    static func kernReturn(for error: ProcessMemoryError) -> KernReturn {
        switch error.code {
        case .notFound: return .invalidAddress
        case .protectionFailure: return .protectionFailure
        // A file page past the end of its file: "there are less than size bytes of data following
        // the address" (seed 002 lists no other code for the address).
        case .outOfRange: return .invalidAddress
        // An address outside the user address space, a wrapping range (no system call).
        case .invalidArguments: return .invalidAddress
        // "the region specified by the data_in parameter cannot be written to".
        case .invalidBuffer: return .invalidAddress
        case .badHandle, .badState, .execed: return .sendInvalidDest
        case .noMemory: return .resourceShortage
        case .wrongType: return .invalidArgument
        case .accessDenied, .notSupported, .io: return .failure
        }
    }
}
