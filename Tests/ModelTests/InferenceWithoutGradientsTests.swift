import Foundation
import Model
import TestSupport
import XCTest

/// A model loaded for inference (`encode`, `index`, `search`, `evaluate`, `export`) holds its
/// parameters only: no gradient buffer (for MiniLM's two sides, 2 x 90 MB less), and a backward
/// on it is an error, not a write into missing memory.
final class InferenceWithoutGradientsTests: XCTestCase {
    func testInferenceModelHasNoGradientBuffer() throws {
        let model = try InferenceModel(path: Fixtures.url("tiny-bert").path)
        let biEncoder = try XCTUnwrap(model.contextModel)
        XCTAssertFalse(biEncoder.hasGradients)
        XCTAssertEqual(biEncoder.gradients.count, 0)
        XCTAssertGreaterThan(biEncoder.parameters.count, 0)
        XCTAssertFalse(biEncoder.isTrainable(.question) || biEncoder.isTrainable(.context))
        let batch = try TokenBatch(sequences: [[101, 2000, 102], [101, 102]])
        // encode with train: false keeps nothing and matches embed.
        let embedded = try biEncoder.embed(.context, batch)
        XCTAssertEqual(try biEncoder.encode(.context, batch, train: false), embedded)
        XCTAssertThrowsError(try biEncoder.backward(.context, batch, dEmbeddings: [Float](repeating: 0, count: embedded.count))) { error in
            XCTAssertTrue("\(error)".contains("loaded for inference"), "\(error)")
        }
        XCTAssertThrowsError(try biEncoder.context.backward([Float](repeating: 0, count: embedded.count))) { error in
            XCTAssertTrue("\(error)".contains("loaded for inference"), "\(error)")
        }
        // A model made for training keeps its gradient buffer.
        let trainable = BiEncoder(config: biEncoder.config)
        XCTAssertTrue(trainable.hasGradients)
        XCTAssertEqual(trainable.gradients.count, trainable.parameters.count)
    }
}
