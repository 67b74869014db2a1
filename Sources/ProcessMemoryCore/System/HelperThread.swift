import Glibc

/// A thread of its own for the tool modules' read-ahead work (a scan's reader, a dump's next
/// chunk): `pthread_create(3)` rather than a pooled queue, which its own callers could starve.
///
/// The one place the package starts threads; the caller orders its shared state itself (the
/// scanning and dumps modules use semaphores) and must call ``join()`` exactly once.
package final class HelperThread {
    private var thread = pthread_t()
    private var joined = false

    private init() {}

    /// Starts `body` on a new thread; `nil` when no thread can be had (the caller then does the
    /// work on its own thread).
    package static func start(_ body: @escaping () -> Void) -> HelperThread? {
        let helper = HelperThread()
        let box = Unmanaged.passRetained(Body(body)).toOpaque()
        let created = pthread_create(&helper.thread, nil, { context in
            guard let context else { return nil }
            Unmanaged<Body>.fromOpaque(context).takeRetainedValue().run()
            return nil
        }, box)
        guard created == 0 else {
            Unmanaged<Body>.fromOpaque(box).release()
            return nil
        }
        return helper
    }

    /// Waits for the thread to end (`pthread_join(3)`). Idempotent.
    package func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }

    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }
}
