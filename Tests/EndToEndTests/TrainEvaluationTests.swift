import Foundation
import TestSupport
import XCTest

/// Evaluation during training (`eval.*`, `eval_every`, `keep_best`) at tiny-bert scale: the eval
/// rows of metrics.jsonl, TensorBoard's `eval/<metric>` read back by TensorBoard's own
/// EventAccumulator, the best checkpoint, the same metrics with `--workers 2`, training itself
/// unchanged by the evaluations, resume keeping the best so far, and bad dev-set parameters.
final class TrainEvaluationTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-train-eval") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// 30 FAQ questions (the study's held-out ones) with their passages and 300 others.
    func devSet() throws -> (corpus: String, qrels: String) {
        let faq = Fixtures.sharedData.appendingPathComponent("faq")
        let qrels = try String(contentsOf: faq.appendingPathComponent("train_qrels.jsonl"), encoding: .utf8)
            .split(separator: "\n").enumerated().filter { $0.offset % 20 < 3 }.prefix(30).map { String($0.element) }
        var needed = Set<String>()
        for line in qrels {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            for id in object["positive_ids"] as! [String] { needed.insert(id) }
        }
        var corpus: [String] = [], others = 0
        for line in try String(contentsOf: faq.appendingPathComponent("corpus.jsonl"), encoding: .utf8).split(separator: "\n") {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let isNeeded = needed.contains(object["id"] as! String)
            if isNeeded || others < 300 { corpus.append(String(line)); if !isNeeded { others += 1 } }
        }
        let corpusPath = dir.appendingPathComponent("dev_corpus.jsonl"), qrelsPath = dir.appendingPathComponent("dev_qrels.jsonl")
        try (corpus.joined(separator: "\n") + "\n").write(to: corpusPath, atomically: true, encoding: .utf8)
        try (qrels.joined(separator: "\n") + "\n").write(to: qrelsPath, atomically: true, encoding: .utf8)
        return (corpusPath.path, qrelsPath.path)
    }

    func parameters(dataset: String, name: String, updates: Int = 24) -> [String] {
        ["train_mode=pos", "pipeline.pos.forward_batch_size=8", "pipeline.pos.contrastive_size=8",
         "pretrained_model_cfg=\(TrainFixture.tinyBert)", "bytedataset.pos=\(dataset)", "max_length=64", "dropout=0",
         "learning_rate=1e-3", "warmup_steps=0", "total_updates=\(updates)", "save_checkpoint_freq=10", "log_batch_step=8",
         "output_dir=\(dir.appendingPathComponent("\(name)/checkpoints").path)", "log_dir=\(dir.appendingPathComponent("\(name)/logs").path)"]
    }

    func evalRows(_ name: String) throws -> [[String: Any]] {
        try TrainFixture.metrics(dir.appendingPathComponent("\(name)/logs")).filter { $0["eval"] != nil }
    }

    /// Must show 2 (CI scale): evaluations at steps 8, 16 and 24, logged to stdout, metrics.jsonl and
    /// TensorBoard; the best checkpoint kept; `--workers 2` gives the same metrics; training without
    /// the dev set gives bit-identical losses (the evaluation does not disturb the run).
    func testDevEvaluationsSingleProcessAndTwoWorkers() throws {
        let dataset = try TrainFixture.dataset(dir, samples: 60)
        let (corpus, qrels) = try devSet()
        let eval = ["eval.corpus=\(corpus)", "eval.qrels=\(qrels)", "eval_every=8", "keep_best=mrr@10"]
        let single = try TrainFixture.train(parameters(dataset: dataset, name: "single") + eval)
        let rows = try evalRows("single")
        XCTAssertEqual(rows.map { $0["step"] as? Int }, [8, 16, 24], "every 8 updates and at the end")
        for row in rows {
            let metrics = try XCTUnwrap(row["eval"] as? [String: Any])
            for key in ["mrr@10", "ndcg@10", "ndcg@1", "mrr@100"] { XCTAssertNotNil(metrics[key] as? Double, key) }
            XCTAssertEqual(Set((try XCTUnwrap(metrics["top_k_accuracy"] as? [String: Double])).keys), ["1", "5", "20", "100"])
            XCTAssertEqual(metrics["queries"] as? Int, 30)
            XCTAssertGreaterThan(try XCTUnwrap(row["eval_seconds"] as? Double), 0, "the time an evaluation costs is reported")
            XCTAssertGreaterThanOrEqual(try XCTUnwrap(row["eval_wall_seconds"] as? Double), row["eval_seconds"] as! Double)
        }
        XCTAssertTrue(single.stdout.contains("eval step 8: mrr@10 "), single.stdout)
        // The best: named in the log, a loadable checkpoint, its record naming the best step.
        let best = dir.appendingPathComponent("single/checkpoints/dpr_biencoder.best")
        XCTAssertTrue(single.stdout.contains("new best mrr@10, kept as \(best.path)"), single.stdout)
        let record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: best.appendingPathExtension("json"))) as? [String: Any])
        let values = rows.map { ($0["eval"] as! [String: Any])["mrr@10"] as! Double }
        let bestValue = values.max()!
        XCTAssertEqual(record["value"] as? Double, bestValue)
        XCTAssertEqual(record["step"] as? Int, rows[values.firstIndex(of: bestValue)!]["step"] as? Int)
        let inspect = try Command.srdpr(["inspect-checkpoint", best.path])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)

        // TensorBoard's EventAccumulator reads eval/<metric> at the same steps and values.
        let python = TRECEvalReference.python
        let script = """
            import sys
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
            acc = EventAccumulator(sys.argv[1]); acc.Reload()
            for tag in ("eval/mrr@10", "eval/ndcg@10", "eval/top_k_accuracy@20"):
                print(tag, " ".join("%d:%.9g" % (e.step, e.value) for e in acc.Scalars(tag)))
            """
        let py = try Command.run(python.executable, python.prefix + ["-c", script, dir.appendingPathComponent("single/logs").path])
        XCTAssertEqual(py.status, 0, "TensorBoard must be importable (scripts/setup.sh --test installs it; SRDPR_PYTHON=.venv/bin/python): \(py.stderr)")
        let lines = py.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 3, py.stdout)
        for line in lines {
            let fields = line.split(separator: " ")
            let name = String(fields[0].dropFirst("eval/".count))
            let points = fields.dropFirst().map { $0.split(separator: ":") }
            XCTAssertEqual(points.map { Int($0[0]) }, [8, 16, 24], String(line))
            for (point, row) in zip(points, rows) {
                let metrics = row["eval"] as! [String: Any]
                let expected = name.hasPrefix("top_k_accuracy@") ? (metrics["top_k_accuracy"] as! [String: Double])["20"]! : metrics[name] as! Double
                XCTAssertEqual(Double(point[1])!, expected, accuracy: 1e-6, "\(name) at \(point[0])")
            }
        }

        // Two worker processes: rank 0 evaluates; the same numbers (dropout 0: the runs differ
        // only in float summation order). Deep in the ranking that order can swap two passages whose
        // scores tie to the last bits (seen with the AVX-512 kernels: one relevant passage at rank 49
        // against 50, mrr@100 and ndcg@100 1.4e-5 and 3.0e-5 apart): the @100 metrics may move by one
        // adjacent swap below rank 20 over the 30 questions (mrr (1/20 - 1/21) / 30 = 7.9e-5, ndcg
        // (1/log2 21 - 1/log2 22) / 30 = 1.1e-4); the top-10 metrics must agree to 1e-6.
        let workers = try Command.srdpr(["train", "--threads", "2", "--workers", "2"] + parameters(dataset: dataset, name: "workers") + eval)
        XCTAssertEqual(workers.status, 0, workers.stderr)
        let workerRows = try evalRows("workers")
        XCTAssertEqual(workerRows.map { $0["step"] as? Int }, [8, 16, 24])
        for (a, b) in zip(rows, workerRows) {
            let ours = a["eval"] as! [String: Any], theirs = b["eval"] as! [String: Any]
            for (key, value) in ours {
                let tolerance = key.hasSuffix("@100") ? 1.2e-4 : 1e-6
                if let v = value as? Double { XCTAssertEqual(v, theirs[key] as! Double, accuracy: tolerance, "\(key) at step \(a["step"]!)") }
            }
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("workers/checkpoints/dpr_biencoder.best").path))

        // Without a dev set: the same losses, bit for bit, and no eval rows.
        try TrainFixture.train(parameters(dataset: dataset, name: "plain"))
        let plain = try TrainFixture.metrics(dir.appendingPathComponent("plain/logs"))
        XCTAssertTrue(plain.allSatisfy { $0["eval"] == nil })
        let withEval = try TrainFixture.metrics(dir.appendingPathComponent("single/logs")).filter { $0["loss"] != nil }
        XCTAssertEqual(plain.map { $0["loss"] as! Double }, withEval.map { $0["loss"] as! Double })
    }

    /// Resuming keeps the best so far: the record is read back, and an evaluation that does not beat
    /// it leaves the best checkpoint alone.
    func testResumeKeepsTheBestSoFar() throws {
        let dataset = try TrainFixture.dataset(dir, samples: 40)
        let (corpus, qrels) = try devSet()
        let eval = ["eval.corpus=\(corpus)", "eval.qrels=\(qrels)", "eval_every=5", "keep_best=ndcg@10"]
        try TrainFixture.train(parameters(dataset: dataset, name: "run", updates: 10) + eval)
        let best = dir.appendingPathComponent("run/checkpoints/dpr_biencoder.best")
        let before = try Data(contentsOf: best.appendingPathExtension("json"))
        let record = try XCTUnwrap(JSONSerialization.jsonObject(with: before) as? [String: Any])
        let resumed = try TrainFixture.train(parameters(dataset: dataset, name: "run", updates: 10) + eval
            + ["model_file=\(dir.appendingPathComponent("run/checkpoints/dpr_biencoder.10").path)", "total_updates=10"])
        // Nothing left to train: the run ends at once, and the best is what the first part found.
        XCTAssertTrue(resumed.stdout.contains("keep_best: the best so far is ndcg@10 \(record["value"]!) at step \(record["step"]!)"), resumed.stdout)
        XCTAssertEqual(try Data(contentsOf: best.appendingPathExtension("json")), before)

        // Resuming from step 5 re-runs 6..10: the evaluation at 10 equals the first one, so it is no new best.
        let again = try TrainFixture.train(parameters(dataset: dataset, name: "run", updates: 10) + eval
            + ["model_file=\(dir.appendingPathComponent("run/checkpoints/dpr_biencoder.10").path)", "total_updates=15"])
        XCTAssertTrue(again.stdout.contains("keep_best: the best so far is ndcg@10"), again.stdout)
        XCTAssertTrue(again.stdout.contains("eval step 15: "), again.stdout)
    }

    /// Bad dev-set parameters stop the run before any training, naming the parameter or file.
    func testBadDevSetParameters() throws {
        let dataset = try TrainFixture.dataset(dir, samples: 20)
        let (corpus, qrels) = try devSet()
        let beir = dir.appendingPathComponent("beir")
        try FileManager.default.createDirectory(at: beir.appendingPathComponent("qrels"), withIntermediateDirectories: true)
        try "{\"_id\": \"d1\", \"title\": \"\", \"text\": \"x\"}\n".write(to: beir.appendingPathComponent("corpus.jsonl"), atomically: true, encoding: .utf8)
        try "{\"_id\": \"q1\", \"text\": \"x\"}\n".write(to: beir.appendingPathComponent("queries.jsonl"), atomically: true, encoding: .utf8)
        try "query-id\tcorpus-id\tscore\nq1\td1\t1\n".write(to: beir.appendingPathComponent("qrels/test.tsv"), atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            (["dev_file=dev.json"], "dev_file: the original's validation"),
            (["eval_every=5"], "eval_every: there is no dev set"),
            (["eval.corpus=\(corpus)", "eval.qrels=\(qrels)", "keep_best=map"], "keep_best: map is not a dev metric"),
            (["eval.corpus=\(corpus)", "eval_every=5"], "eval.qrels: not set"),
            (["eval.beir=\(beir.path)", "eval.split=dev", "eval_every=5"], "has no qrels/dev.tsv; its splits: test"),
            (["eval.corpus=\(corpus)", "eval.qrels=\(dir.path)/missing.jsonl", "eval_every=5"], "\(dir.path)/missing.jsonl"),
            (["eval.corpus=\(corpus)", "eval.qrels=\(qrels)", "eval_every=-1"], "eval_every: is -1"),
        ]
        for (extra, message) in cases {
            let r = try TrainFixture.train(parameters(dataset: dataset, name: "bad") + extra, status: 1)
            XCTAssertTrue(r.stderr.contains(message), "\(extra): expected '\(message)' in: \(r.stderr)")
            XCTAssertFalse(r.stdout.contains("step 1/"), "no training for \(extra)")
        }
        let warned = try TrainFixture.train(parameters(dataset: dataset, name: "warned", updates: 2) + ["eval_per_epoch=1"])
        XCTAssertTrue(warned.stderr.contains("eval_per_epoch=1 has no effect"), warned.stderr)
    }
}
