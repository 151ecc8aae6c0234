import CKernels

/// A layer's query, key and value projections as one product: out [rows, 3 × hidden] = input ·
/// [W_q; W_k; W_v]ᵀ + [b_q, b_k, b_v], so Q, K and V are the three column blocks of each token row
/// (row stride 3 × hidden, which `Attention.Shape.qkvRowStride` tells the attention). One call
/// reads each input row once instead of three times, and every output element is the same chain
/// over the same input row as in three separate calls.
///
/// The checkpoint keeps the three weights apart (query.weight, query.bias, key.weight, ... as
/// Hugging Face stores them, interleaved with their biases), so packing first copies them into
/// one contiguous [3 × hidden, hidden] block (3 × hidden² floats, 1.8 MB for MiniLM), then packs
/// that block as one Linear (PackedLinearWeights: kept while the parameters are fixed, packed
/// again at every forward otherwise).
final class QKVProjection {
    let hidden: Int
    /// [3 × hidden, hidden] weights, then [3 × hidden] biases: the block being packed.
    private let block: FloatBuffer

    init(hidden: Int) {
        self.hidden = hidden
        block = FloatBuffer(count: 3 * hidden * hidden + 3 * hidden)
    }

    /// Row stride of the output (and of Q, K, V in it).
    var rowStride: Int { 3 * hidden }

    /// Writes Q at `out`, K at `out + hidden`, V at `out + 2 × hidden`, each token row `rowStride` apart.
    func forward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                 parameters P: UnsafePointer<Float>, layer w: BertLayout.Layer, rows: Int, weights: PackedLinearWeights) {
        let H = hidden
        let packed = weights.packed(.init(weight: w.queryW, outDim: 3 * H), inDim: H) { target in
            for (part, (weight, bias)) in [(w.queryW, w.queryB), (w.keyW, w.keyB), (w.valueW, w.valueB)].enumerated() {
                (block.pointer + part * H * H).update(from: P + weight, count: H * H)
                (block.pointer + 3 * H * H + part * H).update(from: P + bias, count: H)
            }
            srdpr_gemm_pack_weights(target, block.pointer, block.pointer + 3 * H * H, 3 * H, H)
        }
        Linear.forward(out, input, packed: packed, rows: rows, inDim: H, outDim: 3 * H)
    }
}
