import Collectives
import Data
import Foundation
import Model
import Worker

/// The coordinator of a multi-node job (`srdpr coordinator`, SPEC §6, DESIGN.md): waits for the
/// workers to register, hands them the configuration and the ring addresses, then for every step
/// draws the global batch (the same pipelines and schedule as `srdpr train`), sends each rank its
/// shard, collects the reports, logs as `train` does and has rank 0 write the checkpoints. It
/// never touches tensors. Heartbeats both ways: a silent worker is reported within the timeout
/// and every other process is stopped with the last checkpoint to resume from.
public final class JobCoordinator {
    public struct Options: Sendable {
        public var bind: String
        public var worldSize: Int
        public var secret: [UInt8]
        public var curve = false
        /// A process silent this long (seconds) counts as lost.
        public var heartbeatTimeout: Double = 30
        /// How long to wait for every worker to register (seconds).
        public var joinTimeout: Double = 600

        public init(bind: String, worldSize: Int, secret: [UInt8]) {
            self.bind = bind
            self.worldSize = worldSize
            self.secret = secret
        }
    }

    /// A rank as it registered.
    struct Member {
        var registration: ControlMessage.Registration
        var control: ControlServer.Peer
        var heartbeat: ControlServer.Peer?
        var lastSeen = Date()
    }

    public let config: TrainingConfig
    /// The KEY=VALUE parameters the workers parse (the ones `config` came from).
    public let parameters: [String]
    public let options: Options
    public var print: (String) -> Void = { Swift.print($0); fflush(stdout) }
    public var showProgress: Bool = isatty(STDERR_FILENO) != 0

    private var server: ControlServer?
    private var members: [Int: Member] = [:]
    private var lastCheckpoint: String? { didSet { SecondInterrupt.noteCheckpoint(lastCheckpoint) } }
    private var lastHeartbeatSent = Date.distantPast

    public init(config: TrainingConfig, parameters: [String], options: Options) {
        self.config = config
        self.parameters = parameters
        self.options = options
    }

    /// The control channel's endpoint once `start()` has bound it.
    public var endpoint: String? { server?.endpoint }
    /// Refused connections and dropped messages, for tests and logs.
    public var refusedPeers: [String] { server?.refusedPeers ?? [] }

    /// The model's vocabulary, when this host has it: rows are then dealt out to the ranks by their
    /// exact token counts rather than estimated from the text's size (the ranks wait less on each other).
    func balancingTokenizer() -> BertTokenizer? {
        guard let directory = config.pretrainedModelCfg else { return nil }
        let vocab = URL(fileURLWithPath: directory).appendingPathComponent("vocab.txt")
        do {
            return try BertTokenizer(vocabFile: vocab, doLowerCase: config.doLowerCase)
        } catch {
            print("coordinator: cannot read \(vocab.path) (\(error)); ranks get rows by estimated lengths")
            return nil
        }
    }

    /// Binds the control socket (so workers can be started against `endpoint`).
    public func start() throws {
        guard server == nil else { return }
        try checkOptions()
        server = try ControlServer(bind: options.bind, worldSize: options.worldSize, secret: options.secret, curve: options.curve)
    }

