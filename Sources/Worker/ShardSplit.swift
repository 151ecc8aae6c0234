/// How a global batch is cut among ranks (SPEC §6): contiguous chunks, sizes as even as
/// possible, the first `count % worldSize` ranks one item larger.
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
}
