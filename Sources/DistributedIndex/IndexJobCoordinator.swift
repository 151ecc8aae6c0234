import Collectives
import Data
import Foundation
import JobContracts
import Retrieval

/// The coordinator of an index or embeddings built by several processes: `srdpr index` or
/// `srdpr encode` with `--bind ADDR --world-size N` across the hosts of a job, and with
/// `--workers N` on this host (the same coordinator on loopback); the job's kind tells the workers
/// what to encode. Built like a training run is (the same control channel, shared secret, ranks and
/// heartbeats), with the shards of ``ShardedIndexBuild`` (passage ranges of whole chunks, each an
/// index of its own under DIR/shards/, appended in order at the end: the bytes of one process).
/// Workers (`srdpr index-worker`) ask for a shard when they are free (the largest first, see
/// ``ShardQueue``), encode it from their own copy of the corpus and model and send the embeddings
/// back chunk by chunk; the coordinator
/// writes them (no shared file system needed), so an interrupted job keeps every chunk received.
/// Shards go out once every rank of `--world-size` has registered (as a training job starts);
/// a lost worker's shard goes to the next worker that asks; a worker whose corpus or model
/// differs from the coordinator's is named and ends the job.
public final class IndexJobCoordinator {
    public typealias Options = CoordinatorListenOptions

    /// A worker as it registered, and what it does now.
    struct Member {
        var registration: IndexJobMessage.Registration
        var control: ControlServer.Peer
        var heartbeat: ControlServer.Peer?
        var lastSeen = Date()
        /// The shard it builds and the file it goes into.
        var writer: IndexWriter?
        var shardsBuilt = 0
        var rowsBuilt = 0
        /// It asked for a shard when none was left to hand out (one may still come back).
        var waiting = false
        /// When it found the queue empty: from then on it waits for the others (the load's imbalance).
        var idleSince: Date?

        var name: String { "rank \(registration.rank) on \(registration.host) (pid \(registration.pid))" }
    }

    public let options: Options
    public let job: IndexJobMessage.Job
    /// Messages, prefixed with the job's kind ("index: ", "encode: ").
    public var log: (String) -> Void
    /// (rows built, rows to build), after every chunk.
    public var progress: (Int, Int) -> Void = { _, _ in }
    /// Called a few times a second while the job runs; what it throws ends the job (`srdpr index
    /// --workers` checks its child processes here, so a child that dies is named at once).
    public var poll: () throws -> Void = {}

    private var server: ControlServer?
    private var members: [Int: Member] = [:]
    /// Heartbeat connections that spoke before their rank registered.
    private var earlyHeartbeats: [Int: ControlServer.Peer] = [:]
    private var lost: [String] = []
    /// Ranks that registered so far: shards go out once all `worldSize` have (every process the
    /// launcher started takes part and is told when the job ends).
    private var registered = Set<Int>()
    private var lastHeartbeatSent = Date.distantPast
    // The job being run.
    private var shards: [ShardedIndexBuild.Shard] = []
    private var signature: PassageIndex.Signature?
    private var queue = ShardQueue(shards: 0)
    private var built = 0
    private var total = 0

    public init(options: Options, job: IndexJobMessage.Job) throws {
        guard options.worldSize >= 1 else { throw IndexJobError.setup("--world-size \(options.worldSize) must be at least 1") }
        guard options.heartbeatTimeout > 0, options.joinTimeout > 0 else {
            throw IndexJobError.setup("--heartbeat-timeout and --join-timeout must be positive")
        }
        self.options = options
        self.job = job
        let prefix = job.kind.rawValue + ": "
        log = { FileHandle.standardError.write(Foundation.Data((prefix + $0 + "\n").utf8)) }
    }

    /// Binds the control address (so workers can be started against `endpoint`).
    public func listen() throws {
        guard server == nil else { return }
        server = try ControlServer(bind: options.bind, worldSize: options.worldSize, secret: options.secret, curve: options.curve)
    }

    public var endpoint: String? { server?.endpoint }