    /// Runs the job to total_updates; throws `TrainerError.stopped` naming the cause and the last
    /// checkpoint when a worker fails or is lost (after telling every other process to stop).
    public func run() throws -> TrainingSummary {
        try checkOptions()
        SecondInterrupt.exitsInHandler = false
        let (outputDir, logDir) = try Trainer.checkRun(config)
        let resumeState = try config.modelFile.map { path -> TrainerState in
            try CheckpointFile(url: URL(fileURLWithPath: path)).json(TrainingCheckpoint.stateSection, as: TrainerState.self)
        }
        let batches = try TrainingBatches(config: config, tokenizer: balancingTokenizer())
        let rowCost = config.pretrainedModelCfg.flatMap { try? BertConfig.load(URL(fileURLWithPath: $0).appendingPathComponent("config.json")) }
            .map { RowCost(hiddenSize: $0.hiddenSize) } ?? RowCost()
        let (startStep, history) = try Trainer.restore(batches, from: resumeState, path: config.modelFile, trainMode: config.trainMode)
        lastCheckpoint = try CheckpointDirectory(directory: outputDir, prefix: config.checkpointFileName).latest()?.url.path
        let datasets = try DatasetFingerprint.all(of: config)
        try start()
        guard let server else { throw CoordinatorError.setup("the control channel did not start") }
        defer { server.close() }
        let world = options.worldSize

        do {
            print("coordinator: listening on \(server.endpoint); waiting for \(world) worker(s)")
            try register()
            let ringAddresses = RingTransport.ringAddresses((0..<world).map { members[$0]!.registration.offer })
            print("coordinator: ring links: " + (0..<world).map { rank in
                "\((rank + world - 1) % world)->\(rank) \(RingTransport.describe(ringAddresses[rank]))"
            }.joined(separator: ", "))
            let setup = ControlMessage.JobSetup(
                parameters: parameters, worldSize: world, ringAddresses: ringAddresses,
                ringJobID: "srdpr-" + UUID().uuidString, dropoutSeed: resumeState?.dropoutSeed ?? UInt64(truncatingIfNeeded: config.seed),
                resume: resumeState != nil, heartbeatTimeout: options.heartbeatTimeout, curve: options.curve, datasets: datasets)
            for rank in 0..<world { try send(.welcome(setup), to: rank) }
            var ready = Set<Int>()
            while ready.count < world {
                if case .ready(let rank) = try nextMessage(waitingFor: "rank(s) \(Set(0..<world).subtracting(ready).sorted()) to load the model and join the ring") {
                    ready.insert(rank)
                }
            }
            if resumeState != nil { print("resumed from \(config.modelFile ?? "") at step \(startStep)") }
            print("training \(config.trainMode) on \(world) worker(s) from step \(startStep) to \(config.totalUpdates); "
                + "checkpoints by rank 0 in \(outputDir.path), logs in \(logDir.path)")

            let log = try TrainingLog(config: config, pipelines: batches.schedule.pipelines, logDir: logDir, history: history,
                                      startStep: startStep, terminal: showProgress, print: print)
            defer { try? log.close() }
            let schedule = LinearWarmupSchedule(baseLearningRate: config.learningRate, warmupSteps: config.warmupSteps,
                                                totalUpdates: config.totalUpdates)
            func checkpoint(step: Int) throws -> String {
                let state = TrainerState(
                    step: step, pipelines: Dictionary(uniqueKeysWithValues: batches.states.map { ($0.key.rawValue, $0.value) }),
                    lossHistory: log.historyByName, dropoutSeed: setup.dropoutSeed, schedule: schedule, projectionDim: config.projectionDim)
                try send(.checkpoint(.init(state: state)), to: 0)
                while true {
                    if case .checkpointed(let written, let path) = try nextMessage(waitingFor: "rank 0 to write the checkpoint of step \(step)"),
                       written == step {
                        lastCheckpoint = path
                        return path
                    }
                }
            }

            var step = startStep
            while step < config.totalUpdates {
                if InterruptFlag.raised != 0 {
                    let path = try checkpoint(step: step)
                    log.progress.finish()
                    print("interrupted (\(InterruptFlag.cause)): checkpoint \(path) written at step \(step); resume with model_file=\(path)")
                    stopAll(code: 130, reason: "interrupted (\(InterruptFlag.cause)) at step \(step)")
                    return TrainingSummary(step: step, checkpoint: URL(fileURLWithPath: path), logDir: logDir, interrupted: true)
                }
                let t0 = Date()
                let (kind, unmeasured) = try batches.plans(forStep: step)
                let plans = try batches.measure(unmeasured)
                let fetch = Date().timeIntervalSince(t0)
                for rank in 0..<world {
                    try send(.step(.init(step: step, plans: plans.map { $0.shard(rank: rank, worldSize: world, cost: rowCost) }, lastCheckpoint: lastCheckpoint)),
                             to: rank)
                }
                var reports: [Int: ControlMessage.StepReport] = [:]
                while reports.count < world {
                    let waiting = Set(0..<world).subtracting(reports.keys).sorted()
                    if case .report(let report) = try nextMessage(waitingFor: "rank(s) \(waiting) to finish step \(step + 1)"),
                       report.step == step {
                        reports[report.rank] = report
                    }
                }
                let done = step + 1
                let all = (0..<world).map { reports[$0]! }
                let first = all[0]
                let result = StepResult(loss: first.loss, gradientNorm: first.gradientNorm, learningRate: first.learningRate,
                                        tokens: all.reduce(0) { $0 + $1.tokens })
                let compute = all.map(\.computeSeconds).max() ?? 0
                let communication = all.map(\.communicationSeconds)
                let waitFraction = zip(communication, all.map(\.computeSeconds)).map { $1 > 0 ? $0 / $1 : 0 }
                let ids = plans.flatMap(\.sampleIDs).map(String.init).joined(separator: ",")
                try log.record(done: done, kind: kind, result: result, fetchSeconds: fetch + (all.map(\.fetchSeconds).max() ?? 0),
                               computeSeconds: compute,
                               extra: ["batch_sample_ids": .string(ids), "world_size": .int(world),
                                       "communication_seconds": .string(communication.map { String(format: "%.4f", $0) }.joined(separator: ",")),
                                       "gather_seconds": .string(all.map { String(format: "%.4f", $0.gatherSeconds) }.joined(separator: ",")),
                                       "communication_fraction": .double(waitFraction.max() ?? 0),
                                       "rank_losses": .string(all.map { String($0.loss) }.joined(separator: ",")),
                                       "rank_tokens": .string(all.map { String($0.tokens) }.joined(separator: ",")),
                                       "rank_compute_seconds": .string(all.map { String(format: "%.4f", $0.computeSeconds) }.joined(separator: ","))],
                               timing: String(format: " comm %.0f%%", 100 * (waitFraction.max() ?? 0)))
                if done % config.saveCheckpointFreq == 0 || done == config.totalUpdates {
                    let path = try checkpoint(step: done)
                    log.checkpointWritten(path)
                }
                step = done
            }
            try log.close()
            stopAll(code: 0, reason: "training finished at step \(step)")
            return TrainingSummary(step: step, checkpoint: lastCheckpoint.map { URL(fileURLWithPath: $0) }, logDir: logDir, interrupted: false)
        } catch let error as CoordinatorError {
            let reason = error.description
            stopAll(code: error == .interruptedTwice ? 130 : 1, reason: reason)
            throw TrainerError.stopped(reason: reason, lastCheckpoint: lastCheckpoint)
        } catch {
            stopAll(code: 1, reason: "the coordinator failed: \(error)")
            throw error
        }
    }

