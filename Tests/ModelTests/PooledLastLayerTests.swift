import Data
import Foundation
import Model
import TestSupport
import XCTest

/// The last layer over the [CLS] rows only (PooledLastLayer, [CLS] pooling) against the full
/// layer (`prunesLastLayer = false`): a training step of the pos loss over sequences of 1 to 64
/// tokens, dropout on, grad cache on and off, with and without a projection head, packed and
/// padded. Losses, embeddings and every parameter gradient must agree within fp32 rounding: the
/// pruned layer draws the full layer's dropout masks for the [CLS] rows.
final class PooledLastLayerTests: XCTestCase {
    static let questionLengths = [1, 64, 5, 12, 40, 3]
    static let contextLengths = [64, 1, 57, 8, 33, 21, 4, 64, 30, 11, 2, 50]

    func batch(_ lengths: [Int], seed: Int) throws -> TokenBatch {
        try TokenBatch(sequences: lengths.enumerated().map { r, length in
            [101] + (1..<max(length - 1, 1)).map { Int32(1000 + (r * 131 + $0 * 17 + seed * 7) % 20000) } + (length > 1 ? [102] : [])
        })
    }

    struct StepResult { var loss: Float, embeddings: [Float], gradients: [Float] }

    func step(_ model: BiEncoder, q: TokenBatch, c: TokenBatch, chunk: Int?, pruned: Bool, packed: Bool) throws -> StepResult {
        for side in [BiEncoder.Side.question, .context] {
            model.encoder(side).prunesLastLayer = pruned
            model.encoder(side).packsSequences = packed
        }
        model.zeroGradients()
        let qe = try model.encode(.question, q, step: 2, train: true, chunkSize: chunk)
        let ce = try model.encode(.context, c, step: 2, train: true, rowOffset: 7, chunkSize: chunk)
        let d = model.question.outputDim, rows = q.rows
        let loss = try PositiveLoss.forwardBackward(q: qe, p: Array(ce[0..<(rows * d)]), n: Array(ce[(rows * d)...]), rows: rows,
                                                    negatives: c.rows - rows, dim: d, duplicateMask: nil, similarity: .dotProduct)
        try model.backward(.question, q, dEmbeddings: loss.gq, step: 2, train: true, chunkSize: chunk)
        try model.backward(.context, c, dEmbeddings: loss.gp + loss.gn, step: 2, train: true, rowOffset: 7, chunkSize: chunk)
        return StepResult(loss: loss.loss, embeddings: qe + ce, gradients: model.gradients.toArray())
    }

    func testClsRowsOnlyMatchTheFullLastLayer() throws {
        let q = try batch(Self.questionLengths, seed: 1), c = try batch(Self.contextLengths, seed: 2)
        for projectionDim in [0, 16] {
            let model = try BiEncoder.load(directory: Fixtures.url("tiny-bert"), projectionDim: projectionDim, pooling: .cls)
            if projectionDim > 0 { model.initialiseProjectionHeads() }
            model.setDropout(0.1)
            for packed in [true, false] {
                let full = try step(model, q: q, c: c, chunk: nil, pruned: false, packed: packed)
                // Dropout is really on: an evaluation pass gives other embeddings.
                let evaluation = try model.encode(.question, q, train: false)
                XCTAssertGreaterThan(deviation(evaluation, Array(full.embeddings[0..<evaluation.count])).maxAbs, 1e-3)
                for chunk in (packed ? [nil, 1, 4] : [nil, 4]) as [Int?] {
                    let pruned = try step(model, q: q, c: c, chunk: chunk, pruned: true, packed: packed)
                    let label = "projection_dim \(projectionDim), \(packed ? "packed" : "padded"), chunk \(chunk.map(String.init) ?? "none")"
                    XCTAssertEqual(pruned.loss, full.loss, accuracy: 1e-5 * max(1, abs(full.loss)), "loss, \(label)")
                    let e = deviation(pruned.embeddings, full.embeddings)
                    XCTAssertLessThan(e.maxAbs, 2e-6, "embeddings, \(label): \(e)")
                    var worst: Float = 0
                    for slot in model.layout.slots {
                        let d = deviation(Array(pruned.gradients[slot.range]), Array(full.gradients[slot.range]))
                        // Mathematically zero gradients (SPEC §6): key biases, and what shifts every
                        // context of a batch by the same vector: summation noise in both.
                        if slot.name.contains("attention.self.key.bias") || slot.name == "ctx_model.encode_proj.bias"
                            || slot.name == "ctx_model.encoder.layer.\(model.config.numLayers - 1).output.LayerNorm.bias" {
                            XCTAssertLessThan(d.maxAbs, 1e-5, "\(slot.name), \(label): \(d)")
                        } else {
                            XCTAssertGreaterThan(d.scale, 0, "\(slot.name) has no gradient, \(label)")
                            XCTAssertLessThanOrEqual(d.maxAbs, 3e-5 * d.scale, "\(slot.name), \(label): \(d)")
                            worst = max(worst, d.maxAbs / d.scale)
                        }
                    }
                    print("pruned last layer parity (\(label)): loss \(pruned.loss) vs \(full.loss), embeddings max |difference| "
                          + "\(e.maxAbs), worst gradient difference / scale \(worst)")
                }
            }
        }
    }

    /// A sequence's pruned embedding does not depend on the batch around it (the [CLS] rows are
    /// gathered one per sgemm row period): alone, or among others at any place, the same bits.
    func testClsRowsOnlyEmbeddingDoesNotDependOnTheBatch() throws {
        let model = try BiEncoder.load(directory: Fixtures.url("tiny-bert"), projectionDim: 0, pooling: .cls)
        let c = try batch(Self.contextLengths, seed: 3)
        let together = try model.embed(.context, c)
        let H = model.config.hiddenSize
        for r in [0, 1, 5, 11] {
            let alone = try model.embed(.context, try c.onlyRow(r))
            XCTAssertEqual(alone, Array(together[(r * H)..<((r + 1) * H)]), "sequence \(r)")
        }
    }

    /// Mean pooling reads every row: `prunesLastLayer` changes nothing, bit for bit.
    func testMeanPoolingIsUntouched() throws {
        let q = try batch(Self.questionLengths, seed: 1), c = try batch(Self.contextLengths, seed: 2)
        let model = try BiEncoder.load(directory: Fixtures.url("tiny-bert"), projectionDim: 0, pooling: .mean)
        model.setDropout(0.1)
        let on = try step(model, q: q, c: c, chunk: nil, pruned: true, packed: true)
        let off = try step(model, q: q, c: c, chunk: nil, pruned: false, packed: true)
        XCTAssertEqual(on.loss, off.loss)
        XCTAssertEqual(on.embeddings, off.embeddings)
        XCTAssertEqual(on.gradients, off.gradients)
        _ = try model.context.forward(c)
        XCTAssertNoThrow(try model.context.lastHiddenState())
    }
}

private extension TokenBatch {
    /// A one-row batch holding row `row`'s real tokens.
    func onlyRow(_ row: Int) throws -> TokenBatch {
        let T = seqLen, length = attentionMask[(row * T)..<((row + 1) * T)].reduce(0) { $0 + Int($1) }
        return try TokenBatch(sequences: [Array(inputIds[(row * T)..<(row * T + length)])])
    }
}
