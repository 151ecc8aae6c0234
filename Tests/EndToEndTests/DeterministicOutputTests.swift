import Foundation
import TestSupport
import XCTest

/// Two identical `srdpr train` runs, each its own process and without SWIFT_DETERMINISTIC_HASHING
/// (Swift seeds Dictionary order per process), write byte-identical checkpoints, best checkpoint
/// and its record, config.yaml (but its date line), metrics.jsonl keys and exports (srdpr_settings.json,
/// config.json, the sentence-transformers files): every JSON srdpr writes has sorted keys.
final class DeterministicOutputTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-deterministic") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// A dev set of six passages and two questions (enough for keep_best to write its record).
    func devSet() throws -> (corpus: String, qrels: String) {
        let corpus = [
            #"{"id": "p1", "title": "Perl", "text": "a word boundary matches between a word and a non word character"}"#,
            #"{"id": "p2", "title": "Debian", "text": "install build-essential to build packages"}"#,
            #"{"id": "p3", "title": "Perl", "text": "use a hash to count the words of a file"}"#,
            #"{"id": "p4", "title": "Debian", "text": "apt-get source downloads the source of a package"}"#,
            #"{"id": "p5", "title": "Python", "text": "the re module matches regular expressions"}"#,
            #"{"id": "p6", "title": "Shell", "text": "grep prints the lines that match a pattern"}"#,
        ]
        let qrels = [
            #"{"question": "what does a word boundary match?", "positive_ids": ["p1"]}"#,
            #"{"question": "how do I get the source of a Debian package?", "positive_ids": ["p4", "p2"]}"#,
        ]
        let corpusURL = dir.appendingPathComponent("dev_corpus.jsonl"), qrelsURL = dir.appendingPathComponent("dev_qrels.jsonl")
        try (corpus.joined(separator: "\n") + "\n").write(to: corpusURL, atomically: true, encoding: .utf8)
        try (qrels.joined(separator: "\n") + "\n").write(to: qrelsURL, atomically: true, encoding: .utf8)
        return (corpusURL.path, qrelsURL.path)
    }

    /// Trains into `dir/run` (the same paths both times: the checkpoint stores the configuration),
    /// exports the last checkpoint to `dir/run/export`, then moves `dir/run` to `dir/name`.
    func trainAndExport(_ name: String, dataset: String, dev: (corpus: String, qrels: String)) throws -> URL {
        let run = dir.appendingPathComponent("run")
        let parameters = [
            "train", "--threads", "2", "train_mode=pos", "pretrained_model_cfg=\(TrainFixture.tinyBert)", "bytedataset.pos=\(dataset)",
            "pipeline.pos.forward_batch_size=6", "pipeline.pos.contrastive_size=6", "max_length=48", "dropout=0.1", "seed=7",
            "learning_rate=1e-3", "warmup_steps=1", "total_updates=4", "save_checkpoint_freq=2", "log_batch_step=1",
            "eval.corpus=\(dev.corpus)", "eval.qrels=\(dev.qrels)", "eval_every=2", "keep_best=mrr@10",
            "output_dir=\(run.appendingPathComponent("checkpoints").path)", "log_dir=\(run.appendingPathComponent("logs").path)",
        ]
        let trained = try Command.srdpr(parameters, unsetting: ["SWIFT_DETERMINISTIC_HASHING"])
        XCTAssertEqual(trained.status, 0, "stdout:\n\(trained.stdout)\nstderr:\n\(trained.stderr)")
        let exported = try Command.srdpr(["export", "--checkpoint", run.appendingPathComponent("checkpoints/dpr_biencoder.4").path,
                                          "--output", run.appendingPathComponent("export").path],
                                         unsetting: ["SWIFT_DETERMINISTIC_HASHING"])
        XCTAssertEqual(exported.status, 0, exported.stderr)
        let kept = dir.appendingPathComponent(name)
        try FileManager.default.moveItem(at: run, to: kept)
        return kept
    }

    func testTwoIdenticalRunsWriteIdenticalFiles() throws {
        let dataset = try TrainFixture.dataset(dir, samples: 24)
        let dev = try devSet()
        let first = try trainAndExport("first", dataset: dataset, dev: dev)
        let second = try trainAndExport("second", dataset: dataset, dev: dev)

        func bytes(_ run: URL, _ path: String) throws -> Data { try Data(contentsOf: run.appendingPathComponent(path)) }
        var compared: [String] = []
        for path in ["checkpoints/dpr_biencoder.2", "checkpoints/dpr_biencoder.4", "checkpoints/dpr_biencoder.best",
                     "checkpoints/dpr_biencoder.best.json"] {
            XCTAssertEqual(try bytes(first, path), try bytes(second, path), "\(path) differs between two identical runs")
            compared.append(path)
        }
        let exportRoot = first.appendingPathComponent("export").path
        let exportFiles = try FileManager.default.subpathsOfDirectory(atPath: exportRoot).filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: exportRoot + "/" + path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }.sorted()
        for path in ["srdpr_settings.json", "question_encoder/config.json", "ctx_encoder/tokenizer_config.json"] {
            XCTAssertTrue(exportFiles.contains(path), "\(path) not in \(exportFiles)")
        }
        for path in exportFiles {
            XCTAssertEqual(try bytes(first, "export/" + path), try bytes(second, "export/" + path), "export/\(path) differs")
        }
        // config.yaml: equal but for its comment lines (the date of the run).
        func settings(_ run: URL) throws -> [Substring] {
            try String(contentsOf: run.appendingPathComponent("logs/config.yaml"), encoding: .utf8)
                .split(separator: "\n").filter { !$0.hasPrefix("#") }
        }
        XCTAssertEqual(try settings(first), try settings(second))
        XCTAssertGreaterThan(try settings(first).count, 20)
        // metrics.jsonl: the timings differ, the keys and their order do not.
        func keys(_ run: URL) throws -> [[String]] {
            let pattern = try NSRegularExpression(pattern: #""([a-z_@0-9]+)":"#)
            return try String(contentsOf: run.appendingPathComponent("logs/metrics.jsonl"), encoding: .utf8)
                .split(separator: "\n").map { line in
                    let text = String(line)
                    return pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)).map {
                        String(text[Range($0.range(at: 1), in: text)!])
                    }
                }
        }
        let firstKeys = try keys(first)
        XCTAssertEqual(firstKeys, try keys(second))
        XCTAssertEqual(firstKeys.count, 6, "4 updates and 2 evaluations")
    }
}
