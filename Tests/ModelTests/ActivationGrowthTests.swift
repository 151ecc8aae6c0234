import Data
import Foundation
import Model
import TestSupport
import XCTest

/// An encoder keeps its activations from batch to batch and grows them (by a quarter, resizing
/// their storage in place) when a batch outgrows them, so their memory holds another batch's
/// values and another layout. A batch's embeddings and gradients must not depend on that: they are
/// the bytes a fresh model computes, on one thread and on two (RowParallelTraining's replicas).
final class ActivationGrowthTests: XCTestCase {
    func batch(_ lengths: [Int], seed: Int) throws -> TokenBatch {
        let width = lengths.max() ?? 1
        var ids: [Int32] = [], mask: [Int32] = []
        for (r, n) in lengths.enumerated() {
            let row: [Int32] = [101] + (1..<(n - 1)).map { Int32(1000 + (r * 131 + $0 * 17 + seed * 7) % 20000) } + [102]
            ids += row + [Int32](repeating: 0, count: width - n)
            mask += [Int32](repeating: 1, count: n) + [Int32](repeating: 0, count: width - n)
        }
        return try TokenBatch(inputIds: ids, attentionMask: mask, rows: lengths.count, seqLen: width)
    }

    func step(_ model: BiEncoder, q: TokenBatch, c: TokenBatch, step: Int) throws -> (embeddings: [Float], gradients: [Float]) {
        model.zeroGradients()
        let qe = try model.encode(.question, q, step: step, train: true)
        let ce = try model.encode(.context, c, step: step, train: true)
        let (_, dq, dc) = inBatchCrossEntropy(qe, ce, rows: q.rows, ctxRows: c.rows, dim: model.question.outputDim)
        try model.backward(.question, q, dEmbeddings: dq, step: step, train: true)
        try model.backward(.context, c, dEmbeddings: dc, step: step, train: true)
        return (qe + ce, model.gradients.toArray())
    }

    func fresh(threads: Int) throws -> BiEncoder {
        let model = try BiEncoder.load(directory: Fixtures.url("tiny-bert"), pooling: .mean)
        model.setDropout(0.1)
        model.threads = threads
        return model
    }

    func testGrowingActivationsGiveTheBytesOfAFreshModel() throws {
        // Small, then larger (growth), smaller (reuse), much larger (growth past the quarter), longer rows.
        let shapes: [(q: [Int], c: [Int])] = [([5, 9], [20, 12, 7, 30]), ([11, 8, 6], [40, 25, 33, 9, 18]),
                                              ([4, 3], [10, 8]), ([20, 17, 9, 12], [90, 64, 70, 15, 55, 41]),
                                              ([30, 2], [120, 6, 100])]
        let blasThreads = BLASThreads.current
        defer { BLASThreads.set(blasThreads) }
        for threads in [1, 2] {
            BLASThreads.set(threads)
            let reused = try fresh(threads: threads)
            for (i, shape) in shapes.enumerated() {
                let q = try batch(shape.q, seed: i), c = try batch(shape.c, seed: 10 + i)
                let got = try step(reused, q: q, c: c, step: i)
                let expected = try step(try fresh(threads: threads), q: q, c: c, step: i)
                XCTAssertEqual(got.embeddings, expected.embeddings, "embeddings of batch \(i), threads \(threads)")
                XCTAssertEqual(got.gradients, expected.gradients, "gradients of batch \(i), threads \(threads)")
                XCTAssertTrue(got.gradients.contains { $0 != 0 })
            }
        }
    }

    func testResizeKeepsTheValuesBefore() {
        let buffer = FloatBuffer(count: 1_000_000)
        XCTAssertTrue(buffer.toArray().allSatisfy { $0 == 0 }, "a new buffer is zero")
        for i in 0..<buffer.count { buffer.pointer[i] = Float(i % 1000) }
        buffer.resize(to: 3_000_000)
        XCTAssertEqual(buffer.count, 3_000_000)
        XCTAssertTrue((0..<1_000_000).allSatisfy { buffer.pointer[$0] == Float($0 % 1000) })
        buffer.resize(to: 10)
        XCTAssertEqual(buffer.toArray(), (0..<10).map { Float($0) })
    }
}
