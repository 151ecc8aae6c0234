import CKernels
import Data
import Foundation
@testable import Model
import TestSupport
import XCTest

/// The passes the encoder fuses or skips must not change a bit: the residual add inside the
/// LayerNorm forward (`srdpr_residual_layernorm_forward`) against `srdpr_add` then the LayerNorm,
/// and the Q/K/V weights kept across the batches of one `BatchParallelInference.embed` call
/// against a fresh copy per forward. The reference below is the two-pass formulation, layer by
/// layer, over the same primitives; the encoder's training forward (dropout on) and its
/// forward-only path must give its bits.
final class FusedPassesParityTests: XCTestCase {
    override func tearDown() { KernelBuild.reset() }

    /// The fused kernel against the two calls, bit for bit, in every kernel build, at widths with a
    /// tail (13), a vector multiple (32) and MiniLM's (384), with the sum stored and not.
    func testResidualLayerNormIsAddThenLayerNormBitForBit() {
        var random = SplitMix64(seed: 0xB1A5)
        func draw(_ n: Int, _ scale: Float, _ offset: Float = 0) -> [Float] {
            (0..<n).map { _ in offset + scale * (Float(Int(random.next() % 20001) - 10000) / 10000) }
        }
        for build in KernelBuild.available(reportingTo: "FusedPassesParityTests") {
            build.force()
            let name = build.rawValue
            for dim in [13, 32, 384] {
                let rows = 7
                let input = draw(rows * dim, 4), residual = draw(rows * dim, 2, 0.3), gamma = draw(dim, 0.5, 1), beta = draw(dim, 0.2)
                var sum = [Float](repeating: 0, count: rows * dim), expected = sum, mean = [Float](repeating: 0, count: rows), rstd = mean
                srdpr_add(&sum, input, residual, rows * dim)
                srdpr_layernorm_forward(&expected, &mean, &rstd, sum, gamma, beta, rows, dim, 1e-12)
                for storesSum in [true, false] {
                    var out = [Float](repeating: .nan, count: rows * dim), fusedSum = out
                    var fusedMean = [Float](repeating: .nan, count: rows), fusedRstd = fusedMean
                    fusedSum.withUnsafeMutableBufferPointer { s in
                        srdpr_residual_layernorm_forward(&out, storesSum ? s.baseAddress : nil, &fusedMean, &fusedRstd, input, residual,
                                                         gamma, beta, rows, dim, 1e-12)
                    }
                    let label = "\(name), dim \(dim), sum \(storesSum ? "stored" : "not stored")"
                    XCTAssertEqual(out.map(\.bitPattern), expected.map(\.bitPattern), "\(label): output")
                    XCTAssertEqual(fusedMean.map(\.bitPattern), mean.map(\.bitPattern), "\(label): mean")
                    XCTAssertEqual(fusedRstd.map(\.bitPattern), rstd.map(\.bitPattern), "\(label): rstd")
                    if storesSum { XCTAssertEqual(fusedSum.map(\.bitPattern), sum.map(\.bitPattern), "\(label): sum") }
                    else { XCTAssertTrue(fusedSum.allSatisfy(\.isNaN), "\(label): the sum must not be written") }
                }
            }
        }
    }

    /// The GELU backward's multiply with the intermediate bias's gradient summed in its pass,
    /// against `srdpr_multiply` then `srdpr_add` row by row (what Linear.backward does), bit for bit.
    func testMultiplyWithRowSumsIsMultiplyThenRowAddsBitForBit() {
        var random = SplitMix64(seed: 0x5EED)
        func draw(_ n: Int) -> [Float] { (0..<n).map { _ in Float(Int(random.next() % 20001) - 10000) / 3001 } }
        for build in KernelBuild.available(reportingTo: "FusedPassesParityTests") {
            build.force()
            for (rows, dim) in [(5, 13), (12, 1536)] {
                let gradient = draw(rows * dim), derivative = draw(rows * dim), start = draw(dim)
                var expected = gradient, expectedSums = start
                srdpr_multiply(&expected, derivative, rows * dim)
                for r in 0..<rows { expected.withUnsafeBufferPointer { srdpr_add(&expectedSums, expectedSums, $0.baseAddress! + r * dim, dim) } }
                var fused = gradient, sums = start
                srdpr_multiply_sum_rows(&fused, derivative, &sums, rows, dim)
                let label = "build \(build.rawValue), \(rows) x \(dim)"
                XCTAssertEqual(differing(fused, expected), 0, "\(label): products")
                XCTAssertEqual(differing(sums, expectedSums), 0, "\(label): column sums")
            }
        }
    }

