import Data
import Foundation
import Model
import TestSupport
import XCTest

/// Reading a sentence-transformers directory: what srdpr can run is taken as it is, the rest is an
/// error naming the file (never a silently different model).
final class SentenceTransformersLayoutTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-st-layout") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func write(_ object: Any, _ relative: String) throws {
        let url = dir.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: object).write(to: url)
    }

    func modules(_ kinds: [(String, String)]) throws {
        try write(kinds.enumerated().map { i, k in ["idx": i, "name": "\(i)", "path": k.1, "type": "sentence_transformers.models.\(k.0)"] },
                  "modules.json")
    }

    func testPlainDirectoryHasNoLayout() throws {
        XCTAssertNil(try SentenceTransformersLayout.read(directory: Fixtures.url("tiny-bert")))
    }

    func testPoolingModesOldAndNewSpelling() throws {
        try modules([("Transformer", ""), ("Pooling", "1_Pooling"), ("Normalize", "2_Normalize")])
        try write(["max_seq_length": 77, "do_lower_case": false], "sentence_bert_config.json")
        try write(["word_embedding_dimension": 64, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true], "1_Pooling/config.json")
        var layout = try XCTUnwrap(SentenceTransformersLayout.read(directory: dir))
        XCTAssertEqual(layout.pooling, .mean)
        XCTAssertEqual(layout.maxSeqLength, 77)
        XCTAssertTrue(layout.normalize)
        try write(["embedding_dimension": 64, "pooling_mode": "cls"], "1_Pooling/config.json")
        layout = try XCTUnwrap(SentenceTransformersLayout.read(directory: dir))
        XCTAssertEqual(layout.pooling, .cls)
    }

    func testWhatSrdprCannotRunIsAnErrorNamingTheFile() throws {
        try modules([("Transformer", ""), ("Pooling", "1_Pooling")])
        try write(["pooling_mode": "max"], "1_Pooling/config.json")
        XCTAssertThrowsError(try SentenceTransformersLayout.read(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains("1_Pooling/config.json") && "\(error)".contains("max"), "\(error)")
        }
        try write(["pooling_mode": "mean"], "1_Pooling/config.json")
        try modules([("Transformer", ""), ("Pooling", "1_Pooling"), ("Dense", "2_Dense")])
        try write(["in_features": 64, "out_features": 16, "bias": true, "activation_function": "torch.nn.modules.activation.Tanh"],
                  "2_Dense/config.json")
        XCTAssertThrowsError(try SentenceTransformersLayout.read(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains("2_Dense/config.json") && "\(error)".contains("Tanh"), "\(error)")
        }
        try modules([("Transformer", ""), ("Pooling", "1_Pooling"), ("LayerNorm", "2_LayerNorm")])
        XCTAssertThrowsError(try SentenceTransformersLayout.read(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains("modules.json") && "\(error)".contains("LayerNorm"), "\(error)")
        }
    }

    func testBadSettingsFileIsNamed() throws {
        try "{\"sim_func\": \"cosine\"}".write(to: dir.appendingPathComponent(EncoderSettings.fileName), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try EncoderSettings.read(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains(EncoderSettings.fileName), "\(error)")
        }
    }
}
