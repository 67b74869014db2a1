import Glibc
import Synchronization

extension Zircon {
    /// The kernel command-line options the Zircon calls consult.
    public enum KernelCommandLine {
        /// The environment variable read once, at first use, for the initial value of
        /// ``enableDebuggingSyscalls``: `1`, `true` or `yes` (any case) turn it on.
        public static let environmentVariable = "PROCESS_MEMORY_ZX_ENABLE_DEBUGGING_SYSCALLS"

        private static let global = Atomic<Bool>(initialValue())
        @TaskLocal private static var scoped: Bool?

        private static func initialValue() -> Bool {
            guard let raw = getenv(environmentVariable) else { return false }
            return ["1", "true", "yes"].contains(String(cString: raw).lowercased())
        }

        /// The counterpart of `kernel.enable-debugging-syscalls=true` on a Zircon kernel command line:
        /// without it, ``Zircon/processWriteMemory(_:vaddr:buffer:actual:)`` returns
        /// `ZX_ERR_NOT_SUPPORTED`.
        ///
        /// A process-global setting, `false` by default (or the value of ``environmentVariable``),
        /// safe to read and set from any thread. Inside ``withDebuggingSyscalls(_:_:)`` the scoped
        /// value is read instead; setting the property there changes the global value only.
        public static var enableDebuggingSyscalls: Bool {
            get { scoped ?? global.load(ordering: .acquiring) }
            set { global.store(newValue, ordering: .releasing) }
        }

        /// Runs `body` with ``enableDebuggingSyscalls`` reading `enabled` for this task and thread
        /// only, without changing the global setting that other threads see.
        ///
        /// Tests that run in parallel use this, so one test turning the switch on never changes what
        /// another sees.
        public static func withDebuggingSyscalls<R>(_ enabled: Bool = true, _ body: () throws -> R) rethrows -> R {
            try $scoped.withValue(enabled, operation: body)
        }

        /// Runs `body` with ``enableDebuggingSyscalls`` reading `enabled` for this task only.
        public static func withDebuggingSyscalls<R>(
            _ enabled: Bool = true, isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> R
        ) async rethrows -> R {
            try await $scoped.withValue(enabled, operation: body)
        }
    }
}
