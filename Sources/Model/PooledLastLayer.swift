import CBLAS
import CKernels

/// The last BERT layer when only its [CLS] rows are read ([CLS] pooling, as DPR / SR-DPR train).
///
/// Why: in the last layer every other row's query, attention output, output dense, residual,
/// LayerNorms and feed-forward block feed nothing — 10 of the layer's 12·H² weight FLOPs per row.
/// Only the keys and values of every row are needed, for the [CLS] query to attend over. So the
/// keys and values run over all (packed) rows, and everything else over one row per sequence:
/// attention is one query row per (sequence, head), and its backward sends dK, dV to every row of
/// the layer's input but dQ and the residual's gradient to the [CLS] rows only.
///
/// The [CLS] rows are gathered one per `SgemmRowTiling.period` rows (the rows between hold zeros
/// or values nobody reads, and get zero gradients): a [CLS] row then starts an sgemm tile wherever
/// its sequence sits in the batch, as in the full layer, so its bits do not depend on the batch
/// (inference and training forward stay bit-identical; ForwardOnlyParityTests). Dropout draws the
/// full layer's masks for these rows: element index = position 0 × hidden + feature, and row 0 of
/// each head's attention probabilities.
final class PooledLastLayer {
    /// Capacity: sequences, Σ lengths (one query's scores per head), the longest sequence.
    let sequences: Int, keyCount: Int, longest: Int
    /// Whether backward's buffers exist.
    let backward: Bool
    let storage: FloatBuffer
    /// Gathered rows [sequences · period, hidden]: the layer's input at [CLS], the query, the
    /// attention context, a dense's output (scratch), the attention block's residual sum and its
    /// LayerNorm, the feed-forward's residual sum and the layer's output.
    var input, query, context, sublayer, attentionResidual, attentionNormed, ffnResidual, out: UnsafeMutablePointer<Float>
    /// [sequences · period, intermediate]: the intermediate dense's output, and GELU of it.
    var ffnIntermediate, gelu: UnsafeMutablePointer<Float>
    var mean1, rstd1, mean2, rstd2: UnsafeMutablePointer<Float>
    /// Each (sequence, head)'s attention probabilities of the [CLS] query, before dropout [heads · Σ lengths].
    var probs: UnsafeMutablePointer<Float>
    // Backward, gathered rows: gradients w.r.t. the output, a LayerNorm's input, after a hidden
    // dropout, the context, the query, the input at [CLS]; and the feed-forward's.
    var dOut, dResidual, droppedGradient, dContext, dQuery, dInput: UnsafeMutablePointer<Float>
    var dGelu, geluDerivative: UnsafeMutablePointer<Float>
    /// [longest] each: one head's score gradient, and its dropped probabilities.
    var dScores, droppedProbs: UnsafeMutablePointer<Float>

    static var period: Int { SgemmRowTiling.period }

    init(config c: BertConfig, sequences: Int, keyCount: Int, longest: Int, backward: Bool) {
        self.sequences = sequences
        self.keyCount = keyCount
        self.longest = longest
        self.backward = backward
        let rows = sequences * Self.period, H = c.hiddenSize, I = c.intermediateSize
        let forwardCount = 8 * rows * H + 2 * rows * I + 4 * rows + c.numHeads * keyCount + 2 * longest
        let backwardCount = backward ? 6 * rows * H + 2 * rows * I : 0
        storage = FloatBuffer(count: forwardCount + backwardCount)
        var p = storage.pointer
        func take(_ n: Int) -> UnsafeMutablePointer<Float> { defer { p += n }; return p }
        input = take(rows * H); query = take(rows * H); context = take(rows * H); sublayer = take(rows * H)
        attentionResidual = take(rows * H); attentionNormed = take(rows * H); ffnResidual = take(rows * H); out = take(rows * H)
        ffnIntermediate = take(rows * I); gelu = take(rows * I)
        mean1 = take(rows); rstd1 = take(rows); mean2 = take(rows); rstd2 = take(rows)
        probs = take(c.numHeads * keyCount)
        dScores = take(longest); droppedProbs = take(longest)
        let g = backward ? rows * H : 0, gi = backward ? rows * I : 0
        dOut = take(g); dResidual = take(g); droppedGradient = take(g); dContext = take(g); dQuery = take(g); dInput = take(g)
        dGelu = take(gi); geluDerivative = take(gi)
    }

