import Collectives
import Model

/// How a rank's gradient buffer is all-reduced while backward still runs (as PyTorch DDP's
/// buckets): one bucket per part of each encoder's `backwardOrder` (top layer first), question
/// encoder then context encoder, which is the order backward finishes them on every rank. The
/// word-embedding tables get buckets of their own, reduced sparsely: a batch touches only the
/// rows of its tokens, and they are half of MiniLM's parameters.
public struct GradientPlan: Sendable {
    /// In reduction order.
    public private(set) var buckets: [GradientBucket] = []
    /// [side][part of backwardOrder] -> the buckets that part completes.
    private var bucketsOfPart: [[[Int]]] = [[], []]

    /// Nil when the buckets would not cover the buffer exactly once (a layout this plan does not
    /// know): the caller then reduces the whole buffer after backward.
    init?(_ model: BiEncoder) {
        self.init(question: model.question.layout, context: model.context.layout, totalCount: model.layout.totalCount,
                  hiddenSize: model.config.hiddenSize)
    }

    /// The plan of a bi-encoder with these two encoder layouts in a gradient buffer of
    /// `totalCount` floats (also for benchmarks that need the buckets without a model).
    public init?(question: BertLayout, context: BertLayout, totalCount: Int, hiddenSize: Int) {
        for (side, layout) in [(BiEncoder.Side.question, question), (.context, context)] {
            let words = layout.wordEmbeddingRange
            for part in layout.backwardOrder {
                let pieces = part.lowerBound <= words.lowerBound && words.upperBound <= part.upperBound && !words.isEmpty
                    ? [part.lowerBound..<words.lowerBound, words, words.upperBound..<part.upperBound] : [part]
                var indices: [Int] = []
                for piece in pieces where !piece.isEmpty {
                    indices.append(buckets.count)
                    buckets.append(GradientBucket(piece, sparseRowWidth: piece == words ? hiddenSize : nil))
                }
                bucketsOfPart[side.rawValue].append(indices)
            }
        }
        var covered = 0
        for range in buckets.map(\.range).sorted(by: { $0.lowerBound < $1.lowerBound }) {
            guard range.lowerBound == covered else { return nil }
            covered = range.upperBound
        }
        guard covered == totalCount else { return nil }
    }

    /// The buckets whose gradients are complete once `side` has finished part `part` of its backward order.
    public func buckets(_ side: BiEncoder.Side, part: Int) -> [Int] {
        let parts = bucketsOfPart[side.rawValue]
        return parts.indices.contains(part) ? parts[part] : []
    }
}
