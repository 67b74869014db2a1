import Glibc

/// Which sanitizer this test binary was built with, if any (`swift test --sanitize=…`, as
/// Scripts/sanitizers.sh runs it): found by looking up the sanitizer runtime's entry point.
public enum Sanitizers {
    public static let active: String? = {
        guard let handle = dlopen(nil, RTLD_NOW) else { return nil }
        defer { dlclose(handle) }
        if dlsym(handle, "__asan_init") != nil { return "AddressSanitizer" }
        if dlsym(handle, "__tsan_init") != nil { return "ThreadSanitizer" }
        return nil
    }()
}