    func fits(_ packing: SequencePacking, backward needed: Bool) -> Bool {
        sequences >= packing.rows && keyCount >= packing.lengths.reduce(0, +) && longest >= packing.longest && (backward || !needed)
    }

    /// Σ lengths before each sequence.
    private static func keyOffsets(_ packing: SequencePacking) -> [Int] {
        var offsets = [Int](), sum = 0
        for length in packing.lengths { offsets.append(sum); sum += length }
        return offsets
    }

    /// What the layer reads: its weights, dropout, and the batch's layout.
    struct Context {
        var packing: SequencePacking
        var config: BertConfig
        var weights: BertLayout.Layer
        var parameters: UnsafeMutablePointer<Float>
        var linearWeights: PackedLinearWeights
        var dropout: DropoutContext?
        var layer: Int
        var hiddenDropout: Float, attentionDropout: Float
        var rowLabels: RowLabels
    }

    /// Hidden dropout on the gathered [CLS] rows: the full layer's masks of position 0.
    private func dropHidden(_ x: UnsafeMutablePointer<Float>, _ s: Context, site: DropoutContext.Site) {
        guard let d = s.dropout, s.hiddenDropout > 0 else { return }
        let key = d.key(layer: s.layer, site: site), H = s.config.hiddenSize
        for r in 0..<s.packing.rows {
            DropoutContext.apply(x + r * Self.period * H, count: H, rowKey: DropoutContext.rowKey(key, row: s.rowLabels[r]),
                                 p: s.hiddenDropout)
        }
    }

    /// The key of one sequence's attention-probability dropout, or nil without it.
    private func attentionRowKey(_ s: Context, row: Int) -> UInt64? {
        guard let d = s.dropout, s.attentionDropout > 0 else { return nil }
        return DropoutContext.rowKey(d.key(layer: s.layer, site: .attentionProbs), row: s.rowLabels[row])
    }

