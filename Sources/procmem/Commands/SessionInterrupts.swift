import Dispatch
import Glibc
import ProcessMemory
import Synchronization

/// Ctrl-C in a session: it stops the command that is running (a scan, a snapshot, a pointer scan,
/// a `sleep`), never the session. Each command runs with a fresh ``CancellationSource`` that SIGINT
/// cancels; at the prompt a terminal's Ctrl-C arrives as a key (raw mode) and clears the line.
/// SIGTERM and SIGHUP end the session after removing its private files (`cleanup`).
///
/// Unlike ``Interruption`` (one-shot commands), a second Ctrl-C does not exit.
enum SessionInterrupts {
    private static let current = Mutex<CancellationSource?>(nil)
    private static let cleanup = Mutex<(@Sendable () -> Void)?>(nil)
    private static let sources = Mutex<[any DispatchSourceSignal]>([])

    /// Routes SIGINT to the running command and SIGTERM/SIGHUP to `onTerminate` then exit 143/129.
    static func install(onTerminate: @escaping @Sendable () -> Void) {
        cleanup.withLock { $0 = onTerminate }
        sources.withLock { sources in
            guard sources.isEmpty else { return }
            for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
                source.setEventHandler {
                    if signalNumber == SIGINT {
                        current.withLock { $0?.cancel() }
                        return
                    }
                    cleanup.withLock { $0?() }
                    _exit(128 + signalNumber)
                }
                source.resume()
                sources.append(source)
            }
        }
    }

    /// Runs `body` with a cancellation that the next Ctrl-C cancels.
    static func running<R>(_ body: (Cancellation) throws -> R) rethrows -> R {
        let source = CancellationSource()
        current.withLock { $0 = source }
        defer { current.withLock { $0 = nil } }
        return try body(source.cancellation)
    }
}
