import CKernels
import Data
import Foundation

/// One BERT encoder (hf_bert) with paired forward/backward over views into a shared parameter
/// and gradient buffer. Pooled output = last hidden state of [CLS] (`pooling` cls, the original)
/// or the mean over the unmasked tokens (mean); with a projection head (`encode_proj`) a
/// Linear(hidden, projection_dim) follows. Every layer runs over the real tokens only (see
/// SequencePacking): padding costs nothing, forward or backward.
public final class BertEncoder {
    public let config: BertConfig
    public let layout: BertLayout
    public let parameters: FloatBuffer
    public let gradients: FloatBuffer
    /// Dropout probabilities used when a DropoutContext is passed (SR-DPR's `dropout` sets both).
    public var hiddenDropout: Float
    public var attentionDropout: Float
    /// How the last hidden states become one vector per sequence (see Pooling.swift).
    public var pooling: Pooling = .cls
    /// Threads for the non-BLAS loops and the per-head attention loop.
    public var threads: Int = 2 { didSet { Parallel.threads = threads } }
    /// true (default): the layers run over each sequence's real tokens only. false: over the padded
    /// batch, padding included — the computation before packing, equal within fp32 rounding and
    /// kept to show that (PackingParityTests, `srdpr bench train-step --padded`).
    public var packsSequences = true
    /// true (default): with [CLS] pooling the last layer computes what its [CLS] rows need only
    /// (PooledLastLayer). false: every row, as `lastHiddenState()` needs.
    public var prunesLastLayer = true

    /// Where a backward notes the word-embedding gradient rows it writes (the bi-encoder's log of
    /// this side's table; nil: not kept).
    var writtenWordRows: WrittenWordRows?
    private var training: BertActivations?
    private var inference: BertActivations?
    // What the kept activations belong to, for backward.
    private var keptPacking: SequencePacking?
    /// The kept forward's padded length (lastHiddenState's layout).
    private var keptSeqLen = 0
    private var keptDropout: DropoutContext?
    private var keptRowLabels = RowLabels()
    private var pooledBuffer: [Float] = []
    /// Q, K, V in one sgemm (the activations hold them as one [tokens, 3 × hidden] block).
    private lazy var qkvProjection = QKVProjection(hidden: config.hiddenSize)
    private var prunedTraining: PooledLastLayer?, prunedInference: PooledLastLayer?

    /// The Linear layers' packed weights; BatchParallelInference gives its replicas one shared instance.
    var linearWeights = PackedLinearWeights()
    /// Promises that nothing writes `parameters` until it is cleared: forwards may then keep
    /// copies derived from them (the packed Linear weights) from batch to batch.
    var parametersFixed: Bool {
        get { linearWeights.parametersFixed }
        set { linearWeights.parametersFixed = newValue }
    }
    /// Whether the kept forward ran the last layer on the [CLS] rows only.
    private var keptPruned = false

    /// Embedding size: projection_dim when the head exists, else hidden_size.
    public var outputDim: Int { layout.projectionDim > 0 ? layout.projectionDim : config.hiddenSize }

    public init(config: BertConfig, layout: BertLayout, parameters: FloatBuffer, gradients: FloatBuffer) {
        self.config = config
        self.layout = layout
        self.parameters = parameters
        self.gradients = gradients
        hiddenDropout = config.hiddenDropout
        attentionDropout = config.attentionDropout
    }

    /// An encoder owning its own buffers (tests, `srdpr encode`).
    public convenience init(config: BertConfig, projectionDim: Int = 0) {
        var pl = ParameterLayout()
        let layout = BertLayout(config: config, projectionDim: projectionDim, into: &pl)
        self.init(config: config, layout: layout, parameters: FloatBuffer(count: pl.totalCount),
                  gradients: FloatBuffer(count: pl.totalCount))
    }

    /// Loads a Hugging Face directory (config.json + model.safetensors or pytorch_model.bin).
    public static func load(directory: URL, weights: URL? = nil) throws -> BertEncoder {
        let config = try BertConfig.load(directory.appendingPathComponent("config.json"))
        let encoder = BertEncoder(config: config)
        let source = try weights.map { try WeightSource.open($0) } ?? WeightSource.open(directory: directory)
        try source.load(into: encoder.parameters.pointer, layout: encoder.layout)
        return encoder
    }

