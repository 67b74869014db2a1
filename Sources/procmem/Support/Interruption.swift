import ProcessMemory
import Dispatch
import Glibc
import Synchronization

/// Ctrl-C (SIGINT) and SIGTERM as a flag that long work polls, so it can stop cleanly: resume a
/// stopped target, finish its output, mark it partial.
///
/// After `install()`, the first signal sets `requested`; a second one resumes any target held
/// stopped by a signal or the freezer, then exits at once with the conventional status 130.
enum Interruption {
    private static let flag = Atomic<Bool>(false)
    private static let sources = Mutex<[any DispatchSourceSignal]>([])

    /// Whether an interrupt has arrived since `install()`.
    static var requested: Bool { flag.load(ordering: .relaxed) }

    /// The library's cancellation, cancelled by the first interrupt.
    static let cancellation = Cancellation { requested }

    /// Routes SIGINT and SIGTERM to the flag instead of ending the process.
    static func install() {
        sources.withLock { sources in
            guard sources.isEmpty else { return }
            for signalNumber in [SIGINT, SIGTERM] {
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
                source.setEventHandler {
                    if flag.exchange(true, ordering: .relaxed) {
                        // Resume a stopped target first: the guardian would, but only after we are gone.
                        StoppedProcess.resumeAllBeforeExit()
                        _exit(130)
                    }
                }
                source.resume()
                sources.append(source)
            }
        }
    }
}
