import Data
import Foundation
import Model
import TestSupport
import XCTest

/// One training step of the pos loss run two ways and compared: what PackingParityTests (packed vs
/// padded) and PooledLastLayerTests ([CLS] rows only vs the full last layer) check.
enum TrainingStepComparison {
    struct StepResult { var loss: Float, embeddings: [Float], gradients: [Float] }

    /// [CLS], tokens, [SEP] rows of the given lengths (a length-1 row is [CLS] alone).
    static func batch(_ lengths: [Int], seed: Int) throws -> TokenBatch {
        try TokenBatch(sequences: lengths.enumerated().map { r, length in
            [101] + (1..<max(length - 1, 1)).map { Int32(1000 + (r * 131 + $0 * 17 + seed * 7) % 20000) } + (length > 1 ? [102] : [])
        })
    }

    /// One training step of the pos loss (question i's positive is context i, the rest are
    /// negatives), dropout keyed by step 3 and context rows from global row 5.
    static func step(_ model: BiEncoder, q: TokenBatch, c: TokenBatch, chunk: Int?) throws -> StepResult {
        model.zeroGradients()
        let qe = try model.encode(.question, q, step: 3, train: true, chunkSize: chunk)
        let ce = try model.encode(.context, c, step: 3, train: true, rowOffset: 5, chunkSize: chunk)
        let d = model.question.outputDim, rows = q.rows
        let loss = try PositiveLoss.forwardBackward(q: qe, p: Array(ce[0..<(rows * d)]), n: Array(ce[(rows * d)...]), rows: rows,
                                                    negatives: c.rows - rows, dim: d, duplicateMask: nil, similarity: .dotProduct)
        try model.backward(.question, q, dEmbeddings: loss.gq, step: 3, train: true, chunkSize: chunk)
        try model.backward(.context, c, dEmbeddings: loss.gp + loss.gn, step: 3, train: true, rowOffset: 5, chunkSize: chunk)
        return StepResult(loss: loss.loss, embeddings: qe + ce, gradients: model.gradients.toArray())
    }

    /// Asserts that `actual` agrees with `expected` within fp32 rounding (loss 1e-5 relative,
    /// embeddings `embeddingTolerance`, every gradient 3e-5 of its tensor's scale) and prints the
    /// measured differences after `name`.
    static func assertAgree(_ actual: StepResult, _ expected: StepResult, model: BiEncoder, embeddingTolerance: Float,
                            name: String, label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.loss, expected.loss, accuracy: 1e-5 * max(1, abs(expected.loss)), "loss, \(label)", file: file, line: line)
        let e = deviation(actual.embeddings, expected.embeddings)
        XCTAssertLessThan(e.maxAbs, embeddingTolerance, "embeddings, \(label): \(e)", file: file, line: line)
        var worst: Float = 0
        for slot in model.layout.slots {
            let d = deviation(Array(actual.gradients[slot.range]), Array(expected.gradients[slot.range]))
            // Mathematically zero gradients (SPEC §6): key biases, and what shifts every context
            // of a batch by the same vector (the context encoder's last output LayerNorm bias and
            // its projection bias: every score of a question moves by the same amount). Their
            // values are summation noise (up to 6e-6 here), as PyTorch's are.
            if slot.name.contains("attention.self.key.bias") || slot.name == "ctx_model.encode_proj.bias"
                || slot.name == "ctx_model.encoder.layer.\(model.config.numLayers - 1).output.LayerNorm.bias" {
                XCTAssertLessThan(d.maxAbs, 1e-5, "\(slot.name), \(label): \(d)", file: file, line: line)
            } else {
                // 3e-5 of the tensor's scale: LayerNorm biases sum hundreds of tokens' gradients
                // with cancellation, and grad cache adds its own rounding (measured up to 1.3e-5).
                XCTAssertGreaterThan(d.scale, 0, "\(slot.name) has no gradient, \(label)", file: file, line: line)
                XCTAssertLessThanOrEqual(d.maxAbs, 3e-5 * d.scale, "\(slot.name), \(label): \(d)", file: file, line: line)
                worst = max(worst, d.maxAbs / d.scale)
            }
        }
        print("\(name) (\(label)): loss \(actual.loss) vs \(expected.loss), embeddings max |difference| "
              + "\(e.maxAbs), worst gradient difference / scale \(worst)")
    }
}
