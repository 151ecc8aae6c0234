import Dispatch
import Foundation

/// Runs `body` on a thread of its own and waits at most `seconds` for it to return. Returns false
/// when it is still running then: the thread is left to finish (or stay blocked) on its own.
///
/// For calls that should return at once but that a library can block forever: libzmq's
/// `zmq_ctx_term` sometimes never returns after every socket of the context was closed with a
/// linger (libzmq issue #2586; here about once in 50 runs of a coordinator that closes its
/// control socket right after a worker on loopback went away). A process that then waits on it
/// hangs instead of reporting the error it was about to report.
public func finishes(within seconds: Double, _ body: @escaping () -> Void) -> Bool {
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        body()
        done.signal()
    }
    thread.name = "srdpr-bounded-wait"
    thread.start()
    return done.wait(timeout: .now() + max(0, seconds)) == .success
}
