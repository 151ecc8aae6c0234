import Collectives
import Data
import Foundation
import JobContracts
import Model

/// One rank of a multi-node job (`srdpr worker`): registers with the coordinator, joins the ring,
/// loads the model, then runs the updates the coordinator orders on the shards it sends, reading
/// the samples from its own copy of the ByteDatasets. A heartbeat thread on a second connection
/// keeps the coordinator informed and ends the process when the coordinator is lost or aborts
/// the job, even while the main thread waits inside a collective.
public final class WorkerAgent {
    public struct Options: Sendable {
        public var coordinator: String
        public var rank: Int
        /// The address other ranks reach this one at; the ring socket binds it. `auto`: this
        /// host's address on the route to the coordinator.
        public var bindHost: String = "127.0.0.1"
        /// Ring port (nil: a free one).
        public var ringPort: Int?
        /// `.auto`: also offer a Unix socket to a left neighbour on this host (``RingTransport``).
        public var ringTransport: RingTransport = .auto
        public var secret: [UInt8]
        public var curve = false
        public var threads = 1
        /// Seconds of silence after which the coordinator counts as lost (and ring peers too).
        public var heartbeatTimeout: Double = 30
        /// The number of processes the launcher started (``LaunchEnvironment``), checked against
        /// the coordinator's world size; nil when unknown.
        public var launcherWorldSize: (size: Int, variable: String)?

        public init(coordinator: String, rank: Int, secret: [UInt8]) {
            self.coordinator = coordinator
            self.rank = rank
            self.secret = secret
        }
    }

    public let options: Options
    /// Where log lines go.
    public var print: (String) -> Void = { line in FileHandle.standardError.write(Foundation.Data((line + "\n").utf8)) }
    /// Makes rank 0's dev-set evaluator when the job's configuration has a dev set (`eval.*`).
    public var makeDevSetEvaluator: ((TrainingConfig) throws -> DevSetEvaluating)?

    private let lastCheckpoint = LockedValue<String?>(nil)
    /// A stop order comes on both connections (control and heartbeat) and either thread may act
    /// first: whichever does says it, once, in the same words, so logs and launchers see one line.
    private let stopAnnounced = LockedValue(false)

    public init(options: Options) {
        self.options = options
    }

    /// Runs until the coordinator ends the job; returns the exit code it asks for. Failures of this
    /// rank are reported to the coordinator and thrown.
    public func run() throws -> Int32 {
        let rank = options.rank
        guard rank >= 0 else { throw WorkerAgentError.setup("--rank \(rank) must not be negative") }
        let control = try ControlClient(endpoint: options.coordinator, rank: rank, secret: options.secret, curve: options.curve,
                                        timeout: options.heartbeatTimeout)
        defer { control.close() }
        func send(_ message: ControlMessage) throws { try control.send(try message.encoded()) }
        do {
            return try serve(control: control, send: send)
        } catch {
            let reason = "\(error)"
            try? send(.failed(rank: rank, reason: reason))
            // Say where to resume from, as the coordinator does (a rank may notice a lost peer first).
            let resume = lastCheckpoint.value.map { "the last checkpoint is \($0) (resume with model_file=\($0))" } ?? "no checkpoint was written yet"
            print("rank \(rank): stopping: \(reason); \(resume)")
            throw error
        }
    }

