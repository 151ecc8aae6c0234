import Collectives
import Data
import Foundation
import JobContracts

/// The ranks of a multi-node job as the training loop's ``StepExecutor`` (`srdpr coordinator`,
/// SPEC §6, DESIGN.md): waits for the workers to register, hands them the typed configuration and
/// the ring addresses, sends each rank its shards of every step, collects the reports and has
/// rank 0 write the checkpoints. It never touches tensors. Heartbeats both ways: a silent worker
/// is reported within the timeout and every other process is stopped with the last checkpoint.
public final class RemoteWorkers: StepExecutor {
    public typealias Options = CoordinatorListenOptions

    /// A rank as it registered.
    struct Member {
        var registration: ControlMessage.Registration
        var control: ControlServer.Peer
        var heartbeat: ControlServer.Peer?
        var lastSeen = Date()
    }

    public let options: Options
    public var print: (String) -> Void = { Swift.print($0); fflush(stdout) }

    private var server: ControlServer?
    private var members: [Int: Member] = [:]
    private var lastHeartbeatSent = Date.distantPast

    /// Checks the options (world size, timeouts); nothing is bound before `listen()`.
    public init(options: Options) throws {
        self.options = options
        try checkOptions()
    }

    /// The control channel's endpoint once `listen()` has bound it.
    public var endpoint: String? { server?.endpoint }
    /// Refused connections and dropped messages, for tests and logs.
    public var refusedPeers: [String] { server?.refusedPeers ?? [] }

    /// Binds the control socket (so workers can be started against `endpoint`).
    public func listen() throws {
        guard server == nil else { return }
        server = try ControlServer(bind: options.bind, worldSize: options.worldSize, secret: options.secret, curve: options.curve)
    }

    public var worldSize: Int { options.worldSize }

    /// Waits for every worker to register, sends them the job (the typed configuration and the ring
    /// addresses) and returns once all have loaded the model and joined the ring.
    public func start(_ job: JobStart) throws {
        // The loop handles a second Ctrl-C (it orders every worker to stop first).
        SecondInterrupt.exitsInHandler = false
        // Every worker checks its copies of the datasets against these before it loads anything.
        let datasets = try DatasetFingerprint.all(of: job.config)
        try listen()
        guard let server else { throw CoordinatorError.setup("the control channel did not start") }
        let world = options.worldSize
        print("coordinator: listening on \(server.endpoint); waiting for \(world) worker(s)")
        try register()
        let ringAddresses = RingTransport.ringAddresses((0..<world).map { members[$0]!.registration.offer })
        print("coordinator: ring links: " + (0..<world).map { rank in
            "\((rank + world - 1) % world)->\(rank) \(RingTransport.describe(ringAddresses[rank]))"
        }.joined(separator: ", "))
        let setup = ControlMessage.JobSetup(
            config: job.config, worldSize: world, ringAddresses: ringAddresses,
            ringJobID: "srdpr-" + UUID().uuidString, dropoutSeed: job.dropoutSeed,
            resume: job.resume, heartbeatTimeout: options.heartbeatTimeout, curve: options.curve, datasets: datasets)
        for rank in 0..<world { try send(.welcome(setup), to: rank) }
        var ready = Set<Int>()
        while ready.count < world {
            if case .ready(let rank) = try nextMessage(waitingFor: "rank(s) \(Set(0..<world).subtracting(ready).sorted()) to load the model and join the ring") {
                ready.insert(rank)
            }
        }
    }

    /// Sends every rank its shards of update `step` and collects the reports.
    public func execute(step: Int, shards: [[BatchPlan]], lastCheckpoint: String?) throws -> [ControlMessage.StepReport] {
        let world = options.worldSize
        for rank in 0..<world {
            try send(.step(.init(step: step, plans: shards[rank], lastCheckpoint: lastCheckpoint)), to: rank)
        }
        var reports: [Int: ControlMessage.StepReport] = [:]
        while reports.count < world {
            let waiting = Set(0..<world).subtracting(reports.keys).sorted()
            if case .report(let report) = try nextMessage(waitingFor: "rank(s) \(waiting) to finish step \(step + 1)"),
               report.step == step {
                reports[report.rank] = report
            }
        }
        return (0..<world).map { reports[$0]! }
    }

    /// Has rank 0 write the checkpoint of `state`.
    public func checkpoint(_ state: TrainerState) throws -> String {
        try send(.checkpoint(.init(state: state)), to: 0)
        while true {
            if case .checkpointed(let written, let path) = try nextMessage(waitingFor: "rank 0 to write the checkpoint of step \(state.step)"),
               written == state.step {
                return path
            }
        }
    }

    /// Rank 0 holds the weights: it evaluates while the other ranks wait for the next step.
    public func evaluate(_ state: TrainerState, checkpoint: String?) throws -> DevSetReport {
        try send(.evaluate(.init(state: state, checkpoint: checkpoint)), to: 0)
        while true {
            if case .evaluated(let report) = try nextMessage(waitingFor: "rank 0 to evaluate the dev set after step \(state.step)"),
               report.step == state.step {
                return report
            }
        }
    }

    /// Tells every worker to stop: on the order connection, and for an abort also on the heartbeat
    /// connection, whose thread ends the process even while its main thread waits on a peer.
    public func stop(code: Int32, reason: String, lastCheckpoint: String?) {
        defer { server?.close(); server = nil }
        guard let server, let payload = try? ControlMessage.stop(.init(exitCode: code, reason: reason, lastCheckpoint: lastCheckpoint)).encoded()
        else { return }
        for member in members.values {
            try? server.send(payload, to: member.control)
            if code != 0, let heartbeat = member.heartbeat { try? server.send(payload, to: heartbeat) }
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
}

extension ControlMessage.Registration {
    /// The ring addresses this rank offered.
    var offer: RingTransport.Offer {
        RingTransport.Offer(tcpAddress: ringAddress, localAddress: localRingAddress, hostIdentity: hostIdentity)
    }
}
