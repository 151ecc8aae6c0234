import Collectives
import Foundation

/// A communicator that measures the time spent inside collectives, waiting for peers included:
/// the "communication" part of a step that a multi-node worker reports.
public final class TimedCommunicator: Communicator {
    public let base: Communicator
    /// Seconds inside collectives since the last `reset()`.
    public private(set) var seconds: Double = 0

    public init(_ base: Communicator) { self.base = base }

    public var rank: Int { base.rank }
    public var worldSize: Int { base.worldSize }
    public var step: Int {
        get { base.step }
        set { base.step = newValue }
    }

    public func reset() { seconds = 0 }

    private func timed<T>(_ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        return try body()
    }

    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp) throws {
        try timed { try base.allReduce(buffer, op: op) }
    }
    public func allGather(_ payload: [UInt8]) throws -> [[UInt8]] { try timed { try base.allGather(payload) } }
    public func broadcast(_ payload: [UInt8], root: Int) throws -> [UInt8] { try timed { try base.broadcast(payload, root: root) } }
    public func barrier() throws { try timed { try base.barrier() } }
}