    private func serve(control: ControlClient, send: (ControlMessage) throws -> Void) throws -> Int32 {
        let rank = options.rank
        let host: String
        if options.bindHost == "auto" {
            // The address this host reaches the coordinator from: one command line for every rank (mpirun).
            let coordinatorHost = Self.host(ofEndpoint: options.coordinator)
            guard let route = FreePorts.routeAddress(toward: coordinatorHost) else {
                throw WorkerAgentError.setup("--bind-host auto: no route from this host to the coordinator's \(coordinatorHost); "
                    + "give this host's address with --bind-host ADDR")
            }
            host = route
        } else {
            guard let resolved = FreePorts.ipv4Address(options.bindHost) else {
                throw WorkerAgentError.setup("--bind-host \(options.bindHost) is neither an IPv4 address nor a name that resolves to one")
            }
            host = resolved
        }
        guard let port = options.ringPort ?? FreePorts.on(host: host, 1).first else {
            throw WorkerAgentError.setup("no free TCP port on --bind-host \(options.bindHost) (\(host)) for the ring (is it an address of this host?)")
        }
        let ringAddress = "tcp://\(host):\(port)"
        let hostIdentity = options.ringTransport == .auto ? RingTransport.hostIdentity() : nil
        let localRingAddress = hostIdentity == nil ? nil : RingTransport.localAddress()
        try send(.register(.init(rank: rank, ringAddress: ringAddress, host: ProcessInfo.processInfo.hostName,
                                 pid: getpid(), instance: UUID().uuidString,
                                 localRingAddress: localRingAddress, hostIdentity: hostIdentity)))
        startHeartbeats()
        print("rank \(rank): registered with \(options.coordinator) (ring \(ringAddress)); waiting for the other workers")

        let job: ControlMessage.JobSetup
        switch try nextOrder(control) {
        case .welcome(let setup): job = setup
        case .stop(let order):
            print("rank \(rank): the coordinator refused this worker: \(order.reason)")
            return order.exitCode == 0 ? 2 : order.exitCode
        case let other: throw WorkerAgentError.protocolViolation("the coordinator's first message is not the job setup but \(other)")
        }
        let parsed = job.config
        try parsed.validate()
        guard job.ringAddresses.count == job.worldSize, rank < job.worldSize else {
            throw WorkerAgentError.setup("rank \(rank) is outside the job's world of \(job.worldSize) ranks")
        }
        if let launcher = options.launcherWorldSize, launcher.size != job.worldSize {
            throw WorkerAgentError.setup("the launcher started \(launcher.size) worker(s) (\(launcher.variable)=\(launcher.size)) "
                + "but the coordinator runs --world-size \(job.worldSize): start as many workers as the coordinator expects")
        }
        try checkDatasets(job.datasets ?? [])
        guard job.ringAddresses[rank] == ringAddress || job.ringAddresses[rank] == localRingAddress else {
            throw WorkerAgentError.protocolViolation("the coordinator gave rank \(rank) the ring address \(job.ringAddresses[rank]), "
                + "which this worker did not offer (\(ringAddress)\(localRingAddress.map { " or \($0)" } ?? ""))")
        }
        if job.ringAddresses[rank] != ringAddress {
            print("rank \(rank): the left neighbour is on this host; the ring link from it uses \(job.ringAddresses[rank])")
        }
        var ringOptions = ZMQCommunicator.Options()
        ringOptions.receiveTimeout = job.heartbeatTimeout
        ringOptions.setupTimeout = max(job.heartbeatTimeout, 30)
        ringOptions.globalLossBufferSize = parsed.globalLossBufferSize
        ringOptions.curve = job.curve
        let ring = try ZMQCommunicator(rank: rank, worldSize: job.worldSize, addresses: job.ringAddresses, jobID: job.ringJobID,
                                       secret: options.secret, options: ringOptions)
        if ring.sharedMemoryLinks.toRight {
            print("rank \(rank): payloads to rank \((rank + 1) % job.worldSize) go through a shared-memory lane (same host)")
        }
        let resumeFile = try (job.resume && rank == 0) ? parsed.modelFile.map { try CheckpointFile(url: URL(fileURLWithPath: $0)) } : nil
        let setup = try WorkerSetup(config: parsed, threads: options.threads, communicator: ring, resume: resumeFile,
                                    dropoutSeed: job.dropoutSeed, warn: { [rank, print] in if rank == 0 { print($0) } })
        try setup.worker.synchronizeWithRankZero(optimizerState: job.resume)
        let devSet = rank == 0
            ? try Rank.devSetRound(config: setup.config, evaluator: setup.config.eval == nil ? nil : makeDevSetEvaluator?(setup.config),
                                   resuming: job.resume, warn: { [rank, print] in print("rank \(rank): \($0)") })
            : nil
        let runner = try Rank(setup: setup, devSet: devSet)
        runner.faultDelayMilliseconds = ProcessInfo.processInfo.environment["SRDPR_FAULT_STEP_DELAY_MS"].flatMap(UInt32.init) ?? 0
        try send(.ready(rank: rank))
        print("rank \(rank): ready (world \(job.worldSize), \(options.threads) thread(s))")

        while true {
            switch try nextOrder(control) {
            case .step(let order):
                lastCheckpoint.value = order.lastCheckpoint
                try send(.report(try runner.step(order.step, plans: order.plans)))
            case .checkpoint(let order):
                guard rank == 0 else {
                    throw WorkerAgentError.protocolViolation("a checkpoint order for rank \(rank) (only rank 0 writes them)")
                }
                let url = try runner.checkpoint(order.state)
                lastCheckpoint.value = url.path
                try send(.checkpointed(step: order.state.step, path: url.path))
            case .evaluate(let order):
                guard runner.devSet != nil else {
                    throw WorkerAgentError.protocolViolation("an evaluation order for rank \(rank) (only rank 0 of a job with a dev set evaluates)")
                }
                let report = try runner.evaluate(order.state, checkpoint: order.checkpoint)
                try send(.evaluated(report))
            case .stop(let order):
                if order.exitCode != 0 { announceAbort(order) }
                return order.exitCode
            case let other:
                throw WorkerAgentError.protocolViolation("unexpected message from the coordinator: \(other)")
            }
        }
    }

