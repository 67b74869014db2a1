// The reference interfaces of the specification (shared/seeds 000–003), each as a Swift namespace
// with its documented names, status codes and semantics, implemented on the public API of the
// ProcessMemory core:
//
// - ``Zircon``: `zx_process_read_memory`, `zx_process_write_memory`, with handles, rights and
//   `zx_status_t` (seeds 000, 001).
// - ``Mach``: `vm_read`, `vm_read_overwrite`, with task ports and `kern_return_t` (seed 002).
// - ``Win32``: `OpenProcess`, `ReadProcessMemory`, `WriteProcessMemory`, `CloseHandle` and a
//   per-thread `GetLastError` (seed 003).
//
// The surfaces return status values, never throw, and keep the documented out-parameter shapes. The
// DocC article "Reference interfaces" lists which Linux situation produces each documented status.
import ProcessMemory
