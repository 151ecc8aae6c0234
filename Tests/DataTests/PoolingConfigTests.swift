import Data
import Foundation
import TestSupport
import XCTest

/// `pooling` and `sim_scale`: defaults, parsing, errors, the default read from a
/// sentence-transformers model directory, and checkpoints written before they existed.
final class PoolingConfigTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws { tmp = try Fixtures.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    /// A directory with `1_Pooling/config.json` holding `flags` (and modules.json naming it when `listed`).
    func sentenceTransformersDirectory(_ flags: [String: Bool], modulePath: String = "1_Pooling", listed: Bool = true) throws -> URL {
        let dir = tmp.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent(modulePath), withIntermediateDirectories: true)
        var json: [String: Any] = ["word_embedding_dimension": 64]
        for mode in ["cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens"] { json["pooling_mode_" + mode] = flags[mode] ?? false }
        try JSONSerialization.data(withJSONObject: json).write(to: dir.appendingPathComponent(modulePath + "/config.json"))
        if listed {
            let modules: [[String: Any]] = [["idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"],
                                            ["idx": 1, "name": "1", "path": modulePath, "type": "sentence_transformers.models.Pooling"]]
            try JSONSerialization.data(withJSONObject: modules).write(to: dir.appendingPathComponent("modules.json"))
        }
        return dir
    }

    func testDefaultsAreTheOriginal() throws {
        let (c, warnings) = try TrainingConfig.parse([])
        XCTAssertEqual(c.pooling, .cls)
        XCTAssertEqual(c.simScale, 1)
        XCTAssertEqual(warnings, [])
        XCTAssertTrue(TrainingConfig.parameterKeys.contains("pooling"))
        XCTAssertTrue(TrainingConfig.parameterKeys.contains("sim_scale"))
        let shown = Dictionary(uniqueKeysWithValues: c.keyValues().map { ($0.key, $0.value) })
        XCTAssertEqual(shown["pooling"], "cls")
        XCTAssertEqual(shown["sim_scale"], "1.0")
    }

    func testParsesAndRejects() throws {
        let (c, _) = try TrainingConfig.parse(["pooling=mean", "sim_scale=20"])
        XCTAssertEqual(c.pooling, .mean)
        XCTAssertEqual(c.simScale, 20)
        XCTAssertThrowsError(try TrainingConfig.parse(["pooling=max"])) { error in
            XCTAssertEqual(error as? ConfigError, .invalidValue(key: "pooling", value: "max", expected: "cls or mean"))
        }
        for bad in ["0", "-1", "inf", "x"] {
            XCTAssertThrowsError(try TrainingConfig.parse(["sim_scale=\(bad)"]), "sim_scale=\(bad)") { error in
                XCTAssertTrue("\(error)".contains("sim_scale"), "\(error)")
            }
        }
    }

    func testPoolingComesFromASentenceTransformersModelWhenNotGiven() throws {
        let mean = try sentenceTransformersDirectory(["mean_tokens": true])
        let (c, warnings) = try TrainingConfig.parse(["pretrained_model_cfg=\(mean.path)"])
        XCTAssertEqual(c.pooling, .mean)
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings[0].contains("pooling=mean") && warnings[0].contains("1_Pooling/config.json"), warnings[0])
        // Given explicitly, it wins and nothing is said.
        let (explicit, quiet) = try TrainingConfig.parse(["pretrained_model_cfg=\(mean.path)", "pooling=cls"])
        XCTAssertEqual(explicit.pooling, .cls)
        XCTAssertEqual(quiet, [])
        // modules.json names the module's directory; without modules.json 1_Pooling is looked at.
        let elsewhere = try sentenceTransformersDirectory(["cls_token": true], modulePath: "pool")
        XCTAssertEqual(try TrainingConfig.parse(["pretrained_model_cfg=\(elsewhere.path)"]).config.pooling, .cls)
        let unlisted = try sentenceTransformersDirectory(["mean_tokens": true], listed: false)
        XCTAssertEqual(try TrainingConfig.parse(["pretrained_model_cfg=\(unlisted.path)"]).config.pooling, .mean)
        // A plain Hugging Face directory (tiny-bert) declares nothing: the original's cls.
        let (plain, none) = try TrainingConfig.parse(["pretrained_model_cfg=\(Fixtures.url("tiny-bert").path)"])
        XCTAssertEqual(plain.pooling, .cls)
        XCTAssertEqual(none, [])
    }

    func testUnsupportedSentenceTransformersPoolingIsAClearError() throws {
        let max = try sentenceTransformersDirectory(["max_tokens": true])
        XCTAssertThrowsError(try TrainingConfig.parse(["pretrained_model_cfg=\(max.path)"])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("pooling") && text.contains("max_tokens") && text.contains("1_Pooling/config.json")
                          && text.contains("pooling=mean"), text)
        }
        // Setting pooling explicitly does not read the file.
        XCTAssertEqual(try TrainingConfig.parse(["pretrained_model_cfg=\(max.path)", "pooling=mean"]).config.pooling, .mean)
        let both = try sentenceTransformersDirectory(["cls_token": true, "mean_tokens": true])
        XCTAssertThrowsError(try SentenceTransformersPooling.pooling(of: both)) { error in
            XCTAssertTrue("\(error)".contains("cls_token + mean_tokens"), "\(error)")
        }
        let broken = tmp.appendingPathComponent("broken")
        try FileManager.default.createDirectory(at: broken.appendingPathComponent("1_Pooling"), withIntermediateDirectories: true)
        try Data("{not json".utf8).write(to: broken.appendingPathComponent("1_Pooling/config.json"))
        XCTAssertThrowsError(try SentenceTransformersPooling.pooling(of: broken)) { error in
            XCTAssertTrue("\(error)".contains("not a readable JSON object"), "\(error)")
        }
    }

    func testRoundTripsThroughJSONAndOldCheckpointsDecode() throws {
        var c = TrainingConfig()
        c.pooling = .mean
        c.simScale = 20
        let data = try JSONEncoder().encode(c)
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        XCTAssertEqual(json["pooling"] as? String, "mean")
        XCTAssertEqual(json["sim_scale"] as? Double, 20)
        XCTAssertEqual(try JSONDecoder().decode(TrainingConfig.self, from: data), c)
        // A checkpoint written before the two parameters existed: the original's behaviour.
        var old = json
        old.removeValue(forKey: "pooling")
        old.removeValue(forKey: "sim_scale")
        let decoded = try JSONDecoder().decode(TrainingConfig.self, from: JSONSerialization.data(withJSONObject: old))
        XCTAssertEqual(decoded.pooling, .cls)
        XCTAssertEqual(decoded.simScale, 1)
    }
}