    /// A bias's gradient in one blocked pass (`srdpr_sum_rows`, Linear.backward) against `srdpr_add`
    /// row by row (what it replaced), bit for bit, in both builds: row counts across the 64-row
    /// blocks, widths with whole column chunks, single vectors and scalar tails.
    func testRowSumsAreRowAddsBitForBit() {
        var random = SplitMix64(seed: 0xB1A5_5E)
        func draw(_ n: Int) -> [Float] { (0..<n).map { _ in Float(Int(random.next() % 20001) - 10000) / 3001 } }
        for build in [1, 0] {
            srdpr_kernels_force_baseline(Int32(build))
            for (rows, dim) in [(0, 7), (1, 1), (5, 13), (64, 45), (65, 384), (130, 77), (200, 1536)] {
                let x = draw(rows * dim), start = draw(dim)
                var expected = start
                for r in 0..<rows { x.withUnsafeBufferPointer { srdpr_add(&expected, expected, $0.baseAddress! + r * dim, dim) } }
                var sums = start
                srdpr_sum_rows(&sums, x, rows, dim)
                XCTAssertEqual(differing(sums, expected), 0, "build \(build == 1 ? "baseline" : "native"), \(rows) x \(dim)")
            }
        }
    }

    /// The last hidden state [tokens, hidden] (packed rows) of the two-pass formulation: a fresh
    /// Q/K/V copy per layer, `srdpr_add` into the residual, then LayerNorm; dropout as the encoder
    /// draws it.
    func referenceHiddenState(_ encoder: BertEncoder, _ batch: TokenBatch, dropout: DropoutContext?) -> (packing: SequencePacking, hidden: [Float]) {
        let c = encoder.config, layout = encoder.layout, P = encoder.parameters.pointer
        let H = c.hiddenSize, I = c.intermediateSize
        let packing = SequencePacking.packed(batch)!, N = packing.tokens, labels = RowLabels()
        let qkv = QKVProjection(hidden: H)
        let shape = Attention.Shape(packing: packing, heads: c.numHeads, headDim: c.headDim, qkvRowStride: qkv.rowStride)
        let scratchPerThread = Attention.scratchPerThread(longest: packing.longest, headDim: c.headDim)
        let buffers = FloatBuffer(count: N * (3 * H) + 5 * N * H + 2 * N * I + 2 * N + scratchPerThread)
        var p = buffers.pointer
        func take(_ n: Int) -> UnsafeMutablePointer<Float> { defer { p += n }; return p }
        let q = take(3 * N * H), x = take(N * H), ctx = take(N * H), sublayer = take(N * H), residual = take(N * H), normed = take(N * H)
        let intermediate = take(N * I), gelu = take(N * I), mean = take(N), rstd = take(N), scratch = take(scratchPerThread)
        func drop(_ v: UnsafeMutablePointer<Float>, layer: Int, site: DropoutContext.Site) {
            guard let d = dropout, encoder.hiddenDropout > 0 else { return }
            BertEncoder.dropHidden(v, packing: packing, key: d.key(layer: layer, site: site), rowLabels: labels, p: encoder.hiddenDropout, hidden: H)
        }
        Embeddings.forward(residual, packing: packing, word: P + layout.wordEmb, position: P + layout.posEmb, type: P + layout.typeEmb, hidden: H)
        LayerNorm.forward(x, mean: mean, rstd: rstd, residual, gamma: P + layout.embLnG, beta: P + layout.embLnB, rows: N, dim: H, eps: c.layerNormEps)
        drop(x, layer: 0, site: .embeddings)
        for (l, w) in layout.layers.enumerated() {
            qkv.forward(q, x, parameters: P, layer: w, rows: N, weights: PackedLinearWeights())
            let attentionKey = (dropout != nil && encoder.attentionDropout > 0) ? dropout!.key(layer: l, site: .attentionProbs) : nil
            Attention.forward(ctx: ctx, probs: nil, q: q, k: q + H, v: q + 2 * H, shape: shape, dropoutKey: attentionKey,
                              p: encoder.attentionDropout, rowLabels: labels, scratch: scratch, scratchPerThread: scratchPerThread, threads: 1)
            Linear.forward(sublayer, ctx, P + w.attnOutW, P + w.attnOutB, rows: N, inDim: H, outDim: H)
            drop(sublayer, layer: l, site: .attentionOutput)
            srdpr_add(residual, sublayer, x, N * H)
            LayerNorm.forward(normed, mean: mean, rstd: rstd, residual, gamma: P + w.ln1G, beta: P + w.ln1B, rows: N, dim: H, eps: c.layerNormEps)
            Linear.forward(intermediate, normed, P + w.interW, P + w.interB, rows: N, inDim: H, outDim: I)
            GELU.forward(gelu, intermediate, count: N * I)
            Linear.forward(sublayer, gelu, P + w.outW, P + w.outB, rows: N, inDim: I, outDim: H)
            drop(sublayer, layer: l, site: .ffnOutput)
            srdpr_add(residual, sublayer, normed, N * H)
            LayerNorm.forward(x, mean: mean, rstd: rstd, residual, gamma: P + w.ln2G, beta: P + w.ln2B, rows: N, dim: H, eps: c.layerNormEps)
        }
        return (packing, Array(UnsafeBufferPointer(start: x, count: N * H)))
    }

