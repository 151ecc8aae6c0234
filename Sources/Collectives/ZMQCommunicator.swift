import CZMQ
import Foundation
import Logging

/// The multi-process ``Communicator``: the ring algorithms (RingAllReduce.swift,
/// RingAllGather.swift) over a ``ZMQRingLink`` to the neighbours (ZeroMQ TCP or Unix sockets,
/// shared-memory lanes on one host, shared-secret handshakes). No coordinator in the data path.
/// This class only numbers the collectives (job, step, sequence in every header) and shuts the
/// link after an error that leaves the ring inconsistent; every later call then throws
/// ``CollectivesError/closed``. Receives give up after ``Options/receiveTimeout``, naming the peer.
public final class ZMQCommunicator: Communicator {
    /// Tuning and limits; the defaults suit training on loopback and on a LAN.
    public struct Options: Sendable {
        /// Seconds to wait for a message from the left neighbour before naming it as lost.
        public var receiveTimeout: Double = 30
        /// Seconds to wait at setup for both neighbours to connect and prove the secret.
        public var setupTimeout: Double = 30
        /// `global_loss_buf_sz`: the largest all-gather payload of one rank, in bytes (nil: no
        /// limit). Training passes the configuration's value, whose default is the only one.
        public var globalLossBufferSize: Int? = nil
        /// Bytes per pipelined all-reduce chunk.
        public var chunkBytes: Int = 512 << 10
        /// Chunks at least this large are sent straight from the caller's buffer (zero copy);
        /// smaller ones are copied, which is cheaper than tracking them.
        public var zeroCopyMinimumBytes: Int = 32 << 10
        /// libzmq I/O threads per process.
        public var ioThreads: Int = 1
        /// Kernel socket buffer sizes in bytes (0: the system default).
        public var socketBufferBytes: Int32 = 0
        /// Encrypt the ring with CURVE, keys derived from the shared secret (slower).
        public var curve: Bool = false
        /// Raise glibc's mmap and trim thresholds for this process so that libzmq's receive
        /// buffers are reused instead of faulted in anew (see MallocTuning.swift).
        public var tuneMalloc: Bool = true
        /// Send payloads to a right neighbour on this host (an `ipc://` ring address) through a
        /// shared-memory lane (``SharedMemoryLane``); headers still go over ZeroMQ.
        public var sharedMemoryLanes: Bool = true
        /// Slots of `chunkBytes` in each lane (payloads in flight before sends use the socket).
        public var laneSlots: Int = 16

        public init() {}
    }

    public var rank: Int { link.rank }
    public var worldSize: Int { link.worldSize }
    public var addresses: [String] { link.addresses }
    public var jobID: String { link.jobID }
    /// Where this rank's ROUTER listens.
    public var bindAddress: String { link.bindAddress }
    public var options: Options { link.options }
    public var step: Int = 0
    /// One line per refused connection or dropped stranger message (also logged as warnings).
    public var refusedPeers: [String] { link.refusedPeers }
    /// `global_loss_buf_sz` of the all-gather (nil: no limit).
    public var globalLossBufferSize: Int? { options.globalLossBufferSize }
    /// Whether payloads to the right neighbour / from the left one go through shared memory.
    public var sharedMemoryLinks: (toRight: Bool, fromLeft: Bool) { link.sharedMemoryLinks }
    /// Payloads sent through the outgoing lane, and sent over the socket because it was full.
    public var laneCounts: (published: Int, overflowed: Int) { link.laneCounts }

    private let link: ZMQRingLink
    private let jobHash: UInt64
    private var sequence = 0

    /// Connects rank `rank` of `worldSize` into the ring and returns once both neighbours have
    /// proven the secret. `addresses[i]` is rank i's `tcp://host:port` as the others reach it;
    /// this rank binds `bindAddress` (default: its own entry, e.g. `tcp://0.0.0.0:PORT` when the
    /// host has several interfaces). All ranks must use the same `jobID` and `secret`.
    public init(rank: Int, worldSize: Int, addresses: [String], jobID: String, secret: [UInt8]? = nil,
                bindAddress: String? = nil, options: Options = Options(),
                logger: Logger = Logger(label: "srdpr.collectives")) throws {
        link = try ZMQRingLink(rank: rank, worldSize: worldSize, addresses: addresses, jobID: jobID, secret: secret,
                               bindAddress: bindAddress, options: options, logger: logger)
        jobHash = WireHeader.jobHash(jobID)
    }

    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp) throws {
        try guarded {
            try RingAllReduce.run(buffer, op: op, link: link, template: nextTemplate(.allReduce, total: buffer.count),
                                  chunkElements: options.chunkBytes / 4, zeroCopyMinimumBytes: options.zeroCopyMinimumBytes)
        }
    }

    public func allGather(_ payload: [UInt8]) throws -> [[UInt8]] {
        try guarded(failOn: { !($0 is CollectivesError) || !Self.isPayloadLimit($0) }) {
            try RingAllGather.run(payload, limit: options.globalLossBufferSize ?? Int.max, link: link, template: nextTemplate(.allGather))
        }
    }

    public func broadcast(_ payload: [UInt8], root: Int) throws -> [UInt8] {
        guard (0..<worldSize).contains(root) else {
            throw CollectivesError.invalidArgument("broadcast root \(root) is outside 0..<\(worldSize)")
        }
        return try guarded {
            try RingAllGather.broadcast(payload, root: root, link: link, template: nextTemplate(.broadcast))
        }
    }

    public func barrier() throws {
        // Once this rank has received every other rank's (empty) message, all have entered.
        _ = try guarded {
            try RingAllGather.run([], limit: 0, link: link, template: nextTemplate(.barrier))
        }
    }

    /// Sends `frames` to the right neighbour as they are, unchecked. For fault-injection tests
    /// (a garbage or truncated message from an authenticated peer); never used by the library.
    public func sendRawFramesForTesting(_ frames: [[UInt8]]) throws {
        try link.sendRawFramesForTesting(frames)
    }

    private func nextTemplate(_ kind: WireHeader.Kind, total: Int = 0) -> WireHeader {
        defer { sequence += 1 }
        return WireHeader(kind: kind, sender: rank, job: jobHash, step: step, sequence: sequence, length: 0, total: total)
    }

    private static func isPayloadLimit(_ error: Error) -> Bool {
        if case .allGatherPayloadTooLarge? = error as? CollectivesError { return true }
        return false
    }

    /// Runs a collective; on failure shuts the link down (so libzmq no longer reads the caller's
    /// buffers) unless `failOn` says the error leaves the ring consistent.
    private func guarded<T>(failOn: (Error) -> Bool = { _ in true }, _ body: () throws -> T) throws -> T {
        if let reason = link.closedReason { throw CollectivesError.closed(reason: reason) }
        do {
            return try body()
        } catch {
            if failOn(error) { throw link.fail(error) }
            throw error
        }
    }
}
