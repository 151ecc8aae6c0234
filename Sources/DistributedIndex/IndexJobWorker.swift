import Collectives
import Data
import Foundation
import JobContracts
import Retrieval

/// One worker of `srdpr index` or `srdpr encode` with `--bind` or `--workers` (`srdpr index-worker`):
/// registers with the coordinator, learns the job's kind, checks its own copies of the file and
/// the model against the coordinator's fingerprints (a difference is reported by name and ends
/// the job), then asks for shards, encodes each from its copy of the file in chunks, and sends
/// the embeddings back. A
/// heartbeat thread on a second connection ends the process when the coordinator is silent for
/// the heartbeat timeout or orders the end, even in the middle of a chunk.
public final class IndexJobWorker {
    public struct Options {
        public var coordinator: String
        public var rank: Int
        public var secret: [UInt8]
        public var curve = false
        public var heartbeatTimeout: Double = 30
        /// This host's copy of the corpus (nil: the coordinator's path).
        public var corpusPath: String?
        /// The number of processes the launcher started and its variable, checked against the
        /// coordinator's world size; nil when unknown.
        public var launcherWorldSize: (size: Int, variable: String)?

        public init(coordinator: String, rank: Int, secret: [UInt8]) {
            self.coordinator = coordinator
            self.rank = rank
            self.secret = secret
        }
    }

    public let options: Options
    public var log: (String) -> Void = { FileHandle.standardError.write(Foundation.Data(($0 + "\n").utf8)) }

    public init(options: Options) { self.options = options }

    /// Runs until the coordinator ends the job; returns the exit status it asks for. `loadEncoder`
    /// loads the model for the job's kind from the coordinator's `--model ...` arguments (with this
    /// host's threads).
    public func run(loadEncoder: (IndexJobMessage.Job) throws -> ShardEncoder) throws -> Int32 {
        let rank = options.rank
        guard rank >= 0 else { throw IndexJobError.setup("--rank \(rank) must not be negative") }
        let control = try ControlClient(endpoint: options.coordinator, rank: rank, secret: options.secret, curve: options.curve,
                                        timeout: options.heartbeatTimeout)
        defer { control.close() }
        func send(_ message: IndexJobMessage) throws { try control.send(try message.encoded()) }
        var registration = IndexJobMessage.Registration(rank: rank, host: ProcessInfo.processInfo.hostName, pid: getpid(),
                                                        version: SoftwareVersion.current)
        registration.launcherWorldSize = options.launcherWorldSize?.size
        registration.launcherVariable = options.launcherWorldSize?.variable
        try send(.register(registration))
        startHeartbeats()
        let job: IndexJobMessage.Job
        switch try nextOrder(control) {
        case .job(let description): job = description
        case .stop(let code, let reason):
            log("rank \(rank): the coordinator refused this worker: \(reason)")
            return code == 0 ? 2 : code
        case let other: throw IndexJobError.protocolViolation("the coordinator's first message is not the job but \(other)")
        }
        do {
            let corpusPath = options.corpusPath ?? job.corpusPath
            let encoder = try check(job, corpusPath: corpusPath, loadEncoder: loadEncoder)
            log("rank \(rank): registered with \(options.coordinator) for an \(job.kind.rawValue) job; \(job.kind == .index ? "corpus" : "input") \(corpusPath) and model \(job.modelName) match the coordinator's")
            try send(.ready)
            while true {
                switch try nextOrder(control) {
                case .shard(let order):
                    try encode(order, corpusPath: corpusPath, chunkRows: job.chunkRows, encoder: encoder, send: send)
                    try send(.nextShard)
                case .stop(let code, let reason):
                    if code != 0 { log("rank \(rank): the coordinator ended the job: \(reason)") }
                    return code
                case let other: throw IndexJobError.protocolViolation("unexpected \(other) from the coordinator")
                }
            }
        } catch {
            try? send(.failed(reason: "\(error)"))
            log("rank \(rank): stopping: \(error)")
            throw error
        }
    }