    var P: UnsafeMutablePointer<Float> { parameters.pointer }
    var G: UnsafeMutablePointer<Float> { gradients.pointer }

    /// `seqLen`: the batch's padded length, which bounds what any batch of its rows can need.
    private func activations(for packing: SequencePacking, seqLen: Int, keep: Bool) -> BertActivations {
        let tokens = packing.tokens
        let attention = config.numHeads * packing.attentionPerHead
        // A forward-only pass keeps no probabilities (they stay in the head scratch). No local holds
        // the old buffers past this check, so replacing them below frees them first.
        if let a = keep ? training : inference, a.tokens >= tokens, !keep || a.attention >= attention,
           a.headScratchPerThread >= Attention.scratchPerThread(longest: packing.longest, headDim: config.headDim), a.headScratchThreads >= max(threads, 1) {
            return a
        }
        // Packed batches vary in size from step to step. Growing to the exact size each time a batch
        // is a little larger than all before it re-allocates (and faults in, page by page) hundreds
        // of megabytes many steps in a row; a quarter more than the old capacity, in every dimension
        // (tokens, attention scores, longest sequence), makes growth rare. Room is also made at once
        // for any batch of this many rows and this padded length (every row full): the storage is calloc'ed, so room never used is never faulted in (it costs no
        // memory), while each growth lays the buffers out anew over the larger storage and faults in
        // tens of megabytes of fresh pages (the FAQ batches at max_length 128 grew the replicas'
        // storage twice in their first steps, 20,000 page faults each time).
        // (Only the sizes are read here, so that nothing holds the old buffers below.)
        let capacity = (keep ? training : inference).map { (tokens: $0.tokens, attention: $0.attention, longest: $0.longest) }
        let recycled = (keep ? training : inference)?.storage
        let bound = (tokens: packing.rows * seqLen, attention: config.numHeads * packing.rows * seqLen * seqLen)
        func grown(_ needed: Int, _ capacity: Int?, bound: Int) -> Int { max(needed, bound, capacity.map { $0 + $0 / 4 } ?? 0) }
        let longest = max(packing.longest, min(grown(packing.longest, capacity?.longest, bound: seqLen), config.maxPositions))
        // The outgrown buffers' storage is resized in place (realloc), not freed and allocated
        // anew: old and new are never held at once, and the pages it had are not faulted in again.
        if keep { training = nil } else { inference = nil }
        let a = BertActivations(config: config, tokens: grown(tokens, capacity?.tokens, bound: bound.tokens),
                                attention: keep ? grown(attention, capacity?.attention, bound: bound.attention) : 0,
                                longest: longest, backward: keep, threads: max(threads, 1), recycling: recycled)
        if keep { training = a } else { inference = a }
        return a
    }

    /// Drops the preallocated activations (e.g. after a larger-than-usual batch).
    public func releaseActivations() {
        training = nil
        inference = nil
        prunedTraining = nil
        prunedInference = nil
        keptPacking = nil
    }

    /// The pruned last layer's buffers for `packing`, reused while they fit; made for any batch of
    /// its rows at padded length `seqLen` (as `activations`), so that batches of other lengths reuse them.
    private func prunedLayer(for packing: SequencePacking, seqLen: Int, keep: Bool) -> PooledLastLayer {
        if let p = keep ? prunedTraining : prunedInference, p.fits(packing, backward: keep) { return p }
        if keep { prunedTraining = nil } else { prunedInference = nil }
        let p = PooledLastLayer(config: config, sequences: packing.rows, keyCount: max(packing.lengths.reduce(0, +), packing.rows * seqLen),
                                longest: max(packing.longest, seqLen), backward: keep)
        if keep { prunedTraining = p } else { prunedInference = p }
        return p
    }

    /// The context the pruned last layer runs in.
    private func prunedContext(_ packing: SequencePacking, dropout: DropoutContext?, rowLabels: RowLabels) -> PooledLastLayer.Context {
        let last = config.numLayers - 1
        return PooledLastLayer.Context(packing: packing, config: config, weights: layout.layers[last], parameters: P, linearWeights: linearWeights,
                                       dropout: dropout, layer: last, hiddenDropout: hiddenDropout, attentionDropout: attentionDropout, rowLabels: rowLabels)
    }

