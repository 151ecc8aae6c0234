/// Which shard of an index job each worker builds: shards go out to whoever asks (a fast worker
/// takes more), the largest estimated work first (so the last shards handed out are the smallest
/// and the workers finish close together), and a lost worker's shard goes back to the front of
/// the queue for the next one to ask. Pure bookkeeping; the coordinator does the talking.
public struct ShardQueue: Equatable {
    /// Shards (numbers into the plan) nobody builds now, in the order they are handed out.
    public private(set) var pending: [Int]
    /// Shard -> the rank building it.
    public private(set) var owners: [Int: Int] = [:]
    public private(set) var done: Set<Int> = []

    public init(shards: Int) { pending = Array(0..<shards) }

    /// Shards handed out by decreasing `work` (any estimate of their cost); equal work in plan order.
    public init(work: [Int]) {
        pending = work.indices.sorted { work[$0] != work[$1] ? work[$0] > work[$1] : $0 < $1 }
    }

    public var isFinished: Bool { pending.isEmpty && owners.isEmpty }

    /// The shard `rank` builds now, if any.
    public func shard(of rank: Int) -> Int? { owners.first(where: { $0.value == rank })?.key }

    /// Hands the next shard to `rank` (nil: none left to hand out).
    public mutating func take(rank: Int) -> Int? {
        precondition(shard(of: rank) == nil, "rank \(rank) already builds a shard")
        guard !pending.isEmpty else { return nil }
        let shard = pending.removeFirst()
        owners[shard] = rank
        return shard
    }

    /// `shard` is built (by its owner).
    public mutating func complete(_ shard: Int) {
        owners[shard] = nil
        done.insert(shard)
    }

    /// `rank` is lost: its shard, if any, goes back to the front of the queue; returns it.
    @discardableResult
    public mutating func release(rank: Int) -> Int? {
        guard let shard = shard(of: rank) else { return nil }
        owners[shard] = nil
        pending.insert(shard, at: 0)
        return shard
    }
}
