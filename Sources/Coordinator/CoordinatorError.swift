import JobContracts

/// Why a multi-node job stopped: every case stops training (the loop reports it with the last checkpoint).
public enum CoordinatorError: TrainingFailure, Equatable {
    case setup(String)
    case workerFailed(rank: Int, host: String, reason: String)
    case workerLost(rank: Int, host: String, pid: Int32, seconds: Double, waitingFor: String)
    /// A second Ctrl-C: every worker is told to stop at once, without a checkpoint.
    case interruptedTwice

    public var description: String {
        switch self {
        case .setup(let s): return s
        case .interruptedTwice: return "second interrupt (Ctrl-C): stopping at once without a checkpoint"
        case let .workerFailed(rank, host, reason): return "worker rank \(rank) on \(host) failed: \(reason)"
        case let .workerLost(rank, host, pid, seconds, waitingFor):
            return "lost worker rank \(rank) (\(host) pid \(pid)): no heartbeat for \(String(format: "%.1f", seconds)) s while waiting for \(waitingFor)"
        }
    }
}
