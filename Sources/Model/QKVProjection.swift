/// A layer's query, key and value projections as one sgemm: out [rows, 3 × hidden] = input ·
/// [W_q; W_k; W_v]ᵀ + [b_q, b_k, b_v], so Q, K and V are the three column blocks of each token row
/// (row stride 3 × hidden, which `Attention.Shape.qkvRowStride` tells the attention). One call packs
/// the input once instead of three times (OpenBLAS copies the activations into its panel layout on
/// every call: 6% of the CPU of `srdpr index`), and every output element is the same dot product
/// over the same input row as in three separate calls.
///
/// The checkpoint keeps the three weights apart (query.weight, query.bias, key.weight, ... as
/// Hugging Face stores them, interleaved with their biases), so each call first copies them into
/// one contiguous [3 × hidden, hidden] block: 3 × hidden² floats per layer and forward (1.8 MB for
/// MiniLM), taken from the current parameters, so training steps need no refresh. While
/// `parametersFixed` is set (forward-only passes over many batches, see BatchParallelInference)
/// each layer's block is copied once and kept instead.
final class QKVProjection {
    let hidden: Int
    /// [3 × hidden, hidden] weights, then [3 × hidden] biases: the block of the current call.
    private let packed: FloatBuffer
    /// Each layer's block (keyed by its query weight's offset) while the parameters are fixed.
    private var fixedBlocks: [Int: FloatBuffer] = [:]

    /// Set only while nothing writes the parameters (the kept blocks would be stale); clearing it
    /// frees the blocks (3 × hidden² floats per layer).
    var parametersFixed = false {
        didSet { if !parametersFixed { fixedBlocks = [:] } }
    }

    init(hidden: Int) {
        self.hidden = hidden
        packed = FloatBuffer(count: 3 * hidden * hidden + 3 * hidden)
    }

    /// Row stride of the output (and of Q, K, V in it).
    var rowStride: Int { 3 * hidden }

    /// Writes Q at `out`, K at `out + hidden`, V at `out + 2 × hidden`, each token row `rowStride` apart.
    func forward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                 parameters P: UnsafePointer<Float>, layer w: BertLayout.Layer, rows: Int) {
        let H = hidden, block = weightBlock(parameters: P, layer: w)
        Linear.forward(out, input, block, block + 3 * H * H, rows: rows, inDim: H, outDim: 3 * H)
    }

    /// The layer's [W_q; W_k; W_v] then [b_q, b_k, b_v]: copied now, or kept from an earlier call.
    private func weightBlock(parameters P: UnsafePointer<Float>, layer w: BertLayout.Layer) -> UnsafeMutablePointer<Float> {
        if parametersFixed, let kept = fixedBlocks[w.queryW] { return kept.pointer }
        let H = hidden, target = parametersFixed ? FloatBuffer(count: packed.count) : packed
        for (part, (weight, bias)) in [(w.queryW, w.queryB), (w.keyW, w.keyB), (w.valueW, w.valueB)].enumerated() {
            (target.pointer + part * H * H).update(from: P + weight, count: H * H)
            (target.pointer + 3 * H * H + part * H).update(from: P + bias, count: H)
        }
        if parametersFixed { fixedBlocks[w.queryW] = target }
        return target.pointer
    }
}
