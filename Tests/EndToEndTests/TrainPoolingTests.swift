import Coordinator
import Data
import Foundation
import JobContracts
import Model
import TestSupport
import XCTest

/// `pooling` and `sim_scale` through `srdpr train` and back out of the checkpoint: the default
/// read from a sentence-transformers directory (and said so), stored with the run's settings,
/// used by `encode` on the checkpoint, and a resume that would change it refused.
final class TrainPoolingTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-train-pooling") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// tiny-bert laid out as a sentence-transformers model whose Pooling module says mean.
    func sentenceTransformersTinyBert() throws -> URL {
        let model = dir.appendingPathComponent("st-tiny-bert")
        try FileManager.default.createDirectory(at: model.appendingPathComponent("1_Pooling"), withIntermediateDirectories: true)
        for name in ["config.json", "vocab.txt", "tokenizer_config.json", "model.safetensors"] {
            try FileManager.default.copyItem(at: Fixtures.url("tiny-bert/\(name)"), to: model.appendingPathComponent(name))
        }
        let pooling = #"{"word_embedding_dimension": 64, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false, "pooling_mode_mean_sqrt_len_tokens": false}"#
        try Data(pooling.utf8).write(to: model.appendingPathComponent("1_Pooling/config.json"))
        let modules = #"[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}, {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]"#
        try Data(modules.utf8).write(to: model.appendingPathComponent("modules.json"))
        return model
    }

    func encode(_ model: URL, _ extra: [String]) throws -> String {
        let input = dir.appendingPathComponent("in.jsonl"), output = dir.appendingPathComponent("out-\(UUID().uuidString).jsonl")
        try #"{"question": "how do I sort a hash by value?"}"#.appending("\n")
            .appending(#"{"title": "perlfaq4", "text": "Create an array of keys and sort it with a block."}"#).appending("\n")
            .write(to: input, atomically: true, encoding: .utf8)
        let r = try Command.srdpr(["encode", "--model", model.path, "--input", input.path, "--output", output.path] + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
        return try String(contentsOf: output, encoding: .utf8)
    }

    func testPoolingFromTheModelIsStoredAndUsedByEncode() throws {
        let model = try sentenceTransformersTinyBert()
        let ds = try TrainFixture.dataset(dir, samples: 20)
        let out = dir.appendingPathComponent("ckpt"), logs = dir.appendingPathComponent("logs")
        let common = ["train_mode=pos", "pretrained_model_cfg=\(model.path)", "bytedataset.pos=\(ds)", "max_length=32",
                      "pipeline.pos.forward_batch_size=4", "pipeline.pos.contrastive_size=3", "sim_func=cosine", "sim_scale=20",
                      "learning_rate=1e-3", "warmup_steps=0", "save_checkpoint_freq=1", "output_dir=\(out.path)", "log_dir=\(logs.path)"]
        let r = try TrainFixture.train(common + ["total_updates=2"])
        XCTAssertTrue(r.stderr.contains("pooling=mean") && r.stderr.contains("1_Pooling/config.json"), "the log says where pooling came from:\n\(r.stderr)")
        let checkpoint = out.appendingPathComponent("dpr_biencoder.2")
        let loaded = try TrainingCheckpoint.loadModel(checkpoint)
        XCTAssertEqual(loaded.config.pooling, .mean)
        XCTAssertEqual(loaded.config.simScale, 20)
        XCTAssertEqual(loaded.config.simFunc, .cosine)
        XCTAssertEqual(loaded.model.pooling, .mean)
        XCTAssertTrue(try TrainFixture.metrics(logs).allSatisfy { ($0["loss"] as? Double)?.isFinite ?? true })

        // encode on the checkpoint pools as it was trained; --pooling overrides it.
        let byDefault = try encode(checkpoint, [])
        XCTAssertEqual(byDefault, try encode(checkpoint, ["--pooling", "mean"]))
        XCTAssertNotEqual(byDefault, try encode(checkpoint, ["--pooling", "cls"]))

        // Resuming with another pooling would train a different model: refused, naming both.
        let resumed = try TrainFixture.train(common + ["total_updates=3", "pooling=cls", "model_file=\(checkpoint.path)"], status: 1)
        XCTAssertTrue(resumed.stderr.contains("pooling=mean") && resumed.stderr.contains("pooling=cls"), resumed.stderr)
        try TrainFixture.train(common + ["total_updates=3", "model_file=\(checkpoint.path)"])
    }

    func testExplicitPoolingWinsAndUnsupportedPoolingIsAClearError() throws {
        let model = try sentenceTransformersTinyBert()
        let ds = try TrainFixture.dataset(dir, samples: 20)
        let common = ["train_mode=pos", "pretrained_model_cfg=\(model.path)", "bytedataset.pos=\(ds)", "max_length=32",
                      "pipeline.pos.forward_batch_size=4", "pipeline.pos.contrastive_size=3", "total_updates=1",
                      "output_dir=\(dir.appendingPathComponent("ckpt").path)", "log_dir=\(dir.appendingPathComponent("logs").path)"]
        let r = try TrainFixture.train(common + ["pooling=cls"])
        XCTAssertFalse(r.stderr.contains("1_Pooling"), r.stderr)
        XCTAssertEqual(try TrainingCheckpoint.loadModel(dir.appendingPathComponent("ckpt/dpr_biencoder.1")).config.pooling, .cls)

        let maxPooling = #"{"word_embedding_dimension": 64, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": false, "pooling_mode_max_tokens": true}"#
        try Data(maxPooling.utf8).write(to: model.appendingPathComponent("1_Pooling/config.json"))
        let refused = try TrainFixture.train(common, status: 1)
        XCTAssertTrue(refused.stderr.contains("max_tokens") && refused.stderr.contains("pooling=cls"), refused.stderr)
        XCTAssertFalse(refused.stderr.contains("Fatal error"), refused.stderr)
    }
}