    private func checkOptions() throws {
        guard options.worldSize >= 1 else { throw CoordinatorError.setup("--world-size \(options.worldSize) must be at least 1") }
        guard options.heartbeatTimeout > 0 else { throw CoordinatorError.setup("--heartbeat-timeout must be positive") }
        guard options.joinTimeout > 0 else { throw CoordinatorError.setup("--join-timeout must be positive") }
    }

    // MARK: Registration, messages, heartbeats

    /// Waits until every rank has registered on its control connection.
    private func register() throws {
        let world = options.worldSize
        let deadline = Date(timeIntervalSinceNow: options.joinTimeout)
        var lastNote = Date()
        while members.count < world || members.values.contains(where: { $0.heartbeat == nil }) {
            if InterruptFlag.raised >= 2 { throw CoordinatorError.interruptedTwice }
            guard deadline.timeIntervalSinceNow > 0 else {
                let missing = (0..<world).filter { members[$0] == nil }
                throw CoordinatorError.setup("rank(s) \(missing) did not register within \(Int(options.joinTimeout)) s")
            }
            if Date().timeIntervalSince(lastNote) > 30 {
                print("coordinator: still waiting for rank(s) \((0..<world).filter { members[$0] == nil })")
                lastNote = Date()
            }
            guard let message = try server!.receive(timeout: 0.5) else { continue }
            let rank = message.peer.rank
            if message.kind == .heartbeat {
                if members[rank] != nil, members[rank]?.heartbeat == nil || members[rank]?.heartbeat == message.peer {
                    members[rank]?.heartbeat = message.peer
                    members[rank]?.lastSeen = Date()
                }
                continue
            }
            guard let decoded = try? ControlMessage.decode(message.payload), case .register(let registration) = decoded,
                  registration.rank == rank else {
                print("coordinator: ignored a message from rank \(rank) before its registration")
                continue
            }
            if let existing = members[rank] {
                let reason = "rank \(rank) is already taken by \(existing.registration.host) pid \(existing.registration.pid)"
                print("coordinator: refused a second worker for rank \(rank) (\(registration.host) pid \(registration.pid)): \(reason)")
                try? server!.send(try ControlMessage.stop(.init(exitCode: 2, reason: reason, lastCheckpoint: nil)).encoded(), to: message.peer)
                continue
            }
            guard registration.version == SoftwareVersion.current else {
                let reason = "rank \(rank) on \(registration.host) runs srdpr \(registration.version ?? "of unknown version (older than 0.1.0)"), "
                    + "the coordinator runs srdpr \(SoftwareVersion.current): install the same srdpr on every host of the job"
                print("coordinator: refused rank \(rank) (\(registration.host) pid \(registration.pid)): \(reason)")
                try? server!.send(try ControlMessage.stop(.init(exitCode: 2, reason: reason, lastCheckpoint: nil)).encoded(), to: message.peer)
                throw CoordinatorError.setup(reason)
            }
            members[rank] = Member(registration: registration, control: message.peer)
            print("coordinator: rank \(rank) registered from \(registration.host) pid \(registration.pid) (ring \(registration.ringAddress))")
        }
    }

