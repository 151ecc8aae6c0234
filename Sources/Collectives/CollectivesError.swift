/// Everything that can go wrong in a collective, with messages that name the peer, the
/// parameter or the field involved so that a user can act on them.
public enum CollectivesError: Error, CustomStringConvertible, Equatable {
    /// The all-gather payload of `rank` (`size` bytes) exceeds `global_loss_buf_sz`.
    case allGatherPayloadTooLarge(rank: Int, size: Int, limit: Int)
    /// No message from `peer` within the receive timeout.
    case peerTimeout(peer: Int, address: String, seconds: Double, waitingFor: String)
    /// Our messages to `peer` were not taken off the wire within the timeout.
    case sendTimeout(peer: Int, address: String, seconds: Double)
    /// A message that does not match what this rank expects (other step, operation, size...).
    case headerMismatch(peer: Int, field: String, expected: String, got: String, during: String)
    /// Bytes that are not a message of ours (too short, wrong magic, wrong version).
    case malformedMessage(peer: Int, reason: String)
    /// The peer did not prove the shared secret, or refused ours.
    case authenticationFailed(peer: Int, address: String, reason: String)
    /// A setup parameter that cannot work (rank out of range, bad address...).
    case invalidArgument(String)
    /// A shared secret that others could read or guess (``SharedSecret``); `source` names where it came from.
    case insecureSecret(source: String, reason: String)
    /// A libzmq call failed.
    case zmq(call: String, errno: Int32, message: String)
    /// The communicator failed earlier and was shut down; build a new one.
    case closed(reason: String)

    /// "rank N", or "the coordinator" for the control channel's server.
    static func name(_ peer: Int) -> String { peer == ControlServer.coordinatorRank ? "the coordinator" : "rank \(peer)" }

    public var description: String {
        let name = Self.name
        switch self {
        case let .allGatherPayloadTooLarge(rank, size, limit):
            return "all-gather payload of rank \(rank) is \(size) bytes, over global_loss_buf_sz=\(limit); "
                + "set global_loss_buf_sz to at least \(size)"
        case let .peerTimeout(peer, address, seconds, waitingFor):
            return "no message from \(name(peer)) (\(address)) for \(seconds) s while waiting for \(waitingFor): "
                + "the peer is dead, stuck or unreachable"
        case let .sendTimeout(peer, address, seconds):
            return "\(name(peer)) (\(address)) did not take our messages for \(seconds) s: the peer is dead, stuck or unreachable"
        case let .headerMismatch(peer, field, expected, got, during):
            return "message from \(name(peer)) does not match during \(during): \(field) is \(got), expected \(expected)"
        case let .malformedMessage(peer, reason):
            return "malformed message from \(name(peer)): \(reason)"
        case let .authenticationFailed(peer, address, reason):
            return "authentication with \(name(peer)) (\(address)) failed: \(reason)"
        case let .invalidArgument(message):
            return message
        case let .insecureSecret(source, reason):
            return "\(source): refusing an insecure shared secret: \(reason)"
        case let .zmq(call, errno, message):
            return "\(call) failed: \(message) (errno \(errno))"
        case let .closed(reason):
            return "communicator is closed after an earlier failure: \(reason)"
        }
    }
}
