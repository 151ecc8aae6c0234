import Data

/// How an encoder turns the last hidden states [token rows, hidden] of a batch (laid out by a
/// SequencePacking) into one vector per sequence (`pooling`), forward and backward. The projection
/// head, when there is one, follows.
extension Pooling {
    /// Writes the pooled vectors [rows, hidden] of `hidden` into `pooled`.
    /// - cls: the first token's hidden state (the original DPR / SR-DPR).
    /// - mean: the mean over the tokens whose attention mask is nonzero, [CLS] and [SEP] included,
    ///   as sentence-transformers' `Pooling(pooling_mode="mean")`: a row without any such token
    ///   gets the zero vector (sentence-transformers divides its zero sum by a count clamped to 1e-9).
    func forward(hidden: UnsafePointer<Float>, packing: SequencePacking, dim: Int, pooled: UnsafeMutablePointer<Float>) {
        switch self {
        case .cls:
            for r in 0..<packing.rows { (pooled + r * dim).update(from: hidden + packing.offsets[r] * dim, count: dim) }
        case .mean:
            for r in 0..<packing.rows {
                let out = pooled + r * dim
                out.update(repeating: 0, count: dim)
                var count = 0
                for n in packing.offsets[r]..<(packing.offsets[r] + packing.lengths[r]) where packing.isReal(n) {
                    let token = hidden + n * dim
                    for i in 0..<dim { out[i] += token[i] }
                    count += 1
                }
                guard count > 0 else { continue }
                let n = Float(count)
                for i in 0..<dim { out[i] /= n }
            }
        }
    }

    /// Overwrites `dHidden` [token rows, hidden] with the gradient of the hidden states given the
    /// gradient of the pooled vectors `dPooled` [rows, hidden].
    func backward(dPooled: UnsafePointer<Float>, packing: SequencePacking, dim: Int, dHidden: UnsafeMutablePointer<Float>) {
        dHidden.update(repeating: 0, count: packing.tokens * dim)
        switch self {
        case .cls:
            for r in 0..<packing.rows { (dHidden + packing.offsets[r] * dim).update(from: dPooled + r * dim, count: dim) }
        case .mean:
            for r in 0..<packing.rows {
                let tokens = packing.offsets[r]..<(packing.offsets[r] + packing.lengths[r])
                let count = tokens.filter { packing.isReal($0) }.count
                guard count > 0 else { continue }
                let n = Float(count), gradient = dPooled + r * dim
                for t in tokens where packing.isReal(t) {
                    let token = dHidden + t * dim
                    for i in 0..<dim { token[i] = gradient[i] / n }
                }
            }
        }
    }
}
