/// Activations of one encoder pass, preallocated for a capacity (token rows, attention scores and
/// the longest sequence's [length, length] head scratch) and reused by
/// every step that fits, so the hot path allocates nothing. Without `backward` (inference, the
/// first pass of grad cache) every layer reuses one slot, the attention probabilities stay in the
/// per-thread head scratch and backward's scratch is not allocated (its pointers are empty).
final class BertActivations {
    struct Layer {
        /// Query, key, value projections (rows 3 × hidden apart: one [tokens, 3 × hidden] block);
        /// the attention context (probs x v), before the output dense.
        var q, k, v, ctx: UnsafeMutablePointer<Float>
        /// Attention block: its output plus the layer's input (LayerNorm 1's input), and LayerNorm 1's output.
        var attentionResidual, attentionNormed: UnsafeMutablePointer<Float>
        /// Feed-forward block: its output plus `attentionNormed` (LayerNorm 2's input), and the layer's output.
        var ffnResidual, out: UnsafeMutablePointer<Float>
        /// GELU of the intermediate dense's output (tokens x intermediate size), and GELU's derivative
        /// there (backward only): written by the dense's product itself (Linear.forwardGELU), kept
        /// for backward instead of the dense's output, from which backward recomputed both.
        var gelu, geluDerivative: UnsafeMutablePointer<Float>
        var probs: UnsafeMutablePointer<Float>
        var mean1, rstd1, mean2, rstd2: UnsafeMutablePointer<Float>

        /// K and V as two separate [tokens, hidden] matrices (row stride hidden) in the room of the
        /// Q/K/V block: what the [CLS]-only last layer (PooledLastLayer) writes and reads back.
        func separateKeyValue(tokens: Int, hidden: Int) -> (key: UnsafeMutablePointer<Float>, value: UnsafeMutablePointer<Float>) {
            (q, q + tokens * hidden)
        }
    }

    let tokens: Int, attention: Int, layerSlots: Int
    /// The longest sequence the head scratch was sized for.
    let longest: Int
    /// Whether backward's buffers (all layers, probabilities, gradient scratch) exist.
    let backward: Bool
    let storage: FloatBuffer
    var embSum, embMean, embRstd, x0: UnsafeMutablePointer<Float>
    var layers: [Layer] = []
    // Scratch shared by all layers (forward and backward), tokens x hidden each:
    /// forward: a sublayer's output dense before dropout and residual; backward: the gradient at a
    /// LayerNorm's input, then the value projection's gradient.
    var sublayer: UnsafeMutablePointer<Float>
    /// The gradient after a hidden dropout's backward.
    var droppedGradient: UnsafeMutablePointer<Float>
    /// Gradients w.r.t. the attention context, the queries and the keys.
    var dContext, dQuery, dKey: UnsafeMutablePointer<Float>
    /// Gradients w.r.t. the current layer's output and input (swapped from layer to layer).
    var dLayerOutput, dLayerInput: UnsafeMutablePointer<Float>
    /// Scratch of the feed-forward block (tokens x intermediate size): the gradient at GELU's output.
    var dGelu: UnsafeMutablePointer<Float>
    var headScratch: UnsafeMutablePointer<Float>
    let headScratchPerThread: Int
    /// How many threads' head scratch was allocated: a later pass with more threads needs new buffers.
    let headScratchThreads: Int

    /// `recycling`: the storage of outgrown activations, resized (its pages kept) instead of a new one.
    init(config c: BertConfig, tokens: Int, attention: Int, longest: Int, backward: Bool, threads: Int, recycling: FloatBuffer? = nil) {
        self.tokens = tokens
        self.longest = longest
        self.backward = backward
        let layerSlots = backward ? c.numLayers : 1
        let attention = backward ? attention : 0
        self.attention = attention
        self.layerSlots = layerSlots
        let h = c.hiddenSize, inter = c.intermediateSize
        let nh = tokens * h
        let gradientInter = backward ? tokens * inter : 0
        let perLayer = 8 * nh + tokens * inter + gradientInter + attention + 4 * tokens
        headScratchPerThread = Attention.scratchPerThread(longest: longest, headDim: c.headDim)
        headScratchThreads = threads
        let gradientNH = backward ? nh : 0
        let total = 2 * nh + 2 * tokens + perLayer * layerSlots + nh + 6 * gradientNH + gradientInter
            + headScratchPerThread * threads
        if let recycling {
            recycling.resize(to: total)
            storage = recycling
        } else {
            storage = FloatBuffer(count: total)
        }
        var p = storage.pointer
        func take(_ n: Int) -> UnsafeMutablePointer<Float> { defer { p += n }; return p }
        embSum = take(nh); x0 = take(nh); embMean = take(tokens); embRstd = take(tokens)
        for _ in 0..<layerSlots {
            // Q, K, V: the column blocks of one [tokens, 3 × hidden] product (QKVProjection).
            let qkv = take(3 * nh)
            layers.append(Layer(q: qkv, k: qkv + h, v: qkv + 2 * h, ctx: take(nh), attentionResidual: take(nh),
                                attentionNormed: take(nh), ffnResidual: take(nh), out: take(nh),
                                gelu: take(tokens * inter), geluDerivative: take(gradientInter), probs: take(attention),
                                mean1: take(tokens), rstd1: take(tokens), mean2: take(tokens), rstd2: take(tokens)))
        }
        sublayer = take(nh); droppedGradient = take(gradientNH); dContext = take(gradientNH); dQuery = take(gradientNH)
        dKey = take(gradientNH); dLayerOutput = take(gradientNH); dLayerInput = take(gradientNH)
        dGelu = take(gradientInter)
        headScratch = take(headScratchPerThread * threads)
    }
}