    /// Builds `shards` (the plan of ``ShardedIndexBuild``) with the workers that connect, writing
    /// each into its directory with the coordinator's `signature`, handed out by decreasing `work`
    /// (an estimate of each shard's cost); returns when all are complete.
    public func run(shards: [ShardedIndexBuild.Shard], signature: PassageIndex.Signature, work: [Int]) throws {
        try listen()
        guard let server else { throw IndexJobError.setup("the control channel did not start") }
        defer { server.close(); self.server = nil }
        self.shards = shards
        self.signature = signature
        guard work.count == shards.count else { throw IndexJobError.setup("\(work.count) work estimates for \(shards.count) shards") }
        queue = ShardQueue(work: work)
        total = shards.reduce(0) { $0 + $1.rows.count }
        built = ShardedIndexBuild.encodedRows(shards)
        progress(built, total)
        log("listening on \(server.endpoint); \(shards.count) shard(s) (chunks of \(job.chunkRows) rows) for \(options.worldSize) worker(s)")
        let started = Date()
        do {
            while !queue.isFinished {
                sendHeartbeats()
                if let message = try server.receive(timeout: min(0.25, max(0.05, options.heartbeatTimeout / 5))) {
                    try handle(message)
                }
                try checkLiveness()
                try poll()
                if registered.count < options.worldSize, Date().timeIntervalSince(started) > options.joinTimeout {
                    let missing = (0..<options.worldSize).filter { !registered.contains($0) }
                    throw IndexJobError.setup("index-worker rank(s) \(missing) did not register within \(Int(options.joinTimeout)) s "
                        + "(--join-timeout); start `srdpr index-worker --coordinator \(server.endpoint)` on every host of the job")
                }
            }
        } catch {
            stopAll(code: 1, reason: "the coordinator stopped: \(error)")
            throw error
        }
        stopAll(code: 0, reason: "every shard is built")
        let end = Date()
        for member in members.values.sorted(by: { $0.registration.rank < $1.registration.rank }) {
            let idle = member.idleSince.map { String(format: ", then waited %.1f s for the others", end.timeIntervalSince($0)) } ?? ""
            log("\(member.name) built \(member.shardsBuilt) shard(s), \(member.rowsBuilt) rows\(idle)")
        }
    }

    private func handle(_ message: ControlServer.Message) throws {
        let rank = message.peer.rank
        if message.kind == .heartbeat {
            if var member = members[rank], member.control != message.peer {
                member.heartbeat = member.heartbeat ?? message.peer
                if member.heartbeat == message.peer { member.lastSeen = Date() }
                members[rank] = member
            } else if members[rank] == nil {
                earlyHeartbeats[rank] = message.peer
            } else {
                members[rank]?.lastSeen = Date()
            }
            return
        }
        let decoded: IndexJobMessage
        do { decoded = try IndexJobMessage.decode(message.payload) } catch {
            log("dropped a message from rank \(rank): \(error)")
            return
        }
        if case .register(let registration) = decoded {
            try register(registration, peer: message.peer)
            return
        }
        guard var member = members[rank], member.control == message.peer else {
            log("ignored a message from rank \(rank), which is not registered on that connection")
            return
        }
        member.lastSeen = Date()
        members[rank] = member
        switch decoded {
        case .failed(let reason):
            throw IndexJobError.workerFailed(rank: rank, host: member.registration.host, reason: reason)
        case .ready, .nextShard:
            guard member.writer == nil else {
                throw IndexJobError.workerFailed(rank: rank, host: member.registration.host,
                    reason: "it asked for a new shard before sending all rows of its shard")
            }
            try handOut(to: rank)
        case .chunk(let chunk):
            guard let writer = member.writer, queue.shard(of: rank) == chunk.shard,
                  chunk.firstRow == shards[chunk.shard].rows.lowerBound + writer.encodedRows else {
                throw IndexJobError.workerFailed(rank: rank, host: member.registration.host,
                    reason: "it sent rows from \(chunk.firstRow) of shard \(chunk.shard), which it was not asked for")
            }
            try writer.append(vectors: chunk.vectors, ids: chunk.ids)
            built += chunk.ids.count
            member.rowsBuilt += chunk.ids.count
            progress(built, total)
            if writer.encodedRows == writer.totalRows {
                try writer.finish()
                queue.complete(chunk.shard)
                member.writer = nil
                member.shardsBuilt += 1
            }
            members[rank] = member
        default:
            log("ignored an unexpected \(decoded) from \(member.name)")
        }
    }