    /// How many values differ in their bits (the arrays are long: a count reads better than a dump).
    func differing(_ a: [Float], _ b: [Float]) -> Int {
        a.count != b.count ? max(a.count, b.count) : zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count
    }

    /// Sequences of very different lengths (tiny-bert has 128 positions).
    static let lengths = [120, 3, 57, 8, 99, 21, 4, 64, 30, 11, 2, 75]

    func testEncoderForwardsGiveTheTwoPassBits() throws {
        let batch = try TrainingStepComparison.batch(Self.lengths, seed: 7)
        let encoder = try BertEncoder.load(directory: Fixtures.url("tiny-bert"))
        encoder.pooling = .mean
        encoder.prunesLastLayer = false
        encoder.threads = 1
        // Training forward, dropout on: every token's last hidden state.
        encoder.hiddenDropout = 0.1
        encoder.attentionDropout = 0.1
        let dropout = DropoutContext(seed: 3, step: 5, stream: 1)
        _ = try encoder.forward(batch, dropout: dropout)
        let (packing, dropped) = referenceHiddenState(encoder, batch, dropout: dropout)
        let kept = try encoder.lastHiddenState(), H = encoder.config.hiddenSize
        for r in 0..<packing.rows {
            let count = packing.lengths[r] * H, padded = r * batch.seqLen * H, packed = packing.offsets[r] * H
            XCTAssertEqual(differing(Array(kept[padded..<(padded + count)]), Array(dropped[packed..<(packed + count)])), 0,
                           "training forward (dropout on), sequence \(r): values off the two-pass bits")
        }
        // Forward-only, no dropout, mean and [CLS] pooling over the full last layer, batch after
        // batch with the Q/K/V weights kept (what BatchParallelInference sets). (The pruned last
        // layer computes its keys and values in separate products, which round differently from
        // the Q/K/V product: its bits are held to the training forward's by ForwardOnlyParityTests.)
        let (_, plain) = referenceHiddenState(encoder, batch, dropout: nil)
        for pooling in [Pooling.mean, .cls] {
            encoder.pooling = pooling
            var expected = [Float](repeating: 0, count: packing.rows * H)
            plain.withUnsafeBufferPointer { hidden in
                expected.withUnsafeMutableBufferPointer {
                    pooling.forward(hidden: hidden.baseAddress!, packing: packing, dim: H, pooled: $0.baseAddress!)
                }
            }
            encoder.parametersFixed = true
            for round in 0..<2 {
                let embedded = try encoder.forward(batch, keepActivations: false)
                XCTAssertEqual(embedded.count, expected.count)
                XCTAssertEqual(differing(embedded, expected), 0, "forward-only, \(pooling), batch \(round + 1): values off the two-pass bits")
            }
            encoder.parametersFixed = false
        }
    }

    /// Kept Q/K/V weights live for one `embed` call only: embeddings follow parameters changed
    /// between calls, and come back to the first bytes when the parameters do.
    func testEmbeddingsFollowParametersChangedBetweenCalls() throws {
        let tiny = Fixtures.url("tiny-bert")
        let model = try BiEncoder.load(directory: tiny, projectionDim: 0)
        let tokenizer = try BertTokenizer(vocabFile: tiny.appendingPathComponent("vocab.txt"), doLowerCase: true)
        model.threads = 2
        let inputs: [EncodingInput] = (0..<9).map { .passage(title: "dense \($0)", text: String(repeating: "retrieval passage ", count: 1 + 3 * $0)) }
        let encoder = TextEncoder(model: model, tokenizer: tokenizer, maxLength: 64, batchSize: 2)
        let before = try encoder.encode(inputs)
        let context = model.encoder(.context), w = context.layout.layers[0]
        let saved = context.parameters.pointer[w.keyW]
        context.parameters.pointer[w.keyW] += 0.5
        let changed = try encoder.encode(inputs)
        let fresh = try TextEncoder(model: model, tokenizer: tokenizer, maxLength: 64, batchSize: 2).encode(inputs)
        XCTAssertNotEqual(changed, before, "a changed key weight must change the embeddings")
        XCTAssertEqual(changed, fresh, "the reused replicas must see the changed parameters")
        context.parameters.pointer[w.keyW] = saved
        XCTAssertEqual(try encoder.encode(inputs), before)
    }
}
