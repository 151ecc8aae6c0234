import Data
import Foundation

/// What the coordinator and the workers of a multi-node job tell each other (SPEC §6, DESIGN.md):
/// the coordinator decides (plans, checkpoints, stops), the workers compute and report. Carried as
/// JSON in the payload of a `.control` message of the control channel.
public enum ControlMessage: Codable, Equatable, Sendable {
    /// Worker -> coordinator, first message: who it is and where its ring socket will listen.
    case register(Registration)
    /// Coordinator -> every worker once all have registered.
    case welcome(JobSetup)
    /// Worker -> coordinator: model loaded, ring connected, weights synchronised.
    case ready(rank: Int)
    /// Coordinator -> every worker: run one update on this rank's shards.
    case step(StepOrder)
    /// Worker -> coordinator: the update is done.
    case report(StepReport)
    /// Coordinator -> rank 0: write the checkpoint of this state.
    case checkpoint(CheckpointOrder)
    /// Rank 0 -> coordinator: written.
    case checkpointed(step: Int, path: String)
    /// Coordinator -> rank 0: evaluate the dev set now (`eval.*`, `eval_every`).
    case evaluate(EvaluateOrder)
    /// Rank 0 -> coordinator: the dev metrics (and keep_best's effect).
    case evaluated(DevSetReport)
    /// Worker -> coordinator: this rank cannot go on.
    case failed(rank: Int, reason: String)
    /// Coordinator -> workers: end of the job (exit code 0) or an abort.
    case stop(StopOrder)

    public struct Registration: Codable, Equatable, Sendable {
        public var rank: Int
        /// `tcp://HOST:PORT` the other ranks reach this rank's ring socket at.
        public var ringAddress: String
        public var host: String
        public var pid: Int32
        /// Random per process: tells a restarted or duplicate worker from the registered one.
        public var instance: String
        /// `ipc://@NAME` the rank also listens at when a neighbour on its own host may use it
        /// (``RingTransport``), with the host identity that decides who may; absent: TCP only.
        public var localRingAddress: String?
        public var hostIdentity: String?
        /// The worker's srdpr version (``SoftwareVersion``); the coordinator refuses another one.
        public var version: String?

        public init(rank: Int, ringAddress: String, host: String, pid: Int32, instance: String,
                    localRingAddress: String? = nil, hostIdentity: String? = nil, version: String? = SoftwareVersion.current) {
            self.rank = rank; self.ringAddress = ringAddress; self.host = host; self.pid = pid; self.instance = instance
            self.localRingAddress = localRingAddress; self.hostIdentity = hostIdentity; self.version = version
        }
    }

    public struct JobSetup: Codable, Equatable, Sendable {
        /// The training configuration, validated and with max_length already capped to the model's
        /// positions by the coordinator: the workers use it as it is.
        public var config: TrainingConfig
        public var worldSize: Int
        /// Rank i's ring address as its left neighbour reaches it, in rank order (TCP, or a Unix
        /// socket when both are on one host: ``RingTransport/ringAddresses(_:)``).
        public var ringAddresses: [String]
        public var ringJobID: String
        /// The dropout seed (the resumed checkpoint's, or the configuration's seed).
        public var dropoutSeed: UInt64
        /// Rank 0 loads model_file and the others receive its weights and optimizer state.
        public var resume: Bool
        public var heartbeatTimeout: Double
        public var curve: Bool
        /// The coordinator's datasets; every worker checks its own copies against them before it starts.
        public var datasets: [DatasetFingerprint]?

        public init(config: TrainingConfig, worldSize: Int, ringAddresses: [String], ringJobID: String, dropoutSeed: UInt64, resume: Bool, heartbeatTimeout: Double, curve: Bool,
                    datasets: [DatasetFingerprint]? = nil) {
            self.config = config; self.worldSize = worldSize; self.ringAddresses = ringAddresses; self.ringJobID = ringJobID; self.dropoutSeed = dropoutSeed; self.resume = resume; self.heartbeatTimeout = heartbeatTimeout; self.curve = curve
            self.datasets = datasets
        }
    }

    public struct StepOrder: Codable, Equatable, Sendable {
        /// 0-based update index.
        public var step: Int
        /// This rank's shard of each of the update's batches (gradient_accumulate_steps of them).
        public var plans: [BatchPlan]
        /// The newest checkpoint, for the message a worker prints when the job breaks.
        public var lastCheckpoint: String?

