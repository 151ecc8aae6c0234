import Data
import Foundation
import Model
import TestSupport
import XCTest

/// Inference (`TextEncoder`: forward only, length-sorted batches) against the training engine's
/// forward (`BiEncoder.encode`, activations kept, one batch in input order): the embeddings, and
/// their unit-length (cosine) forms, are bit-identical for both poolings, with and without a
/// projection head, whatever the order of the inputs, the batch size and the thread count. They
/// differed by a few ulps (up to 1.07e-6 on demo/model) before each sequence was packed at a
/// multiple of sgemm's row period and Linear split its rows on such multiples (SgemmRowTiling).
final class ForwardOnlyParityTests: XCTestCase {
    /// tiny-bert (PyTorch fixture weights) and demo/model (its config, seeded random weights).
    func models(projectionDim: Int) throws -> [(name: String, model: BiEncoder, tokenizer: BertTokenizer)] {
        let tiny = Fixtures.url("tiny-bert")
        let tinyModel = try BiEncoder.load(directory: tiny, projectionDim: projectionDim)
        let demo = Fixtures.packageRoot.appendingPathComponent("demo/model")
        let demoModel = BiEncoder(config: try BertConfig.load(demo.appendingPathComponent("config.json")), projectionDim: projectionDim)
        BertInitialisation.initialise(demoModel.layout.slots, parameters: demoModel.parameters.pointer, std: 0.05, seed: 7)
        if projectionDim > 0 { demoModel.initialiseProjectionHeads() }
        return [("tiny-bert", tinyModel, try BertTokenizer(vocabFile: tiny.appendingPathComponent("vocab.txt"), doLowerCase: true)),
                ("demo/model", demoModel, try BertTokenizer(vocabFile: demo.appendingPathComponent("vocab.txt"), doLowerCase: true))]
    }

    /// Questions, titled passages and raw token ids of very different lengths (1 to past max length).
    func inputs(vocabSize: Int, count: Int, seed: UInt64) -> [EncodingInput] {
        var random = SplitMix64(seed: seed)
        let words = ["dense", "passage", "retrieval", "question", "the", "a", "encoder", "vector", "search", "of", "answer", "model"]
        func sentence(_ n: Int) -> String { (0..<n).map { _ in words[Int(random.next() % UInt64(words.count))] }.joined(separator: " ") }
        return (0..<count).map { i in
            let length = 1 + Int(random.next() % (i % 5 == 0 ? 90 : 20))
            switch i % 3 {
            case 0: return .question(sentence(length))
            case 1: return .passage(title: sentence(1 + length % 4), text: sentence(length))
            default: return .tokenIDs((0..<length).map { _ in Int32(1 + random.next() % UInt64(vocabSize - 1)) })
            }
        }
    }

