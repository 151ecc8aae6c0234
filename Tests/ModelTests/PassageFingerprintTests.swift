import Data
import Foundation
import Model
import TestSupport
import XCTest

/// One encoder directory embeds questions and passages with ONE set of parameters (not one copy
/// per side), and the fingerprint an index records is the same read from the files one tensor at
/// a time (`ModelDescription`, what a `--workers` parent computes) as from the loaded model.
final class PassageFingerprintTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-fingerprint") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func fingerprints(_ path: String, _ options: InferenceModel.Options = InferenceModel.Options()) throws -> (streamed: String, loaded: String) {
        (try ModelDescription(path: path, options: options).passageFingerprint(),
         try InferenceModel(path: path, options: options).passageFingerprint)
    }

    func testASingleEncoderDirectoryHoldsItsParametersOnce() throws {
        let model = try InferenceModel(path: Fixtures.url("tiny-bert").path)
        let q = try XCTUnwrap(model.questionModel), c = try XCTUnwrap(model.contextModel)
        XCTAssertTrue(q === c)
        XCTAssertTrue(c.sidesShareParameters)
        var one = ParameterLayout()
        _ = BertLayout(config: c.config, into: &one)
        XCTAssertEqual(c.parameters.count, one.totalCount, "one encoder's parameters, not two copies")
        // Both sides run the same weights: a token sequence embeds the same on either side.
        let batch = try TokenBatch(sequences: [[101, 2000, 2001, 102], [101, 2003, 102]])
        XCTAssertEqual(try c.embed(.question, batch), try c.embed(.context, batch))
        // A bi-encoder made for training keeps two sets.
        XCTAssertFalse(BiEncoder(config: c.config).sidesShareParameters)
    }

    func testFingerprintFromTheFilesEqualsTheLoadedModels() throws {
        let tiny = Fixtures.url("tiny-bert").path
        var options = InferenceModel.Options()
        for (maxLength, pooling) in [(nil, nil), (32, Pooling.mean)] as [(Int?, Pooling?)] {
            options.maxLength = maxLength
            options.pooling = pooling
            let (streamed, loaded) = try fingerprints(tiny, options)
            XCTAssertEqual(streamed, loaded, "tiny-bert max_length \(String(describing: maxLength)) pooling \(String(describing: pooling))")
        }
        XCTAssertNotEqual(try fingerprints(tiny).loaded, try fingerprints(tiny, options).loaded, "settings change the fingerprint")

        // A sentence-transformers directory whose Dense module is the projection head.
        let st = dir.appendingPathComponent("st")
        try FileManager.default.createDirectory(at: st.appendingPathComponent("2_Dense"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: st.appendingPathComponent("1_Pooling"), withIntermediateDirectories: true)
        for file in ["config.json", "vocab.txt", "model.safetensors"] {
            try FileManager.default.copyItem(at: Fixtures.url("tiny-bert/" + file), to: st.appendingPathComponent(file))
        }
        let hidden = try BertConfig.load(st.appendingPathComponent("config.json")).hiddenSize
        func json(_ object: Any, _ name: String) throws { try JSONSerialization.data(withJSONObject: object).write(to: st.appendingPathComponent(name)) }
        try json([["idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"],
                  ["idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"],
                  ["idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"]], "modules.json")
        try json(["pooling_mode": "mean"], "1_Pooling/config.json")
        try json(["in_features": hidden, "out_features": 8, "bias": true, "activation_function": "torch.nn.modules.linear.Identity"],
                 "2_Dense/config.json")
        let weight = (0..<(8 * hidden)).map { Float($0 % 13) / 13 - 0.5 }, bias = (0..<8).map { Float($0) / 10 }
        try weight.withUnsafeBufferPointer { w in
            try bias.withUnsafeBufferPointer { b in
                try WeightSource.writeSafetensors([("linear.weight", [8, hidden], w), ("linear.bias", [8], b)],
                                                  to: st.appendingPathComponent("2_Dense/model.safetensors"))
            }
        }
        let loaded = try InferenceModel(path: st.path)
        XCTAssertEqual(loaded.dimension, 8)
        let head = try XCTUnwrap(loaded.contextModel?.context.layout.projW)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: loaded.contextModel!.parameters.pointer + head, count: weight.count)), weight)
        let (streamed, fromModel) = try fingerprints(st.path)
        XCTAssertEqual(streamed, fromModel, "sentence-transformers directory with a Dense head")
        XCTAssertEqual(try ModelDescription(path: st.path).dimension, 8)

        // A bi-encoder directory (question_model.* and ctx_model.*, different weights): two sets kept,
        // the context encoder's hashed.
        let pair = dir.appendingPathComponent("pair")
        try FileManager.default.createDirectory(at: pair, withIntermediateDirectories: true)
        for file in ["config.json", "vocab.txt"] {
            try FileManager.default.copyItem(at: Fixtures.url("tiny-bert/" + file), to: pair.appendingPathComponent(file))
        }
        let biEncoder = BiEncoder(config: try BertConfig.load(pair.appendingPathComponent("config.json")), projectionDim: 6)
        BertInitialisation.initialise(biEncoder.layout.slots, parameters: biEncoder.parameters.pointer, std: 0.05, seed: 3)
        try biEncoder.saveWeights(to: pair.appendingPathComponent("model.safetensors"))
        let pairModel = try InferenceModel(path: pair.path)
        XCTAssertFalse(try XCTUnwrap(pairModel.contextModel).sidesShareParameters)
        XCTAssertEqual(pairModel.dimension, 6)
        let pairPrints = try fingerprints(pair.path)
        XCTAssertEqual(pairPrints.streamed, pairPrints.loaded, "bi-encoder directory")
        XCTAssertNotEqual(pairPrints.loaded, try fingerprints(tiny).loaded)
    }
}
