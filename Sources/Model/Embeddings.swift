/// BERT embeddings: word + position + token type (all type 0), summed per token; the LayerNorm
/// and dropout that follow are applied by the encoder.
enum Embeddings {
    static func forward(_ out: UnsafeMutablePointer<Float>, ids: UnsafePointer<Int32>, tokens: Int, seqLen: Int,
                        word: UnsafePointer<Float>, position: UnsafePointer<Float>, type: UnsafePointer<Float>, hidden H: Int) {
        for n in 0..<tokens {
            let w = word + Int(ids[n]) * H, p = position + (n % seqLen) * H, o = out + n * H
            for i in 0..<H { o[i] = w[i] + p[i] + type[i] }
        }
    }

    /// Scatter-adds the gradient of each token into its word, position and type rows.
    static func backward(dWord: UnsafeMutablePointer<Float>, dPosition: UnsafeMutablePointer<Float>,
                         dType: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, ids: UnsafePointer<Int32>,
                         tokens: Int, seqLen: Int, hidden H: Int) {
        for n in 0..<tokens {
            let d = dOut + n * H, w = dWord + Int(ids[n]) * H, p = dPosition + (n % seqLen) * H
            for i in 0..<H {
                w[i] += d[i]
                p[i] += d[i]
                dType[i] += d[i]
            }
        }
    }
}