    /// This host's copies of the datasets against the coordinator's (size and CRC-32C of every
    /// file), before anything is loaded.
    private func checkDatasets(_ expected: [DatasetFingerprint]) throws {
        let host = ProcessInfo.processInfo.hostName
        for fingerprint in expected {
            let local: DatasetFingerprint
            do { local = try DatasetFingerprint.make(key: fingerprint.key, path: fingerprint.path) } catch {
                throw WorkerAgentError.setup("the datasets on \(host) differ from the coordinator's: \(error)")
            }
            if let difference = fingerprint.difference(from: local) {
                throw WorkerAgentError.setup("the datasets on \(host) differ from the coordinator's: \(difference); "
                    + "copy the coordinator's dataset to this host (every worker reads its samples from its own copy)")
            }
        }
        if !expected.isEmpty {
            print("rank \(options.rank): \(expected.count) dataset(s) match the coordinator's (size and CRC-32C)")
        }
    }

    /// HOST of `tcp://HOST:PORT`.
    static func host(ofEndpoint endpoint: String) -> String {
        var rest = Substring(endpoint)
        if let scheme = rest.range(of: "://") { rest = rest[scheme.upperBound...] }
        if let colon = rest.lastIndex(of: ":") { rest = rest[..<colon] }
        return String(rest)
    }

    /// The coordinator's next order (heartbeats on this connection are skipped).
    private func nextOrder(_ control: ControlClient) throws -> ControlMessage {
        while true {
            guard let (kind, payload) = try control.receive(timeout: 1) else { continue }
            guard kind == .control else { continue }
            return try ControlMessage.decode(payload)
        }
    }

    /// The one line a worker prints for a coordinator's non-zero stop order, whichever connection brought it.
    private func announceAbort(_ order: ControlMessage.StopOrder) {
        guard !stopAnnounced.exchange(true) else { return }
        let resume = order.lastCheckpoint.map { " Resume from \($0) (model_file=\($0))." } ?? ""
        print("rank \(options.rank): job aborted by the coordinator: \(order.reason).\(resume)")
    }

    /// Sends a heartbeat every `timeout / 5` seconds on a connection of its own and ends the
    /// process when the coordinator has been silent for `timeout` seconds or orders an abort.
    private func startHeartbeats() {
        let options = self.options, print = self.print, lastCheckpoint = self.lastCheckpoint
        let announceAbort = self.announceAbort
        let interval = min(2, max(0.1, options.heartbeatTimeout / 5))
        let thread = Thread {
            func die(_ message: String, code: Int32) -> Never {
                print(message)
                CheckpointInFlight.removeTemporaryFile()  // rank 0 may be writing one: leave no half-written file
                _exit(code)
            }
            let client: ControlClient
            do {
                client = try ControlClient(endpoint: options.coordinator, rank: options.rank, secret: options.secret,
                                           curve: options.curve, timeout: options.heartbeatTimeout)
            } catch {
                die("rank \(options.rank): cannot open the heartbeat connection to \(options.coordinator): \(error)", code: 3)
            }
            var lastHeard = Date()
            var terminationNoted: Date?
            while true {
                if TerminationSignal.received != 0 {
                    if let noted = terminationNoted {
                        if Date().timeIntervalSince(noted) > options.heartbeatTimeout {
                            die("rank \(options.rank): SIGTERM \(Int(options.heartbeatTimeout)) s ago and the coordinator has not stopped "
                                + "the job; exiting", code: 128 + SIGTERM)
                        }
                    } else {
                        terminationNoted = Date()
                        print("rank \(options.rank): SIGTERM: waiting for the coordinator to checkpoint and stop the job "
                            + "(exiting by itself after \(Int(options.heartbeatTimeout)) s otherwise)")
                    }
                }
                try? client.send([], kind: .heartbeat)
                let deadline = Date(timeIntervalSinceNow: interval)
                while deadline.timeIntervalSinceNow > 0 {
                    guard let message = try? client.receive(timeout: deadline.timeIntervalSinceNow) else { continue }
                    lastHeard = Date()
                    if message.kind == .control, case .stop(let order)? = try? ControlMessage.decode(message.payload), order.exitCode != 0 {
                        announceAbort(order)
                        CheckpointInFlight.removeTemporaryFile()
                        _exit(order.exitCode)
                    }
                }
                let silent = Date().timeIntervalSince(lastHeard)
                if silent > options.heartbeatTimeout {
                    let checkpoint = lastCheckpoint.value
                    let resume = checkpoint.map { "the last checkpoint is \($0) (resume with model_file=\($0))" } ?? "no checkpoint was written yet"
                    die("rank \(options.rank): lost the coordinator at \(options.coordinator): no heartbeat for \(String(format: "%.1f", silent)) s "
                        + "(--heartbeat-timeout \(options.heartbeatTimeout)); stopping. \(resume)", code: 3)
                }
            }
        }
        thread.name = "srdpr-heartbeat"
        thread.start()
    }
}

public enum WorkerAgentError: Error, CustomStringConvertible, Equatable {
    case setup(String)
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .setup(let s): return s
        case .protocolViolation(let s): return "protocol error: \(s)"
        }
    }
}
