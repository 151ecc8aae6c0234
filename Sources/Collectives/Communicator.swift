/// Collective operations among the workers of one job (DESIGN.md, Collectives).
///
/// Every rank calls the same operations in the same order; implementations check that the
/// peers agree (job, step, operation, sizes) and throw instead of mixing up buffers.
/// A communicator is used from one thread at a time (``BucketedAllReduce`` borrows it for its
/// background thread between `start` and `wait`).
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var worldSize: Int { get }
    /// The training step the next collectives belong to; it travels in every message header so
    /// that ranks on different steps fail loudly instead of mixing gradients.
    var step: Int { get set }

    /// Sums (or averages) `buffer` element-wise across all ranks, in place.
    func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp) throws
    /// Every rank contributes one byte payload; every rank receives all payloads in rank order.
    /// A payload larger than the communicator's `global_loss_buf_sz` limit is an error on every rank.
    func allGather(_ payload: [UInt8]) throws -> [[UInt8]]
    /// Rank `root`'s payload is returned on every rank (the others' `payload` is ignored).
    func broadcast(_ payload: [UInt8], root: Int) throws -> [UInt8]
    /// Returns once every rank has entered the barrier.
    func barrier() throws
}

public enum ReduceOp: Sendable, CustomStringConvertible {
    case sum
    case mean

    public var description: String { self == .sum ? "sum" : "mean" }
}

/// World size 1: single-node training runs the same step code through this communicator.
public final class InProcessCommunicator: Communicator {
    /// The same `global_loss_buf_sz` check as the distributed all-gather, so a configuration
    /// that would fail on several workers fails on one too (nil: no limit).
    public let globalLossBufferSize: Int?
    public var step: Int = 0

    public init(globalLossBufferSize: Int? = nil) {
        self.globalLossBufferSize = globalLossBufferSize
    }

    public var rank: Int { 0 }
    public var worldSize: Int { 1 }
    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp) throws {}
    public func allGather(_ payload: [UInt8]) throws -> [[UInt8]] {
        if let limit = globalLossBufferSize, payload.count > limit {
            throw CollectivesError.allGatherPayloadTooLarge(rank: 0, size: payload.count, limit: limit)
        }
        return [payload]
    }
    public func broadcast(_ payload: [UInt8], root: Int) throws -> [UInt8] {
        guard root == 0 else { throw CollectivesError.invalidArgument("broadcast root \(root) is not a rank of a world of size 1") }
        return payload
    }
    public func barrier() throws {}
}

extension Communicator {
    /// ``Communicator/allReduce(_:op:)`` over a Swift array.
    public func allReduce(_ values: inout [Float], op: ReduceOp) throws {
        try values.withUnsafeMutableBufferPointer { try allReduce($0, op: op) }
    }
}
