import Coordinator
import JobContracts
import Data
import Foundation
import Model
import TestSupport
import XCTest

/// Must show 4: `srdpr export` writes both encoders as Hugging Face directories that our loader
/// and transformers' BertModel load, giving the embeddings of the checkpoint.
final class TrainExportTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-export") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    let questions = ["How do I sort a hash by value?", "What is the Debian FAQ?", "Why is my regex slow?"]
    let passages = [("perlfaq4", "Use sort with a custom comparison of the values."), ("debian", "This FAQ answers questions about Debian.")]

    func testExportLoadsAndGivesTheCheckpointEmbeddings() throws {
        let ds = try TrainFixture.dataset(dir, samples: 30)
        let out = dir.appendingPathComponent("ckpt")
        try TrainFixture.train(["train_mode=pos", "pretrained_model_cfg=\(TrainFixture.tinyBert)", "bytedataset.pos=\(ds)",
                                "max_length=32", "pipeline.pos.forward_batch_size=4", "pipeline.pos.contrastive_size=4",
                                "learning_rate=1e-3", "warmup_steps=0", "total_updates=3",
                                "output_dir=\(out.path)", "log_dir=\(dir.appendingPathComponent("logs").path)"])
        let checkpoint = out.appendingPathComponent("dpr_biencoder.3")
        let exported = dir.appendingPathComponent("export")
        let r = try Command.srdpr(["export", "--checkpoint", checkpoint.path, "--output", exported.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        for side in ["question_encoder", "ctx_encoder"] {
            for file in ["model.safetensors", "config.json", "vocab.txt", "tokenizer_config.json"] {
                XCTAssertTrue(FileManager.default.fileExists(atPath: exported.appendingPathComponent("\(side)/\(file)").path), "\(side)/\(file)")
            }
        }

        // The checkpoint's own embeddings (dropout off).
        let trained = try TrainingCheckpoint.loadModel(checkpoint).model
        let tokenizer = try BertTokenizer(vocabFile: Fixtures.url("tiny-bert/vocab.txt"), doLowerCase: true)
        let inputs = questions.map { EncodingInput.question($0) } + passages.map { EncodingInput.passage(title: $0.0, text: $0.1) }
        let expected = try TextEncoder(model: trained, tokenizer: tokenizer, maxLength: 32).encode(inputs)
        // The exported directories through our loader: question encoder for questions, ctx encoder for passages.
        let q = try BiEncoder.load(directory: exported.appendingPathComponent("question_encoder"))
        let c = try BiEncoder.load(directory: exported.appendingPathComponent("ctx_encoder"))
        let fromQ = try TextEncoder(model: q, tokenizer: tokenizer, maxLength: 32).encode(inputs)
        let fromC = try TextEncoder(model: c, tokenizer: tokenizer, maxLength: 32).encode(inputs)
        for i in 0..<questions.count { XCTAssertEqual(fromQ[i], expected[i], "question \(i)") }
        for i in questions.count..<inputs.count {
            // `.passage` inputs go through the context encoder of a BiEncoder, which `load` filled from ctx_encoder.
            XCTAssertEqual(fromC[i], expected[i], "passage \(i)")
        }
        // Training changed the encoders apart (otherwise the test could not tell them apart).
        XCTAssertNotEqual(q.parameters.toArray()[q.question.layout.range], c.parameters.toArray()[c.question.layout.range])

        // transformers, when importable.
        let python = ProcessInfo.processInfo.environment["SRDPR_PYTHON"] ?? "python3"
        let script = """
            import json, sys
            import torch
            from transformers import BertModel, BertTokenizer
            root, questions, passages = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
            out = []
            for side, items in (("question_encoder", questions), ("ctx_encoder", passages)):
                model = BertModel.from_pretrained(root + "/" + side, add_pooling_layer=False).eval()
                tok = BertTokenizer.from_pretrained(root + "/" + side)
                for item in items:
                    enc = tok(item, max_length=32, truncation=True, return_tensors="pt") if isinstance(item, str) \
                        else tok(item[0], item[1], max_length=32, truncation=True, return_tensors="pt")
                    with torch.no_grad():
                        h = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
                    out.append(h[0, 0].tolist())
            print(json.dumps(out))
            """
        let questionsJSON = String(decoding: try JSONSerialization.data(withJSONObject: questions.map { $0.replacingOccurrences(of: "?", with: "") }), as: UTF8.self)
        let passagesJSON = String(decoding: try JSONSerialization.data(withJSONObject: passages.map { [$0.0, $0.1] }), as: UTF8.self)
        let py = try Command.run(URL(fileURLWithPath: "/usr/bin/env"), [python, "-c", script, exported.path, questionsJSON, passagesJSON])
        // transformers and torch are test requirements (scripts/python-test-requirements.txt): missing, this fails.
        XCTAssertEqual(py.status, 0, "transformers check with \(python) (scripts/setup.sh --test, SRDPR_PYTHON): \(py.stderr)")
        let theirs = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(py.stdout.utf8)) as? [[Double]])
        XCTAssertEqual(theirs.count, inputs.count)
        for (i, row) in theirs.enumerated() {
            let d = deviation(expected[i], row.map(Float.init))
            XCTAssertLessThan(d.maxAbs, 1e-4, "transformers embedding \(i): \(d)")
        }
        print("transformers check ran: \(theirs.count) embeddings match")
    }

    /// `srdpr init-model` (the demo's model has no weight file): BERT's initialisation, a directory
    /// our loader and transformers load, reproducible from the seed.
    func testInitModelWritesARandomBERT() throws {
        let config = Fixtures.packageRoot.appendingPathComponent("demo/model")
        let a = dir.appendingPathComponent("a"), b = dir.appendingPathComponent("b"), c = dir.appendingPathComponent("c")
        for (out, seed) in [(a, "1"), (b, "1"), (c, "2")] {
            let r = try Command.srdpr(["init-model", "--config", config.path, "--output", out.path, "--seed", seed])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        XCTAssertEqual(try Data(contentsOf: a.appendingPathComponent("model.safetensors")),
                       try Data(contentsOf: b.appendingPathComponent("model.safetensors")), "same seed, same weights")
        XCTAssertNotEqual(try Data(contentsOf: a.appendingPathComponent("model.safetensors")),
                          try Data(contentsOf: c.appendingPathComponent("model.safetensors")))
        let model = try BiEncoder.load(directory: a)
        XCTAssertEqual(model.config.hiddenSize, 128)
        XCTAssertEqual(model.config.numLayers, 2)
        let p = model.parameters.toArray()
        for slot in model.question.layout.slots {
            let values = p[slot.range]
            if slot.name.hasSuffix("LayerNorm.weight") {
                XCTAssertTrue(values.allSatisfy { $0 == 1 }, slot.name)
            } else if slot.name.hasSuffix("bias") {
                XCTAssertTrue(values.allSatisfy { $0 == 0 }, slot.name)
            } else {
                let mean = values.reduce(0, +) / Float(values.count)
                let std = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(values.count)).squareRoot()
                XCTAssertEqual(mean, 0, accuracy: 0.002, slot.name)
                XCTAssertEqual(std, 0.02, accuracy: 0.002, slot.name)
            }
        }
        let padRow = model.question.layout.wordEmb
        XCTAssertTrue(p[padRow..<(padRow + 128)].allSatisfy { $0 == 0 }, "the [PAD] embedding row starts at zero")
        for file in ["vocab.txt", "tokenizer_config.json", "config.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: a.appendingPathComponent(file).path), file)
        }

        let python = ProcessInfo.processInfo.environment["SRDPR_PYTHON"] ?? "python3"
        let script = """
            import sys
            from transformers import BertModel
            model, info = BertModel.from_pretrained(sys.argv[1], add_pooling_layer=False, output_loading_info=True)
            print(sorted(info["missing_keys"]), sorted(info["unexpected_keys"]))
            """
        let py = try Command.run(URL(fileURLWithPath: "/usr/bin/env"), [python, "-c", script, a.path])
        XCTAssertEqual(py.status, 0, "transformers check with \(python) (scripts/setup.sh --test, SRDPR_PYTHON): \(py.stderr)")
        XCTAssertEqual(py.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "[] []", py.stdout)
    }
}
