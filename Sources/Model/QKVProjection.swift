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
/// MiniLM), always taken from the current parameters, so training steps need no refresh.
final class QKVProjection {
    let hidden: Int
    /// [3 × hidden, hidden] weights, then [3 × hidden] biases.
    private let packed: FloatBuffer

    init(hidden: Int) {
        self.hidden = hidden
        packed = FloatBuffer(count: 3 * hidden * hidden + 3 * hidden)
    }

    /// Row stride of the output (and of Q, K, V in it).
    var rowStride: Int { 3 * hidden }

    /// Writes Q at `out`, K at `out + hidden`, V at `out + 2 × hidden`, each token row `rowStride` apart.
    func forward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                 parameters P: UnsafePointer<Float>, layer w: BertLayout.Layer, rows: Int) {
        let H = hidden, weights = packed.pointer, biases = packed.pointer + 3 * H * H
        for (part, (weight, bias)) in [(w.queryW, w.queryB), (w.keyW, w.keyB), (w.valueW, w.valueB)].enumerated() {
            (weights + part * H * H).update(from: P + weight, count: H * H)
            (biases + part * H).update(from: P + bias, count: H)
        }
        Linear.forward(out, input, weights, biases, rows: rows, inDim: H, outDim: 3 * H)
    }
}