    func validate(_ batch: TokenBatch) throws {
        guard batch.seqLen <= config.maxPositions else {
            throw ModelError.sequenceTooLong(length: batch.seqLen, maxPositions: config.maxPositions)
        }
        for (i, id) in batch.inputIds.enumerated() where id < 0 || Int(id) >= config.vocabSize {
            throw ModelError.invalidInput("input id \(id) at row \(i / batch.seqLen), position \(i % batch.seqLen) "
                + "is outside the vocabulary (vocab_size \(config.vocabSize))")
        }
    }

    /// Encodes `batch` and returns the embeddings [rows, outputDim]. `dropout` nil = no dropout
    /// (evaluation); `rowOffset` is the global index of the first row (dropout masks are keyed by
    /// it), or `rowLabels` the global index of every row. With `keepActivations` the activations stay for `backward`.
    public func forward(_ batch: TokenBatch, dropout: DropoutContext? = nil, rowOffset: Int = 0, rowLabels: [Int]? = nil,
                        keepActivations: Bool = true) throws -> [Float] {
        if let rowLabels, rowLabels.count != batch.rows {
            throw ModelError.invalidInput("\(rowLabels.count) dropout row labels for \(batch.rows) rows")
        }
        return try forward(batch, dropout: dropout, labels: RowLabels(offset: rowOffset, list: rowLabels), keepActivations: keepActivations)
    }