        public init(step: Int, plans: [BatchPlan], lastCheckpoint: String?) {
            self.step = step; self.plans = plans; self.lastCheckpoint = lastCheckpoint
        }
    }

    public struct StepReport: Codable, Equatable, Sendable {
        public var rank: Int
        public var step: Int
        public var loss: Float
        public var gradientNorm: Float
        public var learningRate: Double
        public var tokens: Int
        /// Reading and tokenizing the shard.
        public var fetchSeconds: Double
        /// The whole update (forward, collectives, backward, optimizer).
        public var computeSeconds: Double
        /// The part of `computeSeconds` blocked on peers (all-gathers, and the gradient all-reduce
        /// after backward; what overlapped backward is not counted).
        public var communicationSeconds: Double
        /// The all-gathers' part of `communicationSeconds` (the rest waited for the all-reduce).
        public var gatherSeconds: Double
        /// A fingerprint of the token ids and masks of the rank's shards (set in process: equal
        /// hashes mean equal batches, which the single-node log records).
        public var batchHash: String?

        public init(rank: Int, step: Int, loss: Float, gradientNorm: Float, learningRate: Double, tokens: Int, fetchSeconds: Double,
                    computeSeconds: Double, communicationSeconds: Double, gatherSeconds: Double, batchHash: String? = nil) {
            self.rank = rank; self.step = step; self.loss = loss; self.gradientNorm = gradientNorm; self.learningRate = learningRate; self.tokens = tokens; self.fetchSeconds = fetchSeconds; self.computeSeconds = computeSeconds; self.communicationSeconds = communicationSeconds
            self.gatherSeconds = gatherSeconds
            self.batchHash = batchHash
        }
    }

    public struct CheckpointOrder: Codable, Equatable, Sendable {
        public var state: TrainerState

        public init(state: TrainerState) {
            self.state = state
        }
    }

    public struct EvaluateOrder: Codable, Equatable, Sendable {
        /// The state after the update just done, for a best checkpoint written at this step.
        public var state: TrainerState
        /// The checkpoint written at this step, if any (keep_best links it instead of writing one).
        public var checkpoint: String?

        public init(state: TrainerState, checkpoint: String?) {
            self.state = state; self.checkpoint = checkpoint
        }
    }

    public struct StopOrder: Codable, Equatable, Sendable {
        public var exitCode: Int32
        public var reason: String
        public var lastCheckpoint: String?

        public init(exitCode: Int32, reason: String, lastCheckpoint: String?) {
            self.exitCode = exitCode; self.reason = reason; self.lastCheckpoint = lastCheckpoint
        }
    }

    /// Larger payloads are refused before decoding.
    public static let maximumBytes = 32 << 20

    public func encoded() throws -> [UInt8] {
        Array(try JSONEncoder.sortedKeys().encode(self))
    }

    /// Parses a payload; anything that is not one of these messages is an error saying what is wrong.
    public static func decode(_ bytes: [UInt8]) throws -> ControlMessage {
        guard bytes.count <= maximumBytes else {
            throw ControlMessageError.malformed("a control message of \(bytes.count) bytes (at most \(maximumBytes))")
        }
        guard !bytes.isEmpty else { throw ControlMessageError.malformed("an empty control message") }
        do {
            return try JSONDecoder().decode(ControlMessage.self, from: Foundation.Data(bytes))
        } catch let error as DecodingError {
            throw ControlMessageError.malformed(Self.describe(error))
        } catch {
            throw ControlMessageError.malformed("not a control message: \(error)")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.isEmpty ? "" : " at " + context.codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .dataCorrupted(let c): return "not valid JSON\(path(c)): \(c.debugDescription)"
        case .keyNotFound(let key, let c): return "missing field '\(key.stringValue)'\(path(c))"
        case .typeMismatch(_, let c): return "wrong type\(path(c)): \(c.debugDescription)"
        case .valueNotFound(_, let c): return "missing value\(path(c))"
        @unknown default: return "\(error)"
        }
    }
}

public enum ControlMessageError: Error, CustomStringConvertible, Equatable {
    case malformed(String)

    public var description: String {
        switch self {
        case .malformed(let reason): return "malformed control message: \(reason)"
        }
    }
}
