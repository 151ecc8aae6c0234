import Data
import Foundation
import Model
import TestSupport
import XCTest

/// Packing (every layer over the real tokens only, SequencePacking) against the padded computation
/// (`packsSequences = false`, padding keys masked as before): batches of very different lengths,
/// dropout on, grad cache on and off, both poolings, with and without a projection head. Losses,
/// embeddings and every parameter gradient must agree within fp32 rounding: the dropout masks are
/// keyed by a token's position in its sequence, so both layouts draw the same ones.
final class PackingParityTests: XCTestCase {
    /// Questions of 2 to 40 tokens and contexts of 3 to 120 (tiny-bert has 128 positions).
    static let questionLengths = [2, 37, 5, 12, 40, 3]
    static let contextLengths = [120, 3, 57, 8, 99, 21, 4, 64, 30, 11, 2, 75]

    func batch(_ lengths: [Int], seed: Int) throws -> TokenBatch { try TrainingStepComparison.batch(lengths, seed: seed) }

    func step(_ model: BiEncoder, q: TokenBatch, c: TokenBatch, chunk: Int?, packed: Bool) throws -> TrainingStepComparison.StepResult {
        for side in [BiEncoder.Side.question, .context] { model.encoder(side).packsSequences = packed }
        return try TrainingStepComparison.step(model, q: q, c: c, chunk: chunk)
    }

    func testPackedTrainingStepMatchesPaddedWithDropoutAndGradCache() throws {
        let q = try batch(Self.questionLengths, seed: 1), c = try batch(Self.contextLengths, seed: 2)
        let realTokens = (Self.questionLengths + Self.contextLengths).reduce(0, +)
        XCTAssertLessThan(Double(realTokens), 0.6 * Double(q.rows * q.seqLen + c.rows * c.seqLen), "the batches should be mostly padding")
        for (projectionDim, pooling) in [(0, Pooling.cls), (0, .mean), (16, .mean)] {
            let model = try BiEncoder.load(directory: Fixtures.url("tiny-bert"), projectionDim: projectionDim, pooling: pooling)
            if projectionDim > 0 { model.initialiseProjectionHeads() }
            model.setDropout(0.1)
            let padded = try step(model, q: q, c: c, chunk: nil, packed: false)
            // Dropout is really on: an evaluation pass gives other embeddings.
            let evaluation = try model.encode(.question, q, train: false)
            XCTAssertGreaterThan(deviation(evaluation, Array(padded.embeddings[0..<evaluation.count])).maxAbs, 1e-3)
            for chunk in [nil, 1, 4] as [Int?] {
                let packed = try step(model, q: q, c: c, chunk: chunk, packed: true)
                let label = "projection_dim \(projectionDim), \(pooling), chunk \(chunk.map(String.init) ?? "none")"
                TrainingStepComparison.assertAgree(packed, padded, model: model, embeddingTolerance: 1e-5, name: "packing parity", label: label)
            }
        }
    }

    /// The inference path (`embed`: forward only, one layer's buffers) and the kept last hidden
    /// state: equal at the real tokens, and the packed forward computes nothing at the padding.
    func testForwardOnlyAndHiddenStatesMatchPadded() throws {
        let model = try BiEncoder.load(directory: Fixtures.url("tiny-bert"), projectionDim: 0, pooling: .mean)
        let c = try batch(Self.contextLengths, seed: 4)
        var results: [(embedded: [Float], hidden: [Float])] = []
        for packed in [false, true] {
            model.context.packsSequences = packed
            let embedded = try model.embed(.context, c)
            _ = try model.context.forward(c)
            results.append((embedded, try model.context.lastHiddenState()))
        }
        let (padded, packed) = (results[0], results[1])
        XCTAssertLessThan(deviation(packed.embedded, padded.embedded).maxAbs, 1e-5)
        let H = model.config.hiddenSize
        var paddingValues: Float = 0, packedPadding: Float = 0
        var realPacked: [Float] = [], realPadded: [Float] = []
        for r in 0..<c.rows {
            for t in 0..<c.seqLen {
                let range = ((r * c.seqLen + t) * H)..<((r * c.seqLen + t + 1) * H)
                if c.attentionMask[r * c.seqLen + t] != 0 {
                    realPacked += packed.hidden[range]
                    realPadded += padded.hidden[range]
                } else {
                    paddingValues = max(paddingValues, padded.hidden[range].map(abs).max()!)
                    packedPadding = max(packedPadding, packed.hidden[range].map(abs).max()!)
                }
            }
        }
        XCTAssertLessThan(deviation(realPacked, realPadded).maxAbs, 1e-5)
        XCTAssertGreaterThan(paddingValues, 0.1, "the padded computation computes hidden states at the padding")
        XCTAssertEqual(packedPadding, 0, "the packed computation computes nothing at the padding")
    }

    /// Masks packing cannot represent (left padding, a hole, a row without any real token) run the
    /// padded computation: bit for bit what packsSequences = false gives.
    func testUnpackableMasksRunPadded() throws {
        let model = try BiEncoder.load(directory: Fixtures.url("tiny-bert"), projectionDim: 0, pooling: .mean)
        let ids: [Int32] = [101, 2000, 2001, 102, 0, 0,
                            0, 0, 101, 2002, 2003, 102,
                            101, 2004, 0, 2005, 102, 0,
                            0, 0, 0, 0, 0, 0]
        let mask: [Int32] = [1, 1, 1, 1, 0, 0,
                             0, 0, 1, 1, 1, 1,
                             1, 1, 0, 1, 1, 0,
                             0, 0, 0, 0, 0, 0]
        let b = try TokenBatch(inputIds: ids, attentionMask: mask, rows: 4, seqLen: 6)
        var outputs: [[Float]] = []
        for packed in [true, false] {
            model.context.packsSequences = packed
            outputs.append(try model.embed(.context, b))
        }
        XCTAssertEqual(outputs[0], outputs[1])
    }
}
