import Coordinator
import Data
import Foundation
import Model
import TestSupport
import XCTest

/// Issue 16, must show 3 and 4: what a new user tried on the inference side, each now right or a
/// clear error. One model loader behind every `--model`, the same defaults everywhere.
final class ModelLoadingCLITests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-model-loading") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    let long = ["title": "Long", "text": Array(repeating: "word", count: 300).joined(separator: " ")]

    func write(_ objects: [[String: String]], _ name: String) throws -> URL {
        let url = dir.appendingPathComponent(name)
        let lines = try objects.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self) }
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func embeddings(_ url: URL) throws -> [[Float]] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            return try XCTUnwrap(object["embedding"] as? [NSNumber]).map(\.floatValue)
        }
    }

    func encode(_ model: String, _ input: URL, _ extra: [String] = []) throws -> (result: CommandResult, embeddings: [[Float]]) {
        let output = dir.appendingPathComponent("out-\(UUID().uuidString).jsonl")
        let r = try Command.srdpr(["encode", "--model", model, "--input", input.path, "--output", output.path] + extra)
        return (r, r.status == 0 ? try embeddings(output) : [])
    }

    /// tiny-bert (max_position_embeddings 128) trained 2 updates with max_length=32, mean pooling
    /// and cosine x 20 (as sentence-transformers trains).
    func cosineCheckpoint() throws -> URL {
        let dataset = try TrainFixture.dataset(dir, samples: 30)
        return try ExportParityTests.train(dir, model: TrainFixture.tinyBert, dataset: dataset, name: "cosine",
                                           settings: ["sim_func=cosine", "pooling=mean", "sim_scale=20"])
    }

    /// `encode` on a checkpoint of a model with fewer than 256 positions: the checkpoint's
    /// max_length (32), not 256 (which failed with "sequence length exceeds max_position_embeddings").
    /// `--max-length 100000` is capped at 128 with a warning; the export root embeds like the checkpoint.
    func testEncodeUsesTheCheckpointsMaxLengthAndCapsWithAWarning() throws {
        let checkpoint = try cosineCheckpoint()
        let input = try write([["question": "How do I sort a hash by value?"], long], "in.jsonl")
        let fromCheckpoint = try encode(checkpoint.path, input)
        XCTAssertEqual(fromCheckpoint.result.status, 0, fromCheckpoint.result.stderr)
        XCTAssertFalse(fromCheckpoint.result.stderr.contains("warning"), fromCheckpoint.result.stderr)
        // What the checkpoint's model gives at max_length 32 (questions normalised, unit length for cosine).
        let loaded = try CheckpointModel(url: checkpoint)
        let expected = try TextEncoder(model: loaded.model, tokenizer: loaded.tokenizer(path: checkpoint.path), maxLength: 32)
            .encode([.question("How do I sort a hash by value?"), .passage(title: "Long", text: long["text"]!)])
            .map { v -> [Float] in let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot(); return v.map { $0 / n } }
        for (a, b) in zip(fromCheckpoint.embeddings, expected) { XCTAssertLessThan(deviation(a, b).maxAbs, 1e-6) }

        let capped = try encode(checkpoint.path, input, ["--max-length", "100000"])
        XCTAssertEqual(capped.result.status, 0, capped.result.stderr)
        XCTAssertTrue(capped.result.stderr.contains("warning: max_length 100000 exceeds max_position_embeddings 128"), capped.result.stderr)
        let at128 = try encode(checkpoint.path, input, ["--max-length", "128"])
        XCTAssertEqual(capped.embeddings, at128.embeddings)
        XCTAssertNotEqual(capped.embeddings[1], fromCheckpoint.embeddings[1], "the long passage is cut at 128, not 32")

        // The export root: question encoder for questions, context encoder for passages, same settings.
        let export = dir.appendingPathComponent("export")
        XCTAssertEqual(try Command.srdpr(["export", "--checkpoint", checkpoint.path, "--output", export.path]).status, 0)
        let fromExport = try encode(export.path, input)
        XCTAssertEqual(fromExport.result.status, 0, fromExport.result.stderr)
        for (a, b) in zip(fromExport.embeddings, fromCheckpoint.embeddings) { XCTAssertLessThan(deviation(a, b).maxAbs, 1e-6) }
    }

    /// An encoder directory of an export embeds only its own side, and says so; a plain directory
    /// embeds both and says so.
    func testAnExportedEncoderDirectoryRefusesTheOtherSide() throws {
        let checkpoint = try cosineCheckpoint()
        let export = dir.appendingPathComponent("export")
        XCTAssertEqual(try Command.srdpr(["export", "--checkpoint", checkpoint.path, "--output", export.path]).status, 0)
        let questionDir = export.appendingPathComponent("question_encoder").path
        let contextDir = export.appendingPathComponent("ctx_encoder").path
        let questions = try write([["question": "How do I sort a hash by value?"]], "q.jsonl")
        let passages = try write([["title": "perlfaq4", "text": "Use sort with a custom comparison."]], "p.jsonl")

        let refusedPassages = try encode(questionDir, passages)
        XCTAssertNotEqual(refusedPassages.result.status, 0)
        XCTAssertTrue(refusedPassages.result.stderr.contains("is the question encoder of an srdpr export: it does not embed passages"),
                      refusedPassages.result.stderr)
        XCTAssertTrue(refusedPassages.result.stderr.contains(export.path), "names the export root to use: \(refusedPassages.result.stderr)")
        let refusedQuestions = try encode(contextDir, questions)
        XCTAssertNotEqual(refusedQuestions.result.status, 0)
        XCTAssertTrue(refusedQuestions.result.stderr.contains("is the context encoder of an srdpr export"), refusedQuestions.result.stderr)

        // Their own side works and equals the root's.
        let q = try encode(questionDir, questions), qRoot = try encode(export.path, questions)
        XCTAssertEqual(q.result.status, 0, q.result.stderr)
        XCTAssertEqual(q.embeddings, qRoot.embeddings)
        let p = try encode(contextDir, passages), pRoot = try encode(export.path, passages)
        XCTAssertEqual(p.result.status, 0, p.result.stderr)
        XCTAssertEqual(p.embeddings, pRoot.embeddings)

        let plain = try encode(TrainFixture.tinyBert, passages)
        XCTAssertEqual(plain.result.status, 0, plain.result.stderr)
        XCTAssertTrue(plain.result.stderr.contains("is a single encoder: it embeds both questions and passages"), plain.result.stderr)
    }

    /// Must show 4: `evaluate` on the export of a cosine-trained, mean-pooled checkpoint gives the
    /// checkpoint's numbers (the export keeps sim_func=cosine, sim_scale=20, pooling=mean and
    /// max_length=32; nothing to remember).
    func testEvaluateOnAnExportGivesTheCheckpointsNumbers() throws {
        let checkpoint = try cosineCheckpoint()
        let export = dir.appendingPathComponent("export")
        XCTAssertEqual(try Command.srdpr(["export", "--checkpoint", checkpoint.path, "--output", export.path]).status, 0)
        // What the export wrote: srdpr's settings in the root and each encoder, mean pooling in 1_Pooling.
        for directory in [export, export.appendingPathComponent("question_encoder"), export.appendingPathComponent("ctx_encoder")] {
            let settings = try XCTUnwrap(try EncoderSettings.read(directory: directory), directory.path)
            XCTAssertEqual(settings.pooling, .mean)
            XCTAssertEqual(settings.simFunc, .cosine)
            XCTAssertEqual(settings.simScale, 20)
            XCTAssertEqual(settings.maxLength, 32)
        }
        for side in ["question_encoder", "ctx_encoder"] {
            let pooling = try JSONSerialization.jsonObject(with: Data(contentsOf: export.appendingPathComponent(side + "/1_Pooling/config.json")))
            XCTAssertEqual((pooling as? [String: Any])?["pooling_mode_mean_tokens"] as? Bool, true, side)
            XCTAssertEqual((pooling as? [String: Any])?["pooling_mode_cls_token"] as? Bool, false, side)
        }
        let (corpus, qrels) = try RetrievalData.small(dir)
        var results: [[String: Any]] = []
        for model in [checkpoint.path, export.path] {
            let r = try Command.srdpr(["evaluate", "--model", model, "--corpus", corpus, "--qrels", qrels, "--k", "1,5,20"])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stderr.contains("ETA"), "a progress line with a rate and an ETA: \(r.stderr)")
            results.append(try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]))
        }
        for key in ["top_k_accuracy", "recall", "mrr@10", "ndcg@10", "questions", "sim_func", "sim_scale", "max_length", "pooling",
                    "do_lower_case"] {
            XCTAssertNotNil(results[0][key], key)
            XCTAssertEqual(results[0][key] as? NSObject, results[1][key] as? NSObject, key)
        }
        XCTAssertEqual(results[1]["sim_func"] as? String, "cosine")
        XCTAssertEqual(results[1]["sim_scale"] as? Double, 20)
        XCTAssertEqual(results[1]["pooling"] as? String, "mean")
        XCTAssertEqual(results[1]["max_length"] as? Int, 32)
        print("evaluate checkpoint: mrr@10 \(results[0]["mrr@10"]!) top-1 \((results[0]["top_k_accuracy"] as! [String: Double])["1"]!); "
              + "export: mrr@10 \(results[1]["mrr@10"]!) top-1 \((results[1]["top_k_accuracy"] as! [String: Double])["1"]!)")
    }

    /// `--do-lower-case` on every command that tokenises, and it is used (not accepted and ignored).
    func testDoLowerCaseOnEveryCommandThatTokenises() throws {
        for command in ["encode", "index", "search", "evaluate", "mine-hard-negatives"] {
            let help = try Command.srdpr([command, "--help"])
            XCTAssertTrue(help.stdout.contains("--do-lower-case"), "\(command) --help:\n\(help.stdout)")
        }
        let input = try write([["question": "HOW Do I Sort A Hash"]], "upper.jsonl")
        let lower = try encode(TrainFixture.tinyBert, input), cased = try encode(TrainFixture.tinyBert, input, ["--do-lower-case", "false"])
        XCTAssertEqual(cased.result.status, 0, cased.result.stderr)
        XCTAssertNotEqual(lower.embeddings, cased.embeddings)
        let (corpus, qrels) = try RetrievalData.small(dir, questions: 2, distractors: 5)
        var evaluated: [Bool] = []
        for flag in ["true", "false"] {
            let r = try Command.srdpr(["evaluate", "--model", TrainFixture.tinyBert, "--corpus", corpus, "--qrels", qrels,
                                       "--max-length", "64", "--do-lower-case", flag])
            XCTAssertEqual(r.status, 0, r.stderr)
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            evaluated.append(try XCTUnwrap(object["do_lower_case"] as? Bool))
        }
        XCTAssertEqual(evaluated, [true, false])
        let bad = try Command.srdpr(["index", "--model", TrainFixture.tinyBert, "--corpus", corpus, "--output", dir.appendingPathComponent("i").path,
                                     "--do-lower-case", "maybe"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--do-lower-case must be true or false"), bad.stderr)
    }

    /// One progress line on stderr, with a rate and an ETA, for every long inference command (off a
    /// terminal: a line at every tenth of the work; `train` draws the same bar on a terminal).
    func testEveryLongCommandShowsProgressWithRateAndETA() throws {
        let (corpus, qrels) = try RetrievalData.small(dir, questions: 3, distractors: 10)
        let questions = try write([["question": "how do I sort a hash"], ["question": "what is Debian"]], "questions.jsonl")
        let index = dir.appendingPathComponent("index").path
        let model = TrainFixture.tinyBert
        let runs: [(String, [String])] = [
            ("encode", ["encode", "--model", model, "--input", questions.path, "--output", dir.appendingPathComponent("e.jsonl").path]),
            ("index", ["index", "--model", model, "--corpus", corpus, "--output", index, "--max-length", "64"]),
            ("search", ["search", "--model", model, "--index", index, "--queries", questions.path, "--max-length", "64"]),
            ("evaluate", ["evaluate", "--model", model, "--corpus", corpus, "--qrels", qrels, "--max-length", "64"]),
        ]
        for (label, arguments) in runs {
            let r = try Command.srdpr(arguments)
            XCTAssertEqual(r.status, 0, "\(label): \(r.stderr)")
            // evaluate indexes then searches: both lines.
            for bar in label == "evaluate" ? ["index", "search"] : [label] {
                let line = r.stderr.split(separator: "\n").first { $0.hasPrefix(bar + " ") && $0.contains("/s ETA ") }
                XCTAssertNotNil(line, "\(label): no '\(bar) ... /s ETA' progress line in \(r.stderr)")
            }
        }
    }

    /// The same `--threads` default for train and every inference command: all the cores the
    /// process may use (here one, with taskset, so that an old fixed default of 2 would show).
    func testThreadsDefaultIsTheSameEverywhere() throws {
        let cores = 1
        for command in ["train", "worker", "encode", "index", "search", "evaluate", "mine-hard-negatives"] {
            let help = try Command.run(URL(fileURLWithPath: "/usr/bin/taskset"), ["-c", "0", Command.srdprBinary.path, command, "--help"])
            let text = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            // The option's own entry (the last mention; the first is the usage line).
            guard let range = text.range(of: "--threads <threads>", options: .backwards) else { XCTFail("\(command) has no --threads"); continue }
            let rest = text[range.upperBound...]
            XCTAssertTrue(rest.prefix(400).contains("(default: \(cores))"), "\(command): \(rest.prefix(400))")
        }
    }
}

/// A slice of the FAQ data: the first questions of the qrels and the passages they need, plus distractors.
enum RetrievalData {
    static func small(_ dir: URL, questions n: Int = 12, distractors: Int = 60) throws -> (corpus: String, qrels: String) {
        let faq = Fixtures.sharedData.appendingPathComponent("faq")
        let qrelLines = try String(contentsOf: faq.appendingPathComponent("train_qrels.jsonl"), encoding: .utf8)
            .split(separator: "\n").prefix(n).map(String.init)
        var needed = Set<String>()
        for line in qrelLines {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            for id in try XCTUnwrap(object["positive_ids"] as? [String]) { needed.insert(id) }
        }
        var corpusLines: [String] = [], others = 0
        for line in try String(contentsOf: faq.appendingPathComponent("corpus.jsonl"), encoding: .utf8).split(separator: "\n") {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            if needed.contains(object["id"] as! String) { corpusLines.append(String(line)) }
            else if others < distractors { corpusLines.append(String(line)); others += 1 }
        }
        let corpus = dir.appendingPathComponent("corpus-\(n).jsonl").path, qrels = dir.appendingPathComponent("qrels-\(n).jsonl").path
        try (corpusLines.joined(separator: "\n") + "\n").write(toFile: corpus, atomically: true, encoding: .utf8)
        try (qrelLines.joined(separator: "\n") + "\n").write(toFile: qrels, atomically: true, encoding: .utf8)
        return (corpus, qrels)
    }
}
