import Collectives
import Data
import Foundation
import JobContracts

/// `srdpr train --workers N`: the training loop over ``RemoteWorkers`` in this process and N
/// `srdpr worker` processes on loopback, sharing a fresh random secret.
public enum LocalJob {
    /// Runs the job; the summary, and the exit status of the first worker that did not end cleanly.
    /// - Parameter executable: the `srdpr` binary the workers run.
    public static func run(config: TrainingConfig, workers: Int, threads: Int, heartbeatTimeout: Double,
                           ringTransport: RingTransport, executable: URL) throws -> (summary: TrainingSummary, failedWorker: Int32?) {
        let secret = SharedSecret.random()
        var options = RemoteWorkers.Options(bind: "tcp://127.0.0.1:0", worldSize: workers, secret: Array(secret.utf8))
        options.heartbeatTimeout = heartbeatTimeout
        let remote = try RemoteWorkers(options: options)
        try remote.listen()
        guard let endpoint = remote.endpoint else { throw CoordinatorError.setup("the coordinator did not bind") }
        var environment = ProcessInfo.processInfo.environment
        environment["SRDPR_SECRET"] = secret
        var children: [Process] = []
        for rank in 0..<workers {
            let child = Process()
            child.executableURL = executable
            child.arguments = ["worker", "--rank", String(rank), "--coordinator", endpoint, "--bind-host", "127.0.0.1",
                               "--threads", String(max(1, threads / workers)), "--heartbeat-timeout", String(heartbeatTimeout),
                               "--ring-transport", ringTransport.rawValue]
            child.environment = environment
            do { try child.run() } catch {
                // SIGKILL: a worker waits for the coordinator's stop order after SIGTERM (TerminationSignal).
                for child in children where child.isRunning { kill(child.processIdentifier, SIGKILL) }
                throw CoordinatorError.setup("cannot start worker \(rank) (\(executable.path)): \(error)")
            }
            children.append(child)
        }
        let summary: TrainingSummary
        do {
            summary = try TrainingLoop(config: config, executor: remote).run()
        } catch {
            // After a second Ctrl-C the workers have been told to stop at once: give them a second.
            waitForChildren(children, seconds: InterruptFlag.raised >= 2 ? 1 : heartbeatTimeout + 5)
            throw error
        }
        waitForChildren(children, seconds: 30)
        return (summary, children.first(where: { $0.terminationStatus != 0 })?.terminationStatus)
    }

    /// Waits for the workers to exit by themselves (they follow the coordinator's stop), then ends stragglers.
    static func waitForChildren(_ children: [Process], seconds: Double) {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while children.contains(where: \.isRunning), deadline.timeIntervalSinceNow > 0 { usleep(50_000) }
        for child in children where child.isRunning {
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
        }
    }
}