    func testForwardOnlyMatchesTrainingForwardWhateverTheBatches() throws {
        print("sgemm row period on this machine: \(SgemmRowTiling.period) (OpenBLAS \(BLASKernels.coreName) kernels)")
        for projectionDim in [0, 16] {
            for (name, model, tokenizer) in try models(projectionDim: projectionDim) {
                for pooling in [Pooling.cls, .mean] {
                    model.pooling = pooling
                    let all = inputs(vocabSize: model.config.vocabSize, count: 60, seed: 11)
                    // Reference: the training engine, each side in one batch of the inputs' order, 2 threads.
                    BLASThreads.set(2)
                    model.threads = 2
                    let reference = TextEncoder(model: model, tokenizer: tokenizer, maxLength: 64, batchSize: 1)
                    var expected = [[Float]](repeating: [], count: all.count)
                    for side in [BiEncoder.Side.question, .context] {
                        let positions = all.indices.filter { (all[$0].isQuestion) == (side == .question) }
                        let batch = try TokenBatch(sequences: positions.map { reference.tokenIDs(all[$0]) }, padId: tokenizer.padID)
                        let flat = try model.encode(side, batch, train: false)
                        let d = model.encoder(side).outputDim
                        for (row, position) in positions.enumerated() { expected[position] = Array(flat[(row * d)..<((row + 1) * d)]) }
                    }
                    let lengths = all.map { reference.tokenIDs($0).count }
                    XCTAssertTrue(lengths.contains(where: { $0 <= 3 }) && lengths.contains(64), "lengths from a few tokens to max length")
                    var random = SplitMix64(seed: 3)
                    // (sequences, tokens per batch at most, threads): the token cap cuts batches of long inputs.
                    for (batchSize, batchTokens, threads) in [(1, 1024, 1), (4, 1024, 2), (7, 1024, 1), (7, 1024, 2), (64, 1024, 2),
                                                              (64, 1024, 1), (64, 100, 2), (64, Int.max, 1)] {
                        // Shuffle (Fisher-Yates, seeded), encode, and compare each input with its reference.
                        var order = Array(all.indices)
                        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(random.next() % UInt64(i + 1))) }
                        BLASThreads.set(threads)
                        model.threads = threads
                        let encoder = TextEncoder(model: model, tokenizer: tokenizer, maxLength: 64, batchSize: batchSize,
                                                  batchTokens: batchTokens)
                        let got = try encoder.encode(order.map { all[$0] })
                        var worst: Float = 0, worstUnit: Float = 0, identical = 0
                        for (k, position) in order.enumerated() {
                            XCTAssertEqual(got[k].count, expected[position].count)
                            if got[k] == expected[position] { identical += 1 }
                            worst = max(worst, zip(got[k], expected[position]).map { abs($0 - $1) }.max() ?? 0)
                            let (a, b) = (InferenceModel.unitLength(got[k]), InferenceModel.unitLength(expected[position]))
                            worstUnit = max(worstUnit, zip(a, b).map { abs($0 - $1) }.max() ?? 0)
                        }
                        let label = "\(name) pooling \(pooling) projection_dim \(projectionDim) batch \(batchSize) "
                            + "(at most \(batchTokens) tokens) threads \(threads)"
                        print("forward-only parity: \(label): \(identical) of \(all.count) bit-identical, max |difference| \(worst), "
                              + "unit length \(worstUnit)")
                        XCTAssertLessThanOrEqual(worst, 1e-6, label)
                        XCTAssertLessThanOrEqual(worstUnit, 1e-6, label)
                        XCTAssertEqual(identical, all.count, "bit-identical: \(label)")
                        XCTAssertGreaterThan(expected.map { $0.map(abs).max() ?? 0 }.max() ?? 0, 1e-3, "embeddings should not be all zero")
                    }
                }
            }
        }
        BLASThreads.set(2)
    }

    /// Why batches cannot move a row's bits: the Linear kernel (srdpr_gemm_rows) computes each
    /// output as one chain over its own row, so a row gets the same bits at any place in any call,
    /// on 1 or 2 threads (OpenBLAS's sgemm, which ran the Linear layers before, changed them with the
    /// row's place modulo its 12-row tile: SgemmRowTiling).
    func testALinearRowsBitsDoNotDependOnItsPlace() {
        let inDim = 384, outDim = 96
        var random = SplitMix64(seed: 9)
        let weight = (0..<(outDim * inDim)).map { _ in Float(Int(random.next() % 2001) - 1000) / 9973 }
        let bias = (0..<outDim).map { _ in Float(Int(random.next() % 2001) - 1000) / 1009 }
        let rows = (0..<(120 * inDim)).map { _ in Float(Int(random.next() % 2001) - 1000) / 997 }
        let filler = (0..<(13 * inDim)).map { _ in Float(Int(random.next() % 2001) - 1000) / 991 }
        func project(_ input: [Float]) -> [Float] {
            ProjectionHead.forward(input: input, weight: weight, bias: bias, rows: input.count / inDim, inDim: inDim, outDim: outDim)
        }
        let alone = project(rows)
        for threads in [1, 2] {
            BLASThreads.set(threads)
            for shift in [1, 5, 12, 13] {
                let shifted = Array(project(Array(filler.prefix(shift * inDim)) + rows).dropFirst(shift * outDim))
                XCTAssertEqual(shifted.map(\.bitPattern), alone.map(\.bitPattern), "threads \(threads), rows shifted by \(shift)")
            }
            for r in [0, 7, 119] {
                let one = project(Array(rows[(r * inDim)..<((r + 1) * inDim)]))
                XCTAssertEqual(one.map(\.bitPattern), alone[(r * outDim)..<((r + 1) * outDim)].map(\.bitPattern), "row \(r) alone")
            }
        }
        BLASThreads.set(2)
    }

    func testLengthSortedBatchesCoverEveryInputOnceAndCutPadding() {
        var random = SplitMix64(seed: 5)
        let lengths = (0..<1000).map { _ in 5 + Int(random.next() % 250) }
        let plan = LengthSortedBatches(lengths: lengths, batchSize: 32)
        XCTAssertEqual(plan.batches.flatMap { $0 }.sorted(), Array(lengths.indices))
        XCTAssertTrue(plan.batches.dropLast().allSatisfy { $0.count == 32 })
        XCTAssertEqual(plan.batches.last?.count, 1000 % 32)
        for (earlier, later) in zip(plan.batches, plan.batches.dropFirst()) {
            XCTAssertGreaterThanOrEqual(lengths[earlier.last!], lengths[later.first!], "longest first")
        }
        let inOrder = stride(from: 0, to: 1000, by: 32).map { Array($0..<min($0 + 32, 1000)) }
        let sorted = LengthSortedBatches.paddingRatio(lengths: lengths, batches: plan.batches)
        XCTAssertLessThan(sorted, 1.05, "sorted batches pad little")
        XCTAssertGreaterThan(LengthSortedBatches.paddingRatio(lengths: lengths, batches: inOrder), 1.5)
        XCTAssertTrue(LengthSortedBatches(lengths: [], batchSize: 8).batches.isEmpty)
    }

    /// A token cap: at most `maxTokens` tokens (rows × the batch's longest) and `batchSize` rows per
    /// batch; a sequence longer than the cap still gets a batch (of its own); order as without a cap.
    func testLengthSortedBatchesStopAtTheTokenCap() {
        var random = SplitMix64(seed: 6)
        let lengths = (0..<1000).map { _ in 1 + Int(random.next() % 256) } + [1500, 1500, 256]
        let uncapped = LengthSortedBatches(lengths: lengths, batchSize: 32)
        let plan = LengthSortedBatches(lengths: lengths, batchSize: 32, maxTokens: 1024)
        XCTAssertEqual(plan.batches.flatMap { $0 }, uncapped.batches.flatMap { $0 }, "the same order, cut at other places")
        XCTAssertEqual(Array(plan.batches.prefix(2)), [[1000], [1001]], "longer than the cap: one per batch")
        for batch in plan.batches.dropFirst(2) {
            let longest = batch.map { lengths[$0] }.max()!
            XCTAssertLessThanOrEqual(batch.count * longest, 1024)
            XCTAssertLessThanOrEqual(batch.count, 32)
        }
        // A batch is full unless it is the last: the cap or 32 rows stopped it.
        for (batch, next) in zip(plan.batches.dropFirst(2), plan.batches.dropFirst(3)) {
            XCTAssertTrue(batch.count == 32 || (batch.count + 1) * lengths[batch[0]] > 1024, "batch of \(batch.count) stopped early")
            XCTAssertGreaterThanOrEqual(lengths[batch.last!], lengths[next[0]])
        }
        XCTAssertEqual(plan.batches.first(where: { lengths[$0[0]] == 256 })?.count, 4, "4 of 256 tokens")
        let short = plan.batches.dropLast().filter { lengths[$0[0]] <= 32 }
        XCTAssertFalse(short.isEmpty)
        XCTAssertTrue(short.allSatisfy { $0.count == 32 }, "32 tokens or fewer: 32 per batch")
    }

    /// Buffers allocated for one thread and reused by a pass with more: each thread needs its own
    /// head scratch, so the encoder must allocate again (it wrote past the buffer before).
    func testMoreThreadsAfterTheBuffersExistGetsNewBuffersAndTheSameNumbers() throws {
        let (_, model, tokenizer) = try models(projectionDim: 0)[0]
        let texts = inputs(vocabSize: model.config.vocabSize, count: 12, seed: 5).filter { !$0.isQuestion }
        let encoder = TextEncoder(model: model, tokenizer: tokenizer, maxLength: 32, batchSize: 12)
        let batch = try TokenBatch(sequences: texts.map { encoder.tokenIDs($0) }, padId: tokenizer.padID)
        model.threads = 1
        let one = try model.embed(.context, batch)
        model.threads = 4
        let four = try model.embed(.context, batch)
        XCTAssertEqual(one.count, four.count)
        XCTAssertLessThanOrEqual(zip(one, four).map { abs($0 - $1) }.max() ?? 0, 1e-6)
        model.threads = 2
    }
}

private extension EncodingInput {
    var isQuestion: Bool { if case .question = self { return true } else { return false } }
}
