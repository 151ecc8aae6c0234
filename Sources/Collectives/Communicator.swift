/// Collective operations among the workers of one job (DESIGN.md, Collectives).
///
/// Every rank calls the same operations in the same order; implementations check that the
/// peers agree (job, step, operation, sizes) and throw instead of mixing up buffers.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var worldSize: Int { get }

    /// Sums (or averages) `buffer` element-wise across all ranks, in place.
    func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp) throws
    /// Every rank contributes one byte payload; every rank receives all payloads in rank order.
    func allGather(_ payload: [UInt8]) throws -> [[UInt8]]
    /// Rank `root`'s payload is returned on every rank.
    func broadcast(_ payload: [UInt8], root: Int) throws -> [UInt8]
    /// Returns once every rank has entered the barrier.
    func barrier() throws
}

public enum ReduceOp: Sendable {
    case sum
    case mean
}

/// World size 1: single-node training runs the same step code through this communicator.
public final class InProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var worldSize: Int { 1 }
    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp) throws {}
    public func allGather(_ payload: [UInt8]) throws -> [[UInt8]] { [payload] }
    public func broadcast(_ payload: [UInt8], root: Int) throws -> [UInt8] { payload }
    public func barrier() throws {}
}
