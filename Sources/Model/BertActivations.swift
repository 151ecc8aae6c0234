/// Activations of one encoder pass, preallocated for a capacity (rows × seqLen) and reused by
/// every step that fits, so the hot path allocates nothing. With `layerSlots == 1` (encoding
/// without backward, e.g. the first pass of grad cache) every layer reuses the same slot.
final class BertActivations {
    struct Layer {
        var q, k, v, ctx, r1, h1, r2, out: UnsafeMutablePointer<Float>
        var f1: UnsafeMutablePointer<Float>
        var probs: UnsafeMutablePointer<Float>
        var mean1, rstd1, mean2, rstd2: UnsafeMutablePointer<Float>
    }

    let tokens: Int, attention: Int, layerSlots: Int
    let storage: FloatBuffer
    var embSum, embMean, embRstd, x0: UnsafeMutablePointer<Float>
    var layers: [Layer] = []
    // Scratch shared by all layers (forward and backward).
    var s1, s2, s3, s4, s5, dA, dB: UnsafeMutablePointer<Float>
    var g, dg, gd: UnsafeMutablePointer<Float>
    var headScratch: UnsafeMutablePointer<Float>
    let headScratchPerThread: Int

    init(config c: BertConfig, tokens: Int, attention: Int, seqLen: Int, layerSlots: Int, threads: Int) {
        self.tokens = tokens
        self.attention = attention
        self.layerSlots = layerSlots
        let h = c.hiddenSize, inter = c.intermediateSize
        let nh = tokens * h
        let perLayer = 8 * nh + tokens * inter + attention + 4 * tokens
        headScratchPerThread = 2 * seqLen * seqLen
        let total = 2 * nh + 2 * tokens + perLayer * layerSlots + 7 * nh + 3 * tokens * inter
            + headScratchPerThread * threads
        storage = FloatBuffer(count: total)
        var p = storage.pointer
        func take(_ n: Int) -> UnsafeMutablePointer<Float> { defer { p += n }; return p }
        embSum = take(nh); x0 = take(nh); embMean = take(tokens); embRstd = take(tokens)
        for _ in 0..<layerSlots {
            layers.append(Layer(q: take(nh), k: take(nh), v: take(nh), ctx: take(nh), r1: take(nh), h1: take(nh),
                                r2: take(nh), out: take(nh), f1: take(tokens * inter), probs: take(attention),
                                mean1: take(tokens), rstd1: take(tokens), mean2: take(tokens), rstd2: take(tokens)))
        }
        s1 = take(nh); s2 = take(nh); s3 = take(nh); s4 = take(nh); s5 = take(nh); dA = take(nh); dB = take(nh)
        g = take(tokens * inter); dg = take(tokens * inter); gd = take(tokens * inter)
        headScratch = take(headScratchPerThread * threads)
    }
}
