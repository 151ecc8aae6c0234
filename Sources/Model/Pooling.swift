import Data

/// How an encoder turns the last hidden states [rows, seqLen, hidden] of a batch into one vector
/// per row (`pooling`), forward and backward. The projection head, when there is one, follows.
extension Pooling {
    /// Writes the pooled vectors [rows, hidden] of `hidden` into `pooled`.
    /// - cls: the first token's hidden state (the original DPR / SR-DPR).
    /// - mean: the mean over the tokens whose attention mask is nonzero, [CLS] and [SEP] included,
    ///   as sentence-transformers' `Pooling(pooling_mode="mean")`: a row without any such token
    ///   gets the zero vector (sentence-transformers divides its zero sum by a count clamped to 1e-9).
    func forward(hidden: UnsafePointer<Float>, mask: [Int32], rows: Int, seqLen: Int, dim: Int,
                 pooled: UnsafeMutablePointer<Float>) {
        switch self {
        case .cls:
            for r in 0..<rows { (pooled + r * dim).update(from: hidden + r * seqLen * dim, count: dim) }
        case .mean:
            for r in 0..<rows {
                let out = pooled + r * dim
                out.update(repeating: 0, count: dim)
                var count = 0
                for t in 0..<seqLen where mask[r * seqLen + t] != 0 {
                    let token = hidden + (r * seqLen + t) * dim
                    for i in 0..<dim { out[i] += token[i] }
                    count += 1
                }
                guard count > 0 else { continue }
                let n = Float(count)
                for i in 0..<dim { out[i] /= n }
            }
        }
    }

    /// Overwrites `dHidden` [rows, seqLen, hidden] with the gradient of the hidden states given the
    /// gradient of the pooled vectors `dPooled` [rows, hidden].
    func backward(dPooled: UnsafePointer<Float>, mask: [Int32], rows: Int, seqLen: Int, dim: Int,
                  dHidden: UnsafeMutablePointer<Float>) {
        dHidden.update(repeating: 0, count: rows * seqLen * dim)
        switch self {
        case .cls:
            for r in 0..<rows { (dHidden + r * seqLen * dim).update(from: dPooled + r * dim, count: dim) }
        case .mean:
            for r in 0..<rows {
                var count = 0
                for t in 0..<seqLen where mask[r * seqLen + t] != 0 { count += 1 }
                guard count > 0 else { continue }
                let n = Float(count), gradient = dPooled + r * dim
                for t in 0..<seqLen where mask[r * seqLen + t] != 0 {
                    let token = dHidden + (r * seqLen + t) * dim
                    for i in 0..<dim { token[i] = gradient[i] / n }
                }
            }
        }
    }
}
