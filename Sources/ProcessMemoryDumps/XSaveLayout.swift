import SystemPackage
import ProcessMemoryCore
import CProcessMemory

/// Puts an x86_64 XSAVE area (`PTRACE_GETREGSET` of `NT_X86_XSTATE`) into the standard layout
/// that gdb reads from a core's `NT_X86_XSTATE` note.
///
/// The kernel hands the area over in this CPU's uncompacted format, whose component offsets come
/// from CPUID leaf 0xD. On Intel they are the standard offsets (AVX at 576, the AVX-512 opmask at
/// 1088, ZMM_Hi256 at 1152, Hi16_ZMM at 1664, PKRU at 2688); on CPUs without MPX state, such as
/// AMD Zen 4, the AVX-512 components sit lower (opmask at 832) and the area is shorter. gdb 13
/// reads only the standard layout (it shows `ymm` upper halves as `<unavailable>` otherwise), and
/// gcore writes that layout, so the core does too: each component moves to its standard offset;
/// nothing else changes. Written by hand: no library does this, and it is a table of offsets.
enum XSaveLayout {
    /// Standard offsets and sizes of the XSAVE components a core carries (XCR0 bit → offset, size).
    static let standard: [(bit: Int, offset: Int, size: Int)] = [
        (2, 576, 256),    // AVX: upper halves of ymm0-15
        (3, 960, 64),     // MPX BNDREGS
        (4, 1024, 64),    // MPX BNDCSR
        (5, 1088, 64),    // AVX-512 opmask k0-7
        (6, 1152, 512),   // AVX-512 ZMM_Hi256: upper halves of zmm0-15
        (7, 1664, 1024),  // AVX-512 Hi16_ZMM: zmm16-31
        (9, 2688, 8),     // PKRU
    ]

    /// XCR0 as the kernel records it in the area's software-reserved bytes (offset 464).
    static func xcr0(_ area: [UInt8]) -> UInt64? {
        guard area.count >= 472 else { return nil }
        return (0..<8).reduce(UInt64(0)) { $0 | UInt64(area[464 + $1]) << (8 * UInt64($1)) }
    }

    /// `area` with every enabled component at its standard offset, sized to the end of the last
    /// one; `area` itself when the CPU already uses the standard offsets or cannot be asked.
    static func standardized(_ area: [UInt8]) -> [UInt8] {
        guard let xcr0 = xcr0(area) else { return area }
        var moves: [(from: Int, to: Int, size: Int)] = []
        var end = 576
        for component in standard where xcr0 & (1 << UInt64(component.bit)) != 0 {
            var eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0
            guard CProcessMemory_cpuid(0xD, UInt32(component.bit), &eax, &ebx, &ecx, &edx) != 0,
                  Int(eax) == component.size else { return area }
            moves.append((Int(ebx), component.offset, component.size))
            end = max(end, component.offset + component.size)
        }
        guard moves.contains(where: { $0.from != $0.to }) else { return area }
        var result = [UInt8](repeating: 0, count: end)
        result.replaceSubrange(0..<576, with: area.prefix(576))
        for move in moves where move.from + move.size <= area.count {
            result.replaceSubrange(move.to..<(move.to + move.size), with: area[move.from..<(move.from + move.size)])
        }
        return result
    }
}