    /// Runs the layer over `layerInput` [packing.tokens, hidden]: writes `key` and `value` (every
    /// row) and the pooled [CLS] outputs [rows, hidden] into `pooled`.
    func forward(_ s: Context, layerInput: UnsafePointer<Float>, key: UnsafeMutablePointer<Float>, value: UnsafeMutablePointer<Float>,
                 pooled: UnsafeMutablePointer<Float>) {
        let c = s.config, w = s.weights, P = s.parameters, packing = s.packing
        let H = c.hiddenSize, I = c.intermediateSize, N = packing.tokens, B = packing.rows, rows = B * Self.period
        // Keys and values of every row.
        Linear.forward(key, layerInput, weights: s.linearWeights, parameters: P, weight: w.keyW, bias: w.keyB, rows: N, inDim: H, outDim: H)
        Linear.forward(value, layerInput, weights: s.linearWeights, parameters: P, weight: w.valueW, bias: w.valueB, rows: N, inDim: H, outDim: H)
        // Gather the [CLS] rows.
        input.update(repeating: 0, count: rows * H)
        for r in 0..<B { (input + r * Self.period * H).update(from: layerInput + packing.offsets[r] * H, count: H) }
        Linear.forward(query, input, weights: s.linearWeights, parameters: P, weight: w.queryW, bias: w.queryB, rows: rows, inDim: H, outDim: H)
        // One query row per (sequence, head) over that sequence's keys.
        context.update(repeating: 0, count: rows * H)
        let hd = c.headDim, scale = 1 / Float(hd).squareRoot(), total = packing.lengths.reduce(0, +)
        let keyOffsets = Self.keyOffsets(packing)
        let blasThreads = BLASThreads.current
        BLASThreads.set(1)
        packing.keyMask.withOptionalPointer { keyMask in
            for r in 0..<B {
                let L = packing.lengths[r], offset = packing.offsets[r], rowKey = attentionRowKey(s, row: r)
                for h in 0..<c.numHeads {
                    let base = offset * H + h * hd, gathered = r * Self.period * H + h * hd
                    let scores = probs + h * total + keyOffsets[r]
                    cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(L), Int32(hd), scale, key + base, Int32(H),
                                query + gathered, 1, 0, scores, 1)
                    srdpr_softmax_rows(scores, 1, L, Attention.realKeys(keyMask, offset: offset, length: L))
                    var used = UnsafePointer(scores)
                    if let rowKey {
                        droppedProbs.update(from: scores, count: L)
                        DropoutContext.apply(droppedProbs, count: L, rowKey: rowKey, p: s.attentionDropout, start: h * 4096 * 4096)
                        used = UnsafePointer(droppedProbs)
                    }
                    cblas_sgemv(CblasRowMajor, CblasTrans, Int32(L), Int32(hd), 1, value + base, Int32(H), used, 1, 0,
                                context + gathered, 1)
                }
            }
        }
        BLASThreads.set(blasThreads)
        Linear.forward(sublayer, context, weights: s.linearWeights, parameters: P, weight: w.attnOutW, bias: w.attnOutB, rows: rows, inDim: H, outDim: H)
        dropHidden(sublayer, s, site: .attentionOutput)
        // The residual sums are kept for backward only.
        LayerNorm.forward(attentionNormed, sum: backward ? attentionResidual : nil, mean: mean1, rstd: rstd1, sublayer,
                          residual: input, gamma: P + w.ln1G, beta: P + w.ln1B, rows: rows, dim: H, eps: c.layerNormEps)
        Linear.forward(ffnIntermediate, attentionNormed, weights: s.linearWeights, parameters: P, weight: w.interW, bias: w.interB, rows: rows, inDim: H, outDim: I)
        GELU.forward(gelu, ffnIntermediate, count: rows * I)
        Linear.forward(sublayer, gelu, weights: s.linearWeights, parameters: P, weight: w.outW, bias: w.outB, rows: rows, inDim: I, outDim: H)
        dropHidden(sublayer, s, site: .ffnOutput)
        LayerNorm.forward(out, sum: backward ? ffnResidual : nil, mean: mean2, rstd: rstd2, sublayer, residual: attentionNormed,
                          gamma: P + w.ln2G, beta: P + w.ln2B, rows: rows, dim: H, eps: c.layerNormEps)
        for r in 0..<B { (pooled + r * H).update(from: out + r * Self.period * H, count: H) }
    }

    /// The backward of the last `forward`, given the pooled outputs' gradient [rows, hidden]:
    /// accumulates the layer's parameter gradients into `gradients` and writes the gradient of the
    /// layer's input [packing.tokens, hidden] into `dLayerInput`. `dKey`, `dValue` are scratch of
    /// that size.
    func backward(_ s: Context, dPooled: UnsafePointer<Float>, gradients G: UnsafeMutablePointer<Float>,
                  layerInput: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>,
                  dKey: UnsafeMutablePointer<Float>, dValue: UnsafeMutablePointer<Float>, dLayerInput: UnsafeMutablePointer<Float>) {
        precondition(backward, "PooledLastLayer.backward needs buffers allocated for backward")
        let c = s.config, w = s.weights, P = s.parameters, packing = s.packing
        let H = c.hiddenSize, I = c.intermediateSize, N = packing.tokens, B = packing.rows, rows = B * Self.period
        dOut.update(repeating: 0, count: rows * H)
        for r in 0..<B { (dOut + r * Self.period * H).update(from: dPooled + r * H, count: H) }
        // Output LayerNorm, FFN dropout and residual; the feed-forward block.
        LayerNorm.backward(dInput: dResidual, dGamma: G + w.ln2G, dBeta: G + w.ln2B, dOut: dOut, input: ffnResidual,
                           gamma: P + w.ln2G, mean: mean2, rstd: rstd2, rows: rows, dim: H)
        droppedGradient.update(from: dResidual, count: rows * H)
        dropHidden(droppedGradient, s, site: .ffnOutput)
        GELU.forwardWithDerivative(gelu, derivative: geluDerivative, ffnIntermediate, count: rows * I)
        Linear.backward(dInput: dGelu, dWeight: G + w.outW, dBias: G + w.outB, dOut: droppedGradient, input: gelu,
                        weight: P + w.outW, rows: rows, inDim: I, outDim: H)
        // The intermediate bias's gradient is summed in the multiply's pass.
        GELU.multiply(dGelu, geluDerivative, rows: rows, width: I, summingRowsInto: G + w.interB)
        Linear.backward(dInput: dResidual, dWeight: G + w.interW, dBias: nil, dOut: dGelu, input: attentionNormed,
                        weight: P + w.interW, rows: rows, inDim: H, outDim: I, accumulateInput: true)
        // Attention LayerNorm, dropout and residual: dInput starts as the residual's gradient.
        LayerNorm.backward(dInput: dInput, dGamma: G + w.ln1G, dBeta: G + w.ln1B, dOut: dResidual, input: attentionResidual,
                           gamma: P + w.ln1G, mean: mean1, rstd: rstd1, rows: rows, dim: H)
        droppedGradient.update(from: dInput, count: rows * H)
        dropHidden(droppedGradient, s, site: .attentionOutput)
        Linear.backward(dInput: dContext, dWeight: G + w.attnOutW, dBias: G + w.attnOutB, dOut: droppedGradient, input: context,
                        weight: P + w.attnOutW, rows: rows, inDim: H, outDim: H)
        // Attention of one query row: dV = dropped(p) ⊗ dctx, dp = V·dctx, softmax backward (with
        // the 1/√d of the scores), dq = Kᵀ·ds, dK = ds ⊗ q.
        dQuery.update(repeating: 0, count: rows * H)
        dKey.update(repeating: 0, count: N * H)
        dValue.update(repeating: 0, count: N * H)
        let hd = c.headDim, scale = 1 / Float(hd).squareRoot(), total = packing.lengths.reduce(0, +)
        let keyOffsets = Self.keyOffsets(packing)
        let blasThreads = BLASThreads.current
        BLASThreads.set(1)
        for r in 0..<B {
            let L = packing.lengths[r], offset = packing.offsets[r], rowKey = attentionRowKey(s, row: r)
            for h in 0..<c.numHeads {
                let base = offset * H + h * hd, gathered = r * Self.period * H + h * hd
                let probabilities = UnsafePointer(probs + h * total + keyOffsets[r])
                var used = probabilities
                if let rowKey {
                    droppedProbs.update(from: probabilities, count: L)
                    DropoutContext.apply(droppedProbs, count: L, rowKey: rowKey, p: s.attentionDropout, start: h * 4096 * 4096)
                    used = UnsafePointer(droppedProbs)
                }
                cblas_sger(CblasRowMajor, Int32(L), Int32(hd), 1, used, 1, dContext + gathered, 1, dValue + base, Int32(H))
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(L), Int32(hd), 1, value + base, Int32(H), dContext + gathered, 1,
                            0, dScores, 1)
                if rowKey != nil { srdpr_dropout_backward_where_kept(dScores, droppedProbs, L, 1 / (1 - s.attentionDropout)) }
                srdpr_softmax_backward_rows(dScores, probabilities, 1, L, scale)
                cblas_sgemv(CblasRowMajor, CblasTrans, Int32(L), Int32(hd), 1, key + base, Int32(H), dScores, 1, 0,
                            dQuery + gathered, 1)
                cblas_sger(CblasRowMajor, Int32(L), Int32(hd), 1, dScores, 1, query + gathered, 1, dKey + base, Int32(H))
            }
        }
        BLASThreads.set(blasThreads)
        // The query and the residual reach the [CLS] rows only; keys and values every row.
        Linear.backward(dInput: dInput, dWeight: G + w.queryW, dBias: G + w.queryB, dOut: dQuery, input: input,
                        weight: P + w.queryW, rows: rows, inDim: H, outDim: H, accumulateInput: true)
        Linear.backward(dInput: dLayerInput, dWeight: G + w.keyW, dBias: G + w.keyB, dOut: dKey, input: layerInput,
                        weight: P + w.keyW, rows: N, inDim: H, outDim: H)
        Linear.backward(dInput: dLayerInput, dWeight: G + w.valueW, dBias: G + w.valueB, dOut: dValue, input: layerInput,
                        weight: P + w.valueW, rows: N, inDim: H, outDim: H, accumulateInput: true)
        for r in 0..<B {
            let row = dLayerInput + packing.offsets[r] * H
            srdpr_add(row, row, dInput + r * Self.period * H, H)
        }
    }
}
