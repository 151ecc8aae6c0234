import ArgumentParser
import Model

/// What every worker process of a multi-host job takes besides its rank and its coordinator: its
/// threads and how long a silent coordinator is waited for (`srdpr worker`, `srdpr index-worker`).
struct WorkerProcessOptions: ParsableArguments {
    @Option(help: "Threads for OpenBLAS and the other loops.")
    var threads: Int = BLASThreads.defaultCount
    @Option(name: .customLong("heartbeat-timeout"), help: "Seconds of silence after which the coordinator counts as lost.")
    var heartbeatTimeout: Double = 30

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard heartbeatTimeout > 0 else { throw ValidationError("--heartbeat-timeout must be positive") }
    }
}
