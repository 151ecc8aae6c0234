/// One layer's self-attention over a packed batch of random Q, K, V, run by either implementation:
/// what `srdpr bench attention` times (the attention layer alone, outside the encoder).
public final class AttentionWorkload {
    public let sequences: Int, length: Int, heads: Int, headDim: Int, threads: Int
    /// Attention dropout of the training calls (0 = none).
    public let dropout: Float
    private let shape: Attention.Shape
    private let buffers: FloatBuffer
    private let q, k, v, ctx, probs, dCtx, dQ, dK, dV, scratch: UnsafeMutablePointer<Float>
    private let scratchPerThread: Int

    /// `qkvInOneMatrix`: Q, K, V as the column blocks of one [tokens, 3 x hidden] matrix (row stride
    /// 3 x hidden), as the encoder's QKVProjection writes them; else three [tokens, hidden] matrices.
    public init(sequences: Int, length: Int, heads: Int, headDim: Int, threads: Int, dropout: Float, seed: UInt64 = 1,
                qkvInOneMatrix: Bool = false) throws {
        guard sequences > 0, length > 0, heads > 0, headDim > 0, threads > 0 else {
            throw ModelError.invalidInput("attention workload needs sequences, length, heads, head size and threads >= 1")
        }
        guard dropout >= 0, dropout < 1 else { throw ModelError.invalidInput("attention dropout must be in [0, 1), got \(dropout)") }
        self.sequences = sequences; self.length = length; self.heads = heads; self.headDim = headDim
        self.threads = threads; self.dropout = dropout
        let batch = try TokenBatch(inputIds: [Int32](repeating: 1, count: sequences * length),
                                   attentionMask: [Int32](repeating: 1, count: sequences * length), rows: sequences, seqLen: length)
        shape = Attention.Shape(packing: SequencePacking.packed(batch)!, heads: heads, headDim: headDim,
                                qkvRowStride: qkvInOneMatrix ? 3 * heads * headDim : nil)
        let tokensByHidden = shape.packing.tokens * heads * headDim
        let attention = heads * shape.packing.attentionPerHead
        scratchPerThread = Attention.scratchPerThread(longest: length, headDim: headDim)
        buffers = FloatBuffer(count: 8 * tokensByHidden + attention + scratchPerThread * threads)
        var next = buffers.pointer
        func take(_ n: Int) -> UnsafeMutablePointer<Float> { defer { next += n }; return next }
        q = take(tokensByHidden)
        let keys = take(tokensByHidden), values = take(tokensByHidden)
        // In one matrix: the same 3 x tokensByHidden floats, read with row stride 3 x hidden.
        k = qkvInOneMatrix ? q + heads * headDim : keys
        v = qkvInOneMatrix ? q + 2 * heads * headDim : values
        ctx = take(tokensByHidden)
        dCtx = take(tokensByHidden); dQ = take(tokensByHidden); dK = take(tokensByHidden); dV = take(tokensByHidden)
        probs = take(attention); scratch = take(scratchPerThread * threads)
        var state = seed
        for i in 0..<(5 * tokensByHidden) {   // q, k, v, ctx, dCtx: uniform in [-1, 1)
            state = state &* 6364136223846793005 &+ 1442695040888963407
            buffers.pointer[i] = Float(Int32(truncatingIfNeeded: state >> 32)) / Float(Int32.max)
        }
    }

    /// An inference forward: no probabilities kept, no dropout.
    public func inferenceForward(_ implementation: AttentionImplementation) {
        Attention.forward(ctx: ctx, probs: nil, q: q, k: k, v: v, shape: shape, dropoutKey: nil, p: 0, rowLabels: RowLabels(),
                          scratch: scratch, scratchPerThread: scratchPerThread, threads: threads, implementation: implementation)
    }

    /// A training forward (probabilities kept, dropout when set) and its backward, both by one
    /// implementation, or (`backward` given) the backward by another.
    public func trainingForwardBackward(_ implementation: AttentionImplementation, backward: AttentionImplementation? = nil) {
        let key: UInt64? = dropout > 0 ? 0x5EED : nil
        Attention.forward(ctx: ctx, probs: probs, q: q, k: k, v: v, shape: shape, dropoutKey: key, p: dropout, rowLabels: RowLabels(),
                          scratch: scratch, scratchPerThread: scratchPerThread, threads: threads, implementation: implementation)
        Attention.backward(dQ: dQ, dK: dK, dV: dV, dCtx: dCtx, probs: probs, q: q, k: k, v: v, shape: shape, dropoutKey: key,
                           p: dropout, rowLabels: RowLabels(), scratch: scratch, scratchPerThread: scratchPerThread,
                           threads: threads, implementation: backward ?? implementation)
    }

    /// The last call's context and (after a training call) dQ, dK, dV, for comparing implementations.
    public func outputs() -> (context: [Float], dQuery: [Float], dKey: [Float], dValue: [Float]) {
        let n = shape.packing.tokens * heads * headDim
        return (Array(UnsafeBufferPointer(start: ctx, count: n)), Array(UnsafeBufferPointer(start: dQ, count: n)),
                Array(UnsafeBufferPointer(start: dK, count: n)), Array(UnsafeBufferPointer(start: dV, count: n)))
    }
}
