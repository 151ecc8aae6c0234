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

    func batch(_ lengths: [Int], seed: Int) throws -> TokenBatch { try TrainingStepComparison.batch(lengths, seed: seed) }

    func step(_ model: BiEncoder, q: TokenBatch, c: TokenBatch, chunk: Int?, pruned: Bool, packed: Bool) throws -> TrainingStepComparison.StepResult {
        for side in [BiEncoder.Side.question, .context] {
            model.encoder(side).prunesLastLayer = pruned
            model.encoder(side).packsSequences = packed
        }
        return try TrainingStepComparison.step(model, q: q, c: c, chunk: chunk)
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
                    TrainingStepComparison.assertAgree(pruned, full, model: model, embeddingTolerance: 2e-6,
                                                       name: "pruned last layer parity", label: label)
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
