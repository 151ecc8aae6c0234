/// Errors of an index or embeddings built by several processes, each naming the worker (rank, host) or the option.
public enum IndexJobError: Error, CustomStringConvertible, Equatable {
    case setup(String)
    case workerFailed(rank: Int, host: String, reason: String)
    /// Every worker that took part is lost and shards remain.
    case noWorkersLeft(remaining: Int, lost: [String])
    case lostCoordinator(String)
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .setup(let text): return text
        case let .workerFailed(rank, host, reason):
            return "index-worker rank \(rank) on \(host) failed: \(reason); the finished shards are kept: run the same command again to go on"
        case let .noWorkersLeft(remaining, lost):
            return "every index-worker is lost (\(lost.joined(separator: "; "))) and \(remaining) shard(s) remain; "
                + "the finished shards are kept: run the same command again with workers to go on"
        case .lostCoordinator(let text): return text
        case .protocolViolation(let text): return "protocol error: \(text)"
        }
    }
}
