import Data
import Foundation
import Model
import TestSupport
import XCTest

/// Training with `threads` T > 1 runs each side's rows in T groups, one thread and one encoder
/// replica each (RowParallelTraining). The embeddings and the loss must be the bytes of one thread
/// (a row's forward does not depend on the rows around it); the gradients are sums over rows in
/// another order, equal within fp32 summation noise; and a given T repeats its bytes exactly.
final class RowParallelTrainingTests: XCTestCase {
    /// Sequences of the given lengths ([CLS] … [SEP]); `nil` = an all-padding row (the original's
    /// filler for a missing hard negative).
    func batch(_ lengths: [Int?], seed: Int) throws -> TokenBatch {
        let sequences: [[Int32]?] = lengths.enumerated().map { r, length in
            length.map { n in [101] + (1..<(n - 1)).map { Int32(1000 + (r * 131 + $0 * 17 + seed * 7) % 20000) } + [102] }
        }
        let width = lengths.compactMap { $0 }.max() ?? 1
        var ids: [Int32] = [], mask: [Int32] = []
        for s in sequences {
            ids += (s ?? []) + [Int32](repeating: 0, count: width - (s?.count ?? 0))
            mask += [Int32](repeating: 1, count: s?.count ?? 0) + [Int32](repeating: 0, count: width - (s?.count ?? 0))
        }
        return try TokenBatch(inputIds: ids, attentionMask: mask, rows: lengths.count, seqLen: width)
    }

    struct Outcome { var loss: Float; var embeddings: [Float]; var gradients: [Float] }

    /// One step (two accumulated batches, as gradient_accumulate_steps does) on `threads` threads.
    func step(_ model: BiEncoder, _ batches: [(q: TokenBatch, c: TokenBatch)], threads: Int, chunk: Int?) throws -> Outcome {
        let blasThreads = BLASThreads.current, modelThreads = model.threads
        defer {
            BLASThreads.set(blasThreads)
            model.threads = modelThreads
        }
        BLASThreads.set(threads)
        model.threads = threads
        model.zeroGradients()
        var outcome = Outcome(loss: 0, embeddings: [], gradients: [])
        for (micro, b) in batches.enumerated() {
            let qe = try model.encode(.question, b.q, step: 7 + micro, train: true, chunkSize: chunk)
            let ce = try model.encode(.context, b.c, step: 7 + micro, train: true, chunkSize: chunk)
            let (l, dq, dc) = inBatchCrossEntropy(qe, ce, rows: b.q.rows, ctxRows: b.c.rows, dim: model.question.outputDim)
            var finishedParts = 0
            try model.backward(.question, b.q, dEmbeddings: dq, step: 7 + micro, train: true, chunkSize: chunk,
                               finished: { _ in finishedParts += 1 })
            try model.backward(.context, b.c, dEmbeddings: dc, step: 7 + micro, train: true, chunkSize: chunk,
                               finished: { _ in finishedParts += 1 })
            // A trainer reduces each part once it is final: every part must be announced once per side.
            let expectedParts = model.question.layout.backwardOrder.count + (model.fixContextEncoder ? 0 : model.context.layout.backwardOrder.count)
            XCTAssertEqual(finishedParts, expectedParts, "finished parts, threads \(threads), chunk \(String(describing: chunk))")
            outcome.loss += l
            outcome.embeddings += qe + ce
        }
        outcome.gradients = model.gradients.toArray()
        return outcome
    }

    /// Slots whose gradient is mathematically zero (SPEC §6): their values are rounding noise.
    func isZeroInExactArithmetic(_ name: String, model: BiEncoder) -> Bool {
        name.contains("attention.self.key.bias") || name == "ctx_model.encode_proj.bias"
            || name == "ctx_model.encoder.layer.\(model.config.numLayers - 1).output.LayerNorm.bias"
    }

