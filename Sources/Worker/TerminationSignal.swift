import Foundation

/// SIGTERM on a worker. Batch systems send it to every process of a job at once (`scancel`, the
/// time limit): the coordinator then checkpoints and stops the job, which needs the workers alive
/// until it has, so a worker does not die on SIGTERM but notes it; its heartbeat thread ends the
/// process when the coordinator has not stopped the job within the heartbeat timeout
/// (``WorkerAgent``). SIGINT (Ctrl-C in a terminal) is ignored: it goes to the coordinator.
public enum TerminationSignal {
    nonisolated(unsafe) public static var received: sig_atomic_t = 0

    public static func install() {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM) { _ in TerminationSignal.received = 1 }
    }
}
