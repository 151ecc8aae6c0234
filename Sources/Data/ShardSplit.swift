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

    /// `rows` cut into at most `parts` contiguous shards of whole blocks of `blockRows` rows counted
    /// from `rows.lowerBound` (only the last block may be short), blocks dealt out as `range` deals
    /// items; fewer shards when there are fewer blocks. Sharded `index`/`encode` cut this way, so
    /// every block (chunk, window) holds the rows it holds in a one-process run.
    public static func blockAligned(rows: Range<Int>, blockRows: Int, parts: Int) -> [Range<Int>] {
        precondition(blockRows > 0 && parts > 0)
        let blocks = (rows.count + blockRows - 1) / blockRows
        let shardCount = min(parts, blocks)
        return (0..<shardCount).map { rank in
            let owned = range(count: blocks, rank: rank, worldSize: shardCount)
            return (rows.lowerBound + owned.lowerBound * blockRows)..<min(rows.lowerBound + owned.upperBound * blockRows, rows.upperBound)
        }
    }
}
