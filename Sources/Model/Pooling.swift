import Data

/// The pooling of `BertEncoder` (the `Pooling` setting is defined with the training configuration):
/// one vector per sequence from the last hidden states [rows, seqLen, hidden].
extension Pooling {
    /// Writes the pooled vectors [rows, hidden] of `hidden` into `pooled`. `cls`: the first
    /// token's state; `mean`: the average over the tokens whose attention mask is 1 (padding left
    /// out, [CLS] and [SEP] included, as sentence-transformers' Pooling does).
    func forward(_ pooled: UnsafeMutablePointer<Float>, hidden: UnsafePointer<Float>, mask: UnsafePointer<Int32>,
                 rows: Int, seqLen: Int, dim: Int) {
        for b in 0..<rows {
            let out = pooled + b * dim, sequence = hidden + b * seqLen * dim
            switch self {
            case .cls:
                out.update(from: sequence, count: dim)
            case .mean:
                out.update(repeating: 0, count: dim)
                var tokens = 0
                for t in 0..<seqLen where mask[b * seqLen + t] != 0 {
                    let row = sequence + t * dim
                    for i in 0..<dim { out[i] += row[i] }
                    tokens += 1
                }
                let scale = 1 / Float(max(tokens, 1))
                for i in 0..<dim { out[i] *= scale }
            }
        }
    }
}