    /// This host's corpus and model, checked against the coordinator's; the error says what differs.
    func check(_ job: IndexJobMessage.Job, corpusPath: String, loadEncoder: (IndexJobMessage.Job) throws -> ShardEncoder) throws -> ShardEncoder {
        let what = job.kind == .index ? "corpus" : "input"
        let corpus = try DatasetFingerprint.File(path: corpusPath, name: corpusPath, naming: "the \(what)")
        guard corpus.bytes == job.corpus.bytes, corpus.crc32c == job.corpus.crc32c else {
            throw IndexJobError.setup("its \(what) \(corpusPath) is \(corpus.bytes) bytes with CRC-32C \(String(format: "%08x", corpus.crc32c)), "
                + "the coordinator's \(job.corpusPath) is \(job.corpus.bytes) bytes with CRC-32C \(String(format: "%08x", job.corpus.crc32c)): "
                + "copy the same \(what) to every host (or give this host's copy with --corpus)")
        }
        let encoder = try loadEncoder(job)
        guard encoder.fingerprint == job.modelFingerprint else {
            throw IndexJobError.setup("its model \(encoder.modelName) has fingerprint \(encoder.fingerprint), the coordinator's \(job.modelName) "
                + "\(job.modelFingerprint): copy the same model (weights and settings) to every host")
        }
        return encoder
    }

    /// Encodes `order.rows` in chunks of at most `chunkRows` from its first row and sends each (an
    /// embedding does not depend on the batch around it, so any cut gives the one-process bytes).
    func encode(_ order: IndexJobMessage.ShardOrder, corpusPath: String, chunkRows: Int, encoder: ShardEncoder,
                send: (IndexJobMessage) throws -> Void) throws {
        try encoder.encode(rows: order.rows, of: corpusPath, chunkRows: chunkRows) { first, ids, vectors in
            try send(.chunk(.init(shard: order.shard, firstRow: first, ids: ids, vectors: vectors)))
        }
        log("rank \(options.rank): sent rows \(order.rows) (shard \(order.shard + 1))")
    }

    /// The coordinator's next message on the order connection.
    private func nextOrder(_ control: ControlClient) throws -> IndexJobMessage {
        while true {
            guard let (kind, payload) = try control.receive(timeout: 1), kind == .control else { continue }
            return try IndexJobMessage.decode(payload)
        }
    }

    /// Heartbeats every `timeout / 5` seconds on a connection of their own; ends the process when
    /// the coordinator is silent for the timeout or sends a stop order (while the main thread may
    /// be encoding a chunk for minutes).
    private func startHeartbeats() {
        let options = self.options, log = self.log
        let interval = min(2, max(0.1, options.heartbeatTimeout / 5))
        let thread = Thread {
            let client: ControlClient
            do {
                client = try ControlClient(endpoint: options.coordinator, rank: options.rank, secret: options.secret,
                                           curve: options.curve, timeout: options.heartbeatTimeout)
            } catch {
                log("rank \(options.rank): cannot open the heartbeat connection to \(options.coordinator): \(error)")
                _exit(3)
            }
            var lastHeard = Date()
            while true {
                try? client.send([], kind: .heartbeat)
                let deadline = Date(timeIntervalSinceNow: interval)
                while deadline.timeIntervalSinceNow > 0 {
                    guard let message = try? client.receive(timeout: deadline.timeIntervalSinceNow) else { continue }
                    lastHeard = Date()
                    if message.kind == .control, case .stop(let code, let reason)? = try? IndexJobMessage.decode(message.payload) {
                        if code != 0 { log("rank \(options.rank): the coordinator ended the job: \(reason)") }
                        // Let the main thread's last messages (chunks, the request for work) go out first.
                        usleep(200_000)
                        _exit(code)
                    }
                }
                let silent = Date().timeIntervalSince(lastHeard)
                if silent > options.heartbeatTimeout {
                    log("rank \(options.rank): lost the coordinator at \(options.coordinator): no heartbeat for \(String(format: "%.1f", silent)) s "
                        + "(--heartbeat-timeout \(options.heartbeatTimeout)); stopping (the shards it received are kept)")
                    _exit(3)
                }
            }
        }
        thread.name = "srdpr-heartbeat"
        thread.start()
    }
}