    func forward(_ batch: TokenBatch, dropout: DropoutContext?, labels rowLabels: RowLabels, keepActivations: Bool) throws -> [Float] {
        try validate(batch)
        if batch.rows == 0 { return [] }
        // A batch packing cannot represent (left padding, an empty row) runs padded, as exact as before.
        let packing = packsSequences ? SequencePacking.packed(batch) ?? .padded(batch) : .padded(batch)
        let a = activations(for: packing, seqLen: batch.seqLen, keep: keepActivations)
        let c = config, H = c.hiddenSize, I = c.intermediateSize, B = batch.rows, N = packing.tokens
        let shape = Attention.Shape(packing: packing, heads: c.numHeads, headDim: c.headDim, qkvRowStride: qkvProjection.rowStride)
        let ph = hiddenDropout, pa = attentionDropout
        func hiddenDrop(_ x: UnsafeMutablePointer<Float>, layer: Int, site: DropoutContext.Site) {
            guard let d = dropout, ph > 0 else { return }
            Self.dropHidden(x, packing: packing, key: d.key(layer: layer, site: site), rowLabels: rowLabels, p: ph, hidden: H)
        }
        Embeddings.forward(a.embSum, packing: packing, word: P + layout.wordEmb,
                           position: P + layout.posEmb, type: P + layout.typeEmb, hidden: H)
        LayerNorm.forward(a.x0, mean: a.embMean, rstd: a.embRstd, a.embSum, gamma: P + layout.embLnG,
                          beta: P + layout.embLnB, rows: N, dim: H, eps: c.layerNormEps)
        hiddenDrop(a.x0, layer: 0, site: .embeddings)
        var input = UnsafeMutablePointer(a.x0)
        let pruned = prunesLastLayer && pooling == .cls
        pooledBuffer = [Float](repeating: 0, count: B * H)
        for (l, w) in layout.layers.enumerated() {
            let A = a.layers[keepActivations ? l : 0]
            if pruned && l == c.numLayers - 1 {
                let kv = A.separateKeyValue(tokens: N, hidden: H)
                pooledBuffer.withUnsafeMutableBufferPointer { pooled in
                    prunedLayer(for: packing, seqLen: batch.seqLen, keep: keepActivations).forward(
                        prunedContext(packing, dropout: dropout, rowLabels: rowLabels), layerInput: input, key: kv.key, value: kv.value,
                        pooled: pooled.baseAddress!)
                }
                break
            }
            // Self-attention.
            qkvProjection.forward(A.q, input, parameters: P, layer: w, rows: N, weights: linearWeights)
            let attnKey = (dropout != nil && pa > 0) ? dropout!.key(layer: l, site: .attentionProbs) : nil
            Attention.forward(ctx: A.ctx, probs: keepActivations ? A.probs : nil, q: A.q, k: A.k, v: A.v, shape: shape,
                              dropoutKey: attnKey, p: pa, rowLabels: rowLabels, scratch: a.headScratch,
                              scratchPerThread: a.headScratchPerThread, threads: threads)
            Linear.forward(a.sublayer, A.ctx, weights: linearWeights, parameters: P, weight: w.attnOutW, bias: w.attnOutB, rows: N, inDim: H, outDim: H)
            hiddenDrop(a.sublayer, layer: l, site: .attentionOutput)
            // The residual sums are kept for backward only.
            LayerNorm.forward(A.attentionNormed, sum: keepActivations ? A.attentionResidual : nil, mean: A.mean1, rstd: A.rstd1,
                              a.sublayer, residual: input, gamma: P + w.ln1G, beta: P + w.ln1B, rows: N, dim: H, eps: c.layerNormEps)
            // Feed-forward.
            // GELU (and for backward its derivative) as the intermediate product's tiles finish.
            Linear.forwardGELU(A.gelu, derivative: keepActivations ? A.geluDerivative : nil, A.attentionNormed, weights: linearWeights,
                               parameters: P, weight: w.interW, bias: w.interB, rows: N, inDim: H, outDim: I)
            Linear.forward(a.sublayer, A.gelu, weights: linearWeights, parameters: P, weight: w.outW, bias: w.outB, rows: N, inDim: I, outDim: H)
            hiddenDrop(a.sublayer, layer: l, site: .ffnOutput)
            LayerNorm.forward(A.out, sum: keepActivations ? A.ffnResidual : nil, mean: A.mean2, rstd: A.rstd2,
                              a.sublayer, residual: A.attentionNormed, gamma: P + w.ln2G, beta: P + w.ln2B, rows: N, dim: H,
                              eps: c.layerNormEps)
            input = A.out
        }
        if !pruned {
            let last = a.layers[keepActivations ? c.numLayers - 1 : 0].out
            pooledBuffer.withUnsafeMutableBufferPointer { pooled in
                pooling.forward(hidden: last, packing: packing, dim: H, pooled: pooled.baseAddress!)
            }
        }
        keptPruned = keepActivations && pruned
        if keepActivations {
            keptPacking = packing
            keptSeqLen = batch.seqLen
            keptDropout = dropout
            keptRowLabels = rowLabels
        } else {
            keptPacking = nil
        }
        guard let pw = layout.projW, let pb = layout.projB else { return pooledBuffer }
        // One call over the batch: a row's bits do not depend on the others (Linear.forward).
        let D = layout.projectionDim
        var out = [Float](repeating: 0, count: B * D)
        pooledBuffer.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { y in
                Linear.forward(y.baseAddress!, x.baseAddress!, weights: linearWeights, parameters: P, weight: pw, bias: pb,
                               rows: B, inDim: H, outDim: D)
            }
        }
        return out
    }

    /// The last hidden state [rows, seqLen, hidden] of the last forward that kept activations.
    /// Padding positions are 0 when the batch was packed (nothing is computed there). Needs a forward
    /// that computed every row: `prunesLastLayer` false or a pooling other than cls.
    public func lastHiddenState() throws -> [Float] {
        guard !keptPruned else {
            throw ModelError.invalidInput("the last forward computed the last layer's [CLS] rows only (cls pooling): "
                + "set prunesLastLayer = false before it to read every token's last hidden state")
        }
        guard let packing = keptPacking, let a = training else { return [] }
        let H = config.hiddenSize, last = a.layers[config.numLayers - 1].out
        var hidden = [Float](repeating: 0, count: packing.rows * keptSeqLen * H)
        for r in 0..<packing.rows {
            for t in 0..<packing.lengths[r] {
                for i in 0..<H { hidden[(r * keptSeqLen + t) * H + i] = last[(packing.offsets[r] + t) * H + i] }
            }
        }
        return hidden
    }

    /// Hidden dropout over each sequence's token rows. An element's index in its sequence (position
    /// × hidden + feature) keys its mask, so packed and padded layouts draw the same masks.
    /// With `source`, x is first a copy of it (all `packing.tokens` rows), made one sequence at a
    /// time just before that sequence's dropout, while it is in cache: the bytes of a copy of the
    /// whole matrix followed by the dropout, without a pass of its own.
    static func dropHidden(_ x: UnsafeMutablePointer<Float>, copying source: UnsafePointer<Float>? = nil, packing: SequencePacking,
                           key: UInt64, rowLabels: RowLabels, p: Float, hidden H: Int) {
        if let source, packing.offsets.first != 0 { x.update(from: source, count: (packing.offsets.first ?? packing.tokens) * H) }
        for b in 0..<packing.rows {
            if let source {
                // The sequence and the gap after it, up to the next sequence (or the end).
                let end = b + 1 < packing.rows ? packing.offsets[b + 1] : packing.tokens
                (x + packing.offsets[b] * H).update(from: source + packing.offsets[b] * H, count: (end - packing.offsets[b]) * H)
            }
            DropoutContext.apply(x + packing.offsets[b] * H, count: packing.lengths[b] * H,
                                 rowKey: DropoutContext.rowKey(key, row: rowLabels[b]), p: p)
        }
    }

    /// Back-propagates dL/d(embeddings) [rows, outputDim] of the last kept forward, adding the
    /// parameter gradients into `gradients`. `finished(k)` is called as soon as the gradients of
    /// `layout.backwardOrder[k]` are written (a trainer reduces them while backward goes on).
    public func backward(_ dEmbeddings: [Float], finished: (Int) throws -> Void = { _ in }) throws {
        guard gradients.count == parameters.count else {
            throw ModelError.invalidInput("this encoder was loaded for inference (no gradient buffer): it has no backward")
        }
        guard let packing = keptPacking, let a = training else {
            throw ModelError.invalidInput("backward needs a forward with keepActivations first")
        }
        let c = config, H = c.hiddenSize, I = c.intermediateSize, B = packing.rows, N = packing.tokens
        guard dEmbeddings.count == B * outputDim else {
            throw ModelError.invalidInput("embedding gradient has \(dEmbeddings.count) values, expected \(B) x \(outputDim)")
        }
        writtenWordRows?.note(packing.inputIds)
        let shape = Attention.Shape(packing: packing, heads: c.numHeads, headDim: c.headDim, qkvRowStride: qkvProjection.rowStride)
        let dropout = keptDropout, rowLabels = keptRowLabels
        let ph = hiddenDropout, pa = attentionDropout
        func hiddenDrop(_ x: UnsafeMutablePointer<Float>, layer: Int, site: DropoutContext.Site) {
            guard let d = dropout, ph > 0 else { return }
            Self.dropHidden(x, packing: packing, key: d.key(layer: layer, site: site), rowLabels: rowLabels, p: ph, hidden: H)
        }
        /// x = source with the hidden dropout's mask applied (one pass, sequence by sequence).
        func hiddenDrop(_ x: UnsafeMutablePointer<Float>, copying source: UnsafePointer<Float>, layer: Int, site: DropoutContext.Site) {
            guard let d = dropout, ph > 0 else { return x.update(from: source, count: N * H) }
            Self.dropHidden(x, copying: source, packing: packing, key: d.key(layer: layer, site: site), rowLabels: rowLabels, p: ph, hidden: H)
        }
        // dOut of the last layer: the pooled vectors' gradient spread over the tokens they pool.
        var dOut = a.dLayerOutput, dIn = a.dLayerInput
        var dPooled = dEmbeddings
        if let pw = layout.projW, let pb = layout.projB {
            dPooled = [Float](repeating: 0, count: B * H)
            pooledBuffer.withUnsafeBufferPointer { x in
                dEmbeddings.withUnsafeBufferPointer { dy in
                    dPooled.withUnsafeMutableBufferPointer { dx in
                        Linear.backward(dInput: dx.baseAddress!, dWeight: G + pw, dBias: G + pb, dOut: dy.baseAddress!,
                                        input: x.baseAddress!, weight: P + pw, rows: B, inDim: H, outDim: layout.projectionDim)
                    }
                }
            }
        }
        var firstFullLayer = c.numLayers - 1
        if keptPruned, let pruned = prunedTraining {
            // The last layer's [CLS] rows only: it writes the gradient of its input (dOut of the layer below).
            let last = c.numLayers - 1, kv = a.layers[last].separateKeyValue(tokens: N, hidden: H)
            dPooled.withUnsafeBufferPointer { d in
                pruned.backward(prunedContext(packing, dropout: dropout, rowLabels: rowLabels), dPooled: d.baseAddress!, gradients: G,
                                layerInput: last == 0 ? a.x0 : a.layers[last - 1].out, key: kv.key, value: kv.value,
                                dKey: a.dKey, dValue: a.sublayer, dLayerInput: dOut)
            }
            try finished(0)
            firstFullLayer -= 1
        } else {
            dPooled.withUnsafeBufferPointer { d in
                pooling.backward(dPooled: d.baseAddress!, packing: packing, dim: H, dHidden: dOut)
            }
        }
        for l in stride(from: firstFullLayer, through: 0, by: -1) {
            let w = layout.layers[l], A = a.layers[l]
            let input = l == 0 ? a.x0 : a.layers[l - 1].out
            // Output LayerNorm, FFN dropout and residual.
            LayerNorm.backward(dInput: a.sublayer, dGamma: G + w.ln2G, dBeta: G + w.ln2B, dOut: dOut, input: A.ffnResidual,
                               gamma: P + w.ln2G, mean: A.mean2, rstd: A.rstd2, rows: N, dim: H)
            hiddenDrop(a.droppedGradient, copying: a.sublayer, layer: l, site: .ffnOutput)
            // Feed-forward: GELU's output and derivative were kept by the forward.
            Linear.backward(dInput: a.dGelu, dWeight: G + w.outW, dBias: G + w.outB, dOut: a.droppedGradient, input: A.gelu,
                            weight: P + w.outW, rows: N, inDim: I, outDim: H)
            // The intermediate bias's gradient is summed in the multiply's pass.
            GELU.multiply(a.dGelu, A.geluDerivative, rows: N, width: I, summingRowsInto: G + w.interB)
            Linear.backward(dInput: a.sublayer, dWeight: G + w.interW, dBias: nil, dOut: a.dGelu, input: A.attentionNormed,
                            weight: P + w.interW, rows: N, inDim: H, outDim: I, accumulateInput: true)
            // Attention LayerNorm, dropout and residual: dIn starts as the residual's gradient.
            LayerNorm.backward(dInput: dIn, dGamma: G + w.ln1G, dBeta: G + w.ln1B, dOut: a.sublayer, input: A.attentionResidual,
                               gamma: P + w.ln1G, mean: A.mean1, rstd: A.rstd1, rows: N, dim: H)
            hiddenDrop(a.droppedGradient, copying: dIn, layer: l, site: .attentionOutput)
            Linear.backward(dInput: a.dContext, dWeight: G + w.attnOutW, dBias: G + w.attnOutB, dOut: a.droppedGradient, input: A.ctx,
                            weight: P + w.attnOutW, rows: N, inDim: H, outDim: H)
            let attnKey = (dropout != nil && pa > 0) ? dropout!.key(layer: l, site: .attentionProbs) : nil
            Attention.backward(dQ: a.dQuery, dK: a.dKey, dV: a.sublayer, dCtx: a.dContext, probs: A.probs, q: A.q, k: A.k, v: A.v,
                               shape: shape, dropoutKey: attnKey, p: pa, rowLabels: rowLabels, scratch: a.headScratch,
                               scratchPerThread: a.headScratchPerThread, threads: threads)
            Linear.backward(dInput: dIn, dWeight: G + w.queryW, dBias: G + w.queryB, dOut: a.dQuery, input: input,
                            weight: P + w.queryW, rows: N, inDim: H, outDim: H, accumulateInput: true)
            Linear.backward(dInput: dIn, dWeight: G + w.keyW, dBias: G + w.keyB, dOut: a.dKey, input: input,
                            weight: P + w.keyW, rows: N, inDim: H, outDim: H, accumulateInput: true)
            Linear.backward(dInput: dIn, dWeight: G + w.valueW, dBias: G + w.valueB, dOut: a.sublayer, input: input,
                            weight: P + w.valueW, rows: N, inDim: H, outDim: H, accumulateInput: true)
            swap(&dOut, &dIn)
            try finished(c.numLayers - 1 - l)
        }
        // Embeddings: dropout, LayerNorm, scatter into the tables.
        hiddenDrop(dOut, layer: 0, site: .embeddings)
        LayerNorm.backward(dInput: dIn, dGamma: G + layout.embLnG, dBeta: G + layout.embLnB, dOut: dOut, input: a.embSum,
                           gamma: P + layout.embLnG, mean: a.embMean, rstd: a.embRstd, rows: N, dim: H)
        Embeddings.backward(dWord: G + layout.wordEmb, dPosition: G + layout.posEmb, dType: G + layout.typeEmb,
                            dOut: dIn, packing: packing, hidden: H)
        try finished(c.numLayers)
    }
}
