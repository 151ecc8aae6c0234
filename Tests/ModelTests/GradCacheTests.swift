import Data
import Foundation
import Model
import TestSupport
import XCTest

/// Grad cache (chunked encoding without activations, then re-encoding per chunk) must give the
/// same gradients as one full pass, with dropout on: the masks are keyed by global row.
final class GradCacheTests: XCTestCase {
    func sequences(_ rows: Int, maxLength: Int, seed: Int) -> [[Int32]] {
        (0..<rows).map { r in
            let length = 3 + (r * 7 + seed) % (maxLength - 3)
            return [101] + (1..<(length - 1)).map { Int32(1000 + (r * 131 + $0 * 17 + seed * 7) % 20000) } + [102]
        }
    }

    func step(_ model: BiEncoder, q: TokenBatch, c: TokenBatch, chunk: Int?) throws -> (Float, [Float], [Float]) {
        model.zeroGradients()
        let qe = try model.encode(.question, q, step: 7, train: true, chunkSize: chunk)
        let ce = try model.encode(.context, c, step: 7, train: true, chunkSize: chunk)
        let (l, dq, dc) = inBatchCrossEntropy(qe, ce, rows: q.rows, ctxRows: c.rows, dim: model.question.outputDim)
        try model.backward(.question, q, dEmbeddings: dq, step: 7, train: true, chunkSize: chunk)
        try model.backward(.context, c, dEmbeddings: dc, step: 7, train: true, chunkSize: chunk)
        return (l, qe + ce, model.gradients.toArray())
    }

    func testGradCacheMatchesFullPassWithDropout() throws { try checkGradCache(pooling: .cls) }
    func testGradCacheMatchesFullPassWithDropoutMeanPooling() throws { try checkGradCache(pooling: .mean) }

    func checkGradCache(pooling: Pooling) throws {
        let model = try BiEncoder.load(directory: Fixtures.url("tiny-bert"), projectionDim: 0, pooling: pooling)
        XCTAssertEqual(model.question.pooling, pooling)
        XCTAssertEqual(model.context.pooling, pooling)
        model.setDropout(0.1)
        let q = try TokenBatch(sequences: sequences(5, maxLength: 9, seed: 1))
        let c = try TokenBatch(sequences: sequences(7, maxLength: 14, seed: 2))
        let (refLoss, refEmb, refGrad) = try step(model, q: q, c: c, chunk: nil)
        // Dropout is really on: an evaluation pass gives other embeddings.
        let evalEmb = try model.encode(.question, q, train: false)
        XCTAssertGreaterThan(deviation(evalEmb, Array(refEmb[0..<evalEmb.count])).maxAbs, 1e-3)

        for chunk in [1, 2, 3] {
            let (l, emb, grad) = try step(model, q: q, c: c, chunk: chunk)
            XCTAssertEqual(l, refLoss, accuracy: 1e-5 * max(1, abs(refLoss)), "loss, chunk \(chunk), \(pooling)")
            XCTAssertLessThan(deviation(emb, refEmb).maxAbs, 1e-5, "embeddings, chunk \(chunk), \(pooling)")
            for slot in model.layout.slots {
                let d = deviation(Array(grad[slot.range]), Array(refGrad[slot.range]))
                // Mathematically zero gradients (SPEC §6): key biases, and the context encoder's last
                // output LayerNorm bias (it shifts every score of a row by the same amount).
                if slot.name.contains("attention.self.key.bias")
                    || slot.name == "ctx_model.encoder.layer.\(model.config.numLayers - 1).output.LayerNorm.bias" {
                    XCTAssertLessThan(d.maxAbs, 1e-6, "\(slot.name), chunk \(chunk), \(pooling): \(d)")
                } else {
                    XCTAssertLessThanOrEqual(d.maxAbs, 1e-5 * d.scale, "\(slot.name), chunk \(chunk), \(pooling): \(d)")
                }
            }
        }
    }

    /// Dropout masks are a function of (seed, step, side, row): the same step repeats exactly,
    /// another step or seed gives other masks, and a row's vector does not depend on its neighbours.
    func testDropoutIsReproducible() throws {
        let model = try BiEncoder.load(directory: Fixtures.url("tiny-bert"))
        model.setDropout(0.1)
        let q = try TokenBatch(sequences: sequences(4, maxLength: 9, seed: 5))
        let a = try model.encode(.question, q, step: 3)
        XCTAssertEqual(a, try model.encode(.question, q, step: 3))
        XCTAssertGreaterThan(deviation(a, try model.encode(.question, q, step: 4)).maxAbs, 1e-3)
        model.seed = 999
        XCTAssertGreaterThan(deviation(a, try model.encode(.question, q, step: 3)).maxAbs, 1e-3)
        model.seed = 12345
        let row2 = try model.encode(.question, q.rows(2..<3), step: 3, rowOffset: 2)
        XCTAssertLessThan(deviation(row2, Array(a[(2 * 64)..<(3 * 64)])).maxAbs, 1e-5)
    }

    func testFixedContextEncoderGetsNoGradient() throws {
        let model = try BiEncoder.load(directory: Fixtures.url("tiny-bert"), fixContextEncoder: true)
        let q = try TokenBatch(sequences: sequences(3, maxLength: 8, seed: 3))
        let c = try TokenBatch(sequences: sequences(4, maxLength: 10, seed: 4))
        let (_, _, grad) = try step(model, q: q, c: c, chunk: nil)
        let ctxRange = model.context.layout.range, qRange = model.question.layout.range
        XCTAssertTrue(grad[ctxRange].allSatisfy { $0 == 0 })
        XCTAssertTrue(grad[qRange].contains { $0 != 0 })
    }
}
