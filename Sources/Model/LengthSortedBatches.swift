/// Batches for inference that waste little on padding: the inputs sorted by token length (longest
/// first, ties in input order) and cut into batches of `batchSize`, so each batch pads to a length
/// close to all of its rows'. Longest first also makes the first batch the largest, so the
/// encoder's buffers are sized once and reused by every later batch. Callers put each embedding
/// back at its input's position (`batches` holds input positions).
public struct LengthSortedBatches: Sequence {
    /// Input positions of each batch, in the order to run them.
    public let batches: [[Int]]

    public init(lengths: [Int], batchSize: Int) {
        let order = lengths.indices.sorted { lengths[$0] != lengths[$1] ? lengths[$0] > lengths[$1] : $0 < $1 }
        let size = Swift.max(1, batchSize)
        batches = stride(from: 0, to: order.count, by: size).map { Array(order[$0..<Swift.min($0 + size, order.count)]) }
    }

    /// Padded tokens over real tokens (1 = no padding), for `lengths` as batched.
    public static func paddingRatio(lengths: [Int], batches: [[Int]]) -> Double {
        let real = lengths.reduce(0, +)
        let padded = batches.reduce(0) { $0 + $1.count * ($1.map { lengths[$0] }.max() ?? 0) }
        return real == 0 ? 1 : Double(padded) / Double(real)
    }

    public func makeIterator() -> IndexingIterator<[[Int]]> { batches.makeIterator() }
}
