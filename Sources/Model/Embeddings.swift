/// BERT embeddings: word + position + token type (all type 0), summed per token row of a
/// SequencePacking (a token's position is its index in its own sequence); the LayerNorm and
/// dropout that follow are applied by the encoder.
enum Embeddings {
    static func forward(_ out: UnsafeMutablePointer<Float>, packing: SequencePacking,
                        word: UnsafePointer<Float>, position: UnsafePointer<Float>, type: UnsafePointer<Float>, hidden H: Int) {
        packing.inputIds.withUnsafeBufferPointer { ids in
            for (offset, length) in zip(packing.offsets, packing.lengths) {
                for t in 0..<length {
                    let n = offset + t
                    let w = word + Int(ids[n]) * H, p = position + t * H, o = out + n * H
                    for i in 0..<H { o[i] = w[i] + p[i] + type[i] }
                }
            }
        }
    }

    /// Scatter-adds the gradient of each token row into its word, position and type rows.
    static func backward(dWord: UnsafeMutablePointer<Float>, dPosition: UnsafeMutablePointer<Float>,
                         dType: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, packing: SequencePacking, hidden H: Int) {
        packing.inputIds.withUnsafeBufferPointer { ids in
            for (offset, length) in zip(packing.offsets, packing.lengths) {
                for t in 0..<length {
                    let n = offset + t
                    let d = dOut + n * H, w = dWord + Int(ids[n]) * H, p = dPosition + t * H
                    for i in 0..<H {
                        w[i] += d[i]
                        p[i] += d[i]
                        dType[i] += d[i]
                    }
                }
            }
        }
    }
}
