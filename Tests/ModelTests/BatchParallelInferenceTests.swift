import Data
import Foundation
import Model
import TestSupport
import XCTest

/// Inference with several threads runs whole batches side by side, one thread each
/// (`BatchParallelInference`): the embeddings must be the bytes of a one-thread run whatever the
/// thread count, come back in input order, stop on the first bad batch with its error, and leave
/// the thread settings of the process as they were.
final class BatchParallelInferenceTests: XCTestCase {
    func model(projectionDim: Int) throws -> (BiEncoder, BertTokenizer) {
        let tiny = Fixtures.url("tiny-bert")
        return (try BiEncoder.load(directory: tiny, projectionDim: projectionDim),
                try BertTokenizer(vocabFile: tiny.appendingPathComponent("vocab.txt"), doLowerCase: true))
    }

    /// Questions and passages of 1 to 40 words, so the batches have very different lengths.
    func inputs(count: Int, seed: UInt64) -> [EncodingInput] {
        var random = SplitMix64(seed: seed)
        let words = ["dense", "passage", "retrieval", "question", "the", "a", "encoder", "vector", "search", "answer"]
        func sentence(_ n: Int) -> String { (0..<n).map { _ in words[Int(random.next() % UInt64(words.count))] }.joined(separator: " ") }
        return (0..<count).map { i in
            let length = 1 + Int(random.next() % 40)
            return i % 2 == 0 ? .question(sentence(length)) : .passage(title: sentence(2), text: sentence(length))
        }
    }

    func testEveryThreadCountGivesTheOneThreadBytes() throws {
        for projectionDim in [0, 16] {
            let (model, tokenizer) = try model(projectionDim: projectionDim)
            for pooling in [Pooling.cls, .mean] {
                model.pooling = pooling
                let all = inputs(count: 61, seed: UInt64(9 + projectionDim))
                let encoder = TextEncoder(model: model, tokenizer: tokenizer, maxLength: 48, batchSize: 4)
                // The one-thread reference: what `--threads 1` sets (OpenBLAS's pool is process-wide).
                let blas = BLASThreads.current
                model.threads = 1
                BLASThreads.set(1)
                let one = try encoder.encode(all)
                BLASThreads.set(blas)
                for threads in [2, 3, 8] {
                    model.threads = threads
                    var reported: [Int] = []
                    let many = try encoder.encode(all, progress: { reported.append($0) })
                    XCTAssertEqual(many, one, "threads \(threads), pooling \(pooling), projection_dim \(projectionDim): not the one-thread bytes")
                    XCTAssertEqual(reported.last, all.count, "progress reaches every input")
                    XCTAssertEqual(reported, reported.sorted(), "progress only grows")
                }
                XCTAssertTrue(one.allSatisfy { $0.count == model.question.outputDim && $0.contains { $0 != 0 } })
            }
            model.threads = 2
        }
    }

    func testABadBatchThrowsItsErrorAndRestoresTheThreadSettings() throws {
        let (model, tokenizer) = try model(projectionDim: 0)
        model.threads = 2
        let blasBefore = BLASThreads.current
        var all = inputs(count: 30, seed: 4).filter { if case .passage = $0 { return true } else { return false } }
        all.insert(.tokenIDs([101, Int32(model.config.vocabSize + 5), 102]), at: 7)
        let encoder = TextEncoder(model: model, tokenizer: tokenizer, maxLength: 48, batchSize: 2)
        XCTAssertThrowsError(try encoder.encode(all)) { error in
            XCTAssertTrue("\(error)".contains("outside the vocabulary"), "\(error)")
        }
        XCTAssertEqual(BLASThreads.current, blasBefore, "the BLAS thread count is set back")
        // Still usable, same numbers as before the failure.
        all.remove(at: 7)
        let after = try encoder.encode(all)
        model.threads = 1
        BLASThreads.set(1)
        XCTAssertEqual(after, try encoder.encode(all))
        BLASThreads.set(blasBefore)
        model.threads = 2
    }
}