    /// The next control message of any rank, serving heartbeats and checking liveness meanwhile.
    /// A `failed` report or a lost rank ends the job with an error naming it.
    private func nextMessage(waitingFor: @autoclosure () -> String) throws -> ControlMessage {
        guard let server else { throw CoordinatorError.setup("the control channel is closed") }
        while true {
            if InterruptFlag.raised >= 2 { throw CoordinatorError.interruptedTwice }
            sendHeartbeats()
            // Short waits: a second Ctrl-C must stop every process within a second or two.
            let interval = min(0.25, max(0.1, options.heartbeatTimeout / 5))
            if let message = try server.receive(timeout: interval) {
                let rank = message.peer.rank
                guard var member = members[rank], message.peer == member.control || message.peer == member.heartbeat else {
                    continue  // a connection of a rank we do not know (a late duplicate): ignore
                }
                member.lastSeen = Date()
                members[rank] = member
                guard message.kind == .control else { continue }
                let decoded: ControlMessage
                do { decoded = try ControlMessage.decode(message.payload) } catch {
                    print("coordinator: dropped a malformed message from rank \(rank): \(error)")
                    continue
                }
                if case .failed(_, let reason) = decoded {
                    throw CoordinatorError.workerFailed(rank: rank, host: member.registration.host, reason: reason)
                }
                return decoded
            }
            let now = Date()
            if let (rank, member) = members.first(where: { now.timeIntervalSince($0.value.lastSeen) > options.heartbeatTimeout }) {
                throw CoordinatorError.workerLost(rank: rank, host: member.registration.host, pid: member.registration.pid,
                                                  seconds: now.timeIntervalSince(member.lastSeen), waitingFor: waitingFor())
            }
        }
    }

    private func sendHeartbeats() {
        let interval = min(2, max(0.1, options.heartbeatTimeout / 5))
        guard Date().timeIntervalSince(lastHeartbeatSent) >= interval, let server else { return }
        lastHeartbeatSent = Date()
        for member in members.values { if let peer = member.heartbeat { try? server.send([], kind: .heartbeat, to: peer) } }
    }

    private func send(_ message: ControlMessage, to rank: Int) throws {
        guard let server, let member = members[rank] else { return }
        try server.send(try message.encoded(), to: member.control)
    }

    /// Tells every worker to stop: on the order connection, and for an abort also on the heartbeat
    /// connection, whose thread ends the process even while its main thread waits on a peer.
    private func stopAll(code: Int32, reason: String) {
        guard let server, let payload = try? ControlMessage.stop(.init(exitCode: code, reason: reason, lastCheckpoint: lastCheckpoint)).encoded()
        else { return }
        for member in members.values {
            try? server.send(payload, to: member.control)
            if code != 0, let heartbeat = member.heartbeat { try? server.send(payload, to: heartbeat) }
        }
    }
}

public enum CoordinatorError: Error, CustomStringConvertible, Equatable {
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
