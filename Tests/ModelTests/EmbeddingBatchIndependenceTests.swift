import Data
import Foundation
import Model
import TestSupport
import XCTest

/// A sequence's embedding is the same bytes whether it is encoded alone or in any batch, at 1 or 2
/// threads: attention runs each (sequence, head) at the sequence's own length through the same
/// kernel calls wherever the sequence sits, and the threads only divide those calls. demo/model
/// (head size 64) with inputs up to 200 tokens (several of the fused forward's row blocks) and
/// tiny-bert (head size 16), both poolings.
final class EmbeddingBatchIndependenceTests: XCTestCase {
    func models() throws -> [(name: String, model: BiEncoder, tokenizer: BertTokenizer)] {
        let tiny = Fixtures.url("tiny-bert")
        let demo = Fixtures.packageRoot.appendingPathComponent("demo/model")
        let demoModel = BiEncoder(config: try BertConfig.load(demo.appendingPathComponent("config.json")), projectionDim: 0)
        BertInitialisation.initialise(demoModel.layout.slots, parameters: demoModel.parameters.pointer, std: 0.05, seed: 5)
        return [("tiny-bert", try BiEncoder.load(directory: tiny, projectionDim: 0),
                 try BertTokenizer(vocabFile: tiny.appendingPathComponent("vocab.txt"), doLowerCase: true)),
                ("demo/model", demoModel, try BertTokenizer(vocabFile: demo.appendingPathComponent("vocab.txt"), doLowerCase: true))]
    }

    func testAnEmbeddingIsTheSameBytesAloneOrInAnyBatchAtOneOrTwoThreads() throws {
        let blas = BLASThreads.current
        defer { BLASThreads.set(blas) }
        for (name, model, tokenizer) in try models() {
            let maxLength = min(200, model.config.maxPositions)
            var random = SplitMix64(seed: 21)
            let inputs: [EncodingInput] = (0..<24).map { i in
                let length = i % 6 == 0 ? maxLength + 10 : 1 + Int(random.next() % UInt64(maxLength))
                return .tokenIDs((0..<length).map { _ in Int32(1 + random.next() % UInt64(model.config.vocabSize - 1)) })
            }
            for pooling in [Pooling.mean, .cls] {
                model.pooling = pooling
                // Each input alone, one thread.
                model.threads = 1
                BLASThreads.set(1)
                let alone = try inputs.map { try TextEncoder(model: model, tokenizer: tokenizer, maxLength: maxLength, batchSize: 1).encode([$0])[0] }
                XCTAssertTrue(alone.allSatisfy { $0.contains { $0 != 0 } }, "\(name): embeddings should not be all zero")
                for threads in [1, 2] {
                    for batchSize in [1, 5, 24] {
                        var order = Array(inputs.indices)
                        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(random.next() % UInt64(i + 1))) }
                        model.threads = threads
                        BLASThreads.set(threads)
                        let encoder = TextEncoder(model: model, tokenizer: tokenizer, maxLength: maxLength, batchSize: batchSize)
                        let got = try encoder.encode(order.map { inputs[$0] })
                        for (k, position) in order.enumerated() {
                            XCTAssertEqual(got[k], alone[position],
                                           "\(name) pooling \(pooling) threads \(threads) batch \(batchSize): input \(position) changed bytes")
                        }
                    }
                }
            }
            model.threads = 2
        }
    }
}