    func check(projectionDim: Int, pooling: Pooling, fixContext: Bool, questions: [Int?], contexts: [Int?],
               bitIdenticalForward: Bool) throws {
        let model = try BiEncoder.load(directory: Fixtures.url("tiny-bert"), projectionDim: projectionDim,
                                       fixContextEncoder: fixContext, pooling: pooling)
        model.setDropout(0.1)
        let batches = [(q: try batch(questions, seed: 1), c: try batch(contexts, seed: 2)),
                       (q: try batch(questions.reversed(), seed: 3), c: try batch(contexts.reversed(), seed: 4))]
        for chunk in [nil, 2, 3] as [Int?] {
            let label = "projection_dim \(projectionDim), \(pooling), fix_ctx \(fixContext), \(questions.count)+\(contexts.count) rows, chunk \(String(describing: chunk))"
            let reference = try step(model, batches, threads: 1, chunk: chunk)
            XCTAssertTrue(reference.gradients.contains { $0 != 0 }, label)
            for threads in [2, 3] {
                let got = try step(model, batches, threads: threads, chunk: chunk)
                if bitIdenticalForward {
                    XCTAssertEqual(got.embeddings, reference.embeddings, "embeddings, threads \(threads), \(label): not the one-thread bytes")
                    XCTAssertEqual(got.loss, reference.loss, "loss, threads \(threads), \(label)")
                } else {
                    // An all-padding row makes the one-thread batch run padded while the other groups run
                    // packed: the same computation at other rows of sgemm, so fp32 rounding differs.
                    XCTAssertLessThan(deviation(got.embeddings, reference.embeddings).maxAbs, 1e-5, "embeddings, threads \(threads), \(label)")
                    XCTAssertEqual(got.loss, reference.loss, accuracy: 1e-5 * max(1, abs(reference.loss)), "loss, threads \(threads), \(label)")
                }
                var worst: Float = 0
                for slot in model.layout.slots {
                    let d = deviation(Array(got.gradients[slot.range]), Array(reference.gradients[slot.range]))
                    if fixContext && slot.name.hasPrefix("ctx_model.") {
                        XCTAssertEqual(d.maxAbs, 0, "\(slot.name) of a fixed context encoder, threads \(threads), \(label)")
                        XCTAssertEqual(d.scale, 0, "\(slot.name) of a fixed context encoder, threads \(threads), \(label)")
                    } else if isZeroInExactArithmetic(slot.name, model: model) {
                        XCTAssertLessThan(d.maxAbs, 1e-6, "\(slot.name), threads \(threads), \(label): \(d)")
                    } else {
                        // Each thread sums its rows' contributions, then the threads' sums are added:
                        // another fp32 summation order than one sum over all rows. 3e-5 of the tensor's
                        // scale, PackingParityTests' bound for the same reordering: LayerNorm biases sum
                        // hundreds of tokens' gradients with cancellation (measured here up to 1.07e-5,
                        // mean pooling with a projection head; 1e-6 to 4e-6 otherwise).
                        XCTAssertLessThanOrEqual(d.maxAbs, 3e-5 * d.scale, "\(slot.name), threads \(threads), \(label): \(d)")
                        if d.scale > 0 { worst = max(worst, d.maxAbs / d.scale) }
                    }
                }
                print("row-parallel training (\(label)), threads \(threads): worst gradient difference / scale \(worst)")
            }
            // A given thread count repeats its bytes.
            let once = try step(model, batches, threads: 2, chunk: chunk)
            let twice = try step(model, batches, threads: 2, chunk: chunk)
            XCTAssertEqual(once.gradients, twice.gradients, "threads 2 twice, \(label): other gradient bytes")
            XCTAssertEqual(once.embeddings, twice.embeddings, "threads 2 twice, \(label): other embeddings")
        }
    }

    /// Lengths 3 to 100 in one batch, dropout on, grad cache off and on (chunks of 2 and 3).
    static let questions: [Int?] = [5, 61, 3, 24, 9]
    static let contexts: [Int?] = [100, 7, 44, 3, 70, 15, 50]

    func testThreadCountsGiveTheSameStepClsPooling() throws {
        try check(projectionDim: 0, pooling: .cls, fixContext: false, questions: Self.questions, contexts: Self.contexts,
                  bitIdenticalForward: true)
    }

    func testThreadCountsGiveTheSameStepMeanPoolingProjectionHead() throws {
        try check(projectionDim: 16, pooling: .mean, fixContext: false, questions: Self.questions, contexts: Self.contexts,
                  bitIdenticalForward: true)
    }

    /// One question (fewer rows than threads: that side keeps the whole-batch path), a fixed
    /// context encoder (forward only on the replicas, no gradient).
    func testOneQuestionAndAFixedContextEncoder() throws {
        try check(projectionDim: 0, pooling: .cls, fixContext: true, questions: [17], contexts: [40, 6, 90, 12],
                  bitIdenticalForward: true)
    }

    /// poshard's filler rows (no real token) make the one-thread batch run padded.
    func testAllPaddingRows() throws {
        try check(projectionDim: 0, pooling: .cls, fixContext: false, questions: [12, 30, 5], contexts: [50, nil, 20, nil, 80, 9],
                  bitIdenticalForward: false)
    }

    /// A bad input id is reported with its row in the whole batch, as on one thread.
    func testBadInputNamesTheRowOfTheWholeBatch() throws {
        let model = try BiEncoder.load(directory: Fixtures.url("tiny-bert"))
        model.threads = 2
        var b = try batch([6, 9, 4, 8], seed: 1)
        b = try TokenBatch(inputIds: b.inputIds.enumerated().map { $0.offset == 3 * b.seqLen + 2 ? 999_999 : $0.element },
                           attentionMask: b.attentionMask, rows: b.rows, seqLen: b.seqLen)
        XCTAssertThrowsError(try model.encode(.context, b, step: 1)) { error in
            XCTAssertTrue("\(error)".contains("at row 3, position 2"), "\(error)")
        }
    }
}
