/// Batches for inference that waste little on padding: the inputs sorted by token length (longest
/// first, ties in input order) and cut into batches of at most `batchSize` sequences and at most
/// `maxTokens` tokens (rows × the batch's longest; a sequence longer than that gets a batch of its
/// own), so each batch pads to a length close to all of its rows'. Longest first also makes the
/// first batch the largest, so the encoder's buffers are sized once and reused by every later batch.
/// Callers put each embedding back at its input's position (`batches` holds input positions).
///
/// Why a token cap: a batch's activations should stay in cache. At 32 passages of 128 tokens the
/// feed-forward intermediate alone is 25 MB (MiniLM), so the GELU, the bias copies and OpenBLAS's
/// packing of every layer's input stream from memory; `srdpr index` of 2,000 FAQ passages
/// (MiniLM, 2 threads) took 4–6% less CPU with 4–8 passages per batch at max length 128 and 256
/// than with 32. Questions (~15 tokens) keep their 32 per batch: fewer rows per sgemm call would
/// cost more in weight packing than they save (8 per batch: 5% more CPU).
public struct LengthSortedBatches: Sequence {
    /// Input positions of each batch, in the order to run them.
    public let batches: [[Int]]

    public init(lengths: [Int], batchSize: Int, maxTokens: Int = .max) {
        let order = lengths.indices.sorted { lengths[$0] != lengths[$1] ? lengths[$0] > lengths[$1] : $0 < $1 }
        let size = Swift.max(1, batchSize)
        var batches: [[Int]] = []
        var start = 0
        while start < order.count {
            // The batch's first sequence is its longest.
            let longest = Swift.max(1, lengths[order[start]])
            let count = Swift.min(size, Swift.max(1, maxTokens / longest), order.count - start)
            batches.append(Array(order[start..<(start + count)]))
            start += count
        }
        self.batches = batches
    }

    /// Padded tokens over real tokens (1 = no padding), for `lengths` as batched.
    public static func paddingRatio(lengths: [Int], batches: [[Int]]) -> Double {
        let real = lengths.reduce(0, +)
        let padded = batches.reduce(0) { $0 + $1.count * ($1.map { lengths[$0] }.max() ?? 0) }
        return real == 0 ? 1 : Double(padded) / Double(real)
    }

    public func makeIterator() -> IndexingIterator<[[Int]]> { batches.makeIterator() }
}