    private func register(_ registration: IndexJobMessage.Registration, peer: ControlServer.Peer) throws {
        guard let server else { return }
        let rank = peer.rank
        guard registration.rank == rank else {
            log("ignored a registration for rank \(registration.rank) on a connection of rank \(rank)")
            return
        }
        if let existing = members[rank] {
            let reason = "rank \(rank) is already taken by \(existing.registration.host) pid \(existing.registration.pid)"
            log("refused a second worker for rank \(rank) (\(registration.host) pid \(registration.pid)): \(reason)")
            try? server.send(try IndexJobMessage.stop(exitCode: 2, reason: reason).encoded(), to: peer)
            return
        }
        // A worker that cannot take part is told why (it exits with status 2), then the job ends naming it.
        func refuse(_ reason: String) -> Error {
            try? server.send(try IndexJobMessage.stop(exitCode: 2, reason: reason).encoded(), to: peer)
            return IndexJobError.workerFailed(rank: rank, host: registration.host, reason: reason)
        }
        guard registration.version == SoftwareVersion.current else {
            throw refuse("it runs srdpr \(registration.version), the coordinator srdpr \(SoftwareVersion.current): install the same srdpr on every host")
        }
        if let launched = registration.launcherWorldSize, launched != options.worldSize {
            throw refuse("its launcher started \(launched) worker(s) (\(registration.launcherVariable ?? "its world size")=\(launched)) but the "
                + "coordinator runs --world-size \(options.worldSize): start as many index-workers as the coordinator expects")
        }
        var member = Member(registration: registration, control: peer)
        member.heartbeat = earlyHeartbeats.removeValue(forKey: rank)
        members[rank] = member
        registered.insert(rank)
        log("rank \(rank) registered from \(registration.host) pid \(registration.pid)"
            + (registered.count < options.worldSize ? "; waiting for \(options.worldSize - registered.count) more" : ""))
        try server.send(try IndexJobMessage.job(job).encoded(), to: peer)
    }

    /// The next shard for `rank`, or its stop order when none is left. A shard an earlier run
    /// completed (or wrote every row of: `IndexWriter` then marks it complete) counts as done at
    /// once, so no worker is sent an empty range.
    private func handOut(to rank: Int) throws {
        guard registered.count == options.worldSize else {
            members[rank]?.waiting = true
            return
        }
        guard let server, let signature, var member = members[rank] else { return }
        member.waiting = false
        members[rank] = member
        while let next = queue.take(rank: rank) {
            let shard = shards[next]
            guard let writer = try IndexWriter(directory: shard.directory, corpusPath: job.corpusPath, totalRows: shard.rows.count,
                                               firstRow: shard.rows.lowerBound, signature: signature) else {
                queue.complete(next)
                continue
            }
            member.writer = writer
            member.idleSince = nil
            members[rank] = member
            let rows = (shard.rows.lowerBound + writer.encodedRows)..<shard.rows.upperBound
            log("shard \(next + 1) of \(shards.count) (rows \(rows)) -> \(member.name)")
            try server.send(try IndexJobMessage.shard(.init(shard: next, rows: rows)).encoded(), to: member.control)
            return
        }
        // Nothing to hand out; the others' shards may still come back if they are lost, so this
        // worker waits until every shard is built.
        members[rank]?.waiting = true
        if members[rank]?.idleSince == nil { members[rank]?.idleSince = Date() }
    }

    /// Workers silent for longer than the heartbeat timeout are lost: their shards go back to the
    /// queue and the next worker that asks takes them (one waiting for work now takes them at once).
    private func checkLiveness() throws {
        let now = Date()
        for (rank, member) in members where now.timeIntervalSince(member.lastSeen) > options.heartbeatTimeout {
            members[rank] = nil
            let seconds = String(format: "%.1f", now.timeIntervalSince(member.lastSeen))
            lost.append("\(member.name), silent for \(seconds) s")
            if let shard = queue.release(rank: rank) {
                log("lost \(member.name): no heartbeat for \(seconds) s (--heartbeat-timeout \(options.heartbeatTimeout)); "
                    + "shard \(shard + 1) (rows \(shards[shard].rows)) goes to the next worker")
            } else {
                log("lost \(member.name): no heartbeat for \(seconds) s (--heartbeat-timeout \(options.heartbeatTimeout))")
            }
        }
        if members.isEmpty, !lost.isEmpty, !queue.isFinished {
            throw IndexJobError.noWorkersLeft(remaining: queue.pending.count + queue.owners.count, lost: lost)
        }
        for rank in members.keys.sorted() where members[rank]!.waiting && !queue.pending.isEmpty && registered.count == options.worldSize {
            try handOut(to: rank)
        }
    }

    private func sendHeartbeats() {
        let interval = min(2, max(0.1, options.heartbeatTimeout / 5))
        guard Date().timeIntervalSince(lastHeartbeatSent) >= interval, let server else { return }
        lastHeartbeatSent = Date()
        for member in members.values { if let peer = member.heartbeat { try? server.send([], kind: .heartbeat, to: peer) } }
    }

    /// Tells every worker to end, on both of its connections (the heartbeat thread acts at once).
    private func stopAll(code: Int32, reason: String) {
        guard let server, let payload = try? IndexJobMessage.stop(exitCode: code, reason: reason).encoded() else { return }
        for member in members.values {
            try? server.send(payload, to: member.control)
            if let heartbeat = member.heartbeat { try? server.send(payload, to: heartbeat) }
        }
    }
}
