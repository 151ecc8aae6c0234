/// How `count` items are cut among ranks: contiguous chunks, sizes as even as possible, the first
/// `count % worldSize` ranks one item larger. A global batch's rows (SPEC §6) and the ring
/// all-reduce's segments (Collectives) are both cut this way.
public enum ShardSplit {
    /// The half-open range of items `rank` owns out of `count`.
    public static func range(count: Int, rank: Int, worldSize: Int) -> Range<Int> {
        precondition(worldSize > 0 && rank >= 0 && rank < worldSize)
        let base = count / worldSize
        let remainder = count % worldSize
        let start = rank * base + min(rank, remainder)
        let size = base + (rank < remainder ? 1 : 0)
        return start..<(start + size)
    }

    /// The rank that owns each of `count` items: `range`'s chunks, written out item by item.
    public static func owners(count: Int, worldSize: Int) -> [Int] {
        (0..<worldSize).flatMap { r in Array(repeating: r, count: range(count: count, rank: r, worldSize: worldSize).count) }
    }
}
