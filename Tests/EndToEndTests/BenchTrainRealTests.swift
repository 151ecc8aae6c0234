import Foundation
import TestSupport
import XCTest

/// `srdpr bench train-real` and its PyTorch anchor (Benchmarks/train_real_anchor.py) on the tiny
/// model and the pipeline fixtures' datasets, every pipeline of the schedule: ours reports the
/// fields with sane values and the token counts of the batches `dump-batches` prints; the anchor,
/// run on those printed batches, counts the same tokens and, with dropout off, computes the same
/// losses update after update (same encoders, losses, clipping, AdamW and schedule as ours).
/// The anchor needs torch and transformers (scripts/setup.sh --test, SRDPR_PYTHON=.venv/bin/python):
/// without them the anchor test FAILS, it does not skip.
final class BenchTrainRealTests: XCTestCase {
    /// All four pipelines: inbatch, pos, poshard, hard (regulate_factor 2 gives one update each).
    func parameters(dropout: Double = 0.1) -> [String] {
        let base = Fixtures.url("pipelines").path
        return ["pretrained_model_cfg=\(Fixtures.url("tiny-bert").path)", "max_length=24", "seed=12345",
                "train_mode=inbatch+pos+poshard+hard", "regulate_factor=2",
                "bytedataset.inbatch=\(base)/all.bytedataset", "bytedataset.pos=\(base)/all.bytedataset",
                "bytedataset.poshard=\(base)/with_hardneg.bytedataset",
                "bytedataset.hard.hardneg=\(base)/with_hardneg.bytedataset",
                "bytedataset.hard.randneg=\(base)/without_hardneg.bytedataset",
                "pipeline.inbatch.forward_batch_size=4", "pipeline.inbatch.use_num_hardnegs=2",
                "pipeline.pos.forward_batch_size=4", "pipeline.pos.contrastive_size=5",
                "pipeline.poshard.forward_batch_size=3", "pipeline.poshard.contrastive_size=3",
                "pipeline.hard.forward_batch_size=3", "pipeline.hard.contrastive_size=4",
                "pooling=mean", "sim_func=cosine", "sim_scale=20", "learning_rate=5e-4", "warmup_steps=2",
                "total_updates=40", "loss_scale=1.0", "max_grad_norm=2.0", "dropout=\(dropout)"]
    }

    func json(_ text: String, _ what: String) throws -> [String: Any] {
        let line = text.split(separator: "\n").last.map(String.init) ?? ""
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(what) printed no JSON object: \(text)")
    }

    /// (real, padded) tokens of every dumped batch: the attention masks' ones and cells, per line.
    func dumpedTokenCounts(_ parameters: [String], batches: Int) throws -> (lines: String, counts: [[Int]]) {
        let dump = try Command.srdpr(["dump-batches", "--batches", "\(batches)"] + parameters)
        XCTAssertEqual(dump.status, 0, dump.stderr)
        var counts: [[Int]] = []
        func cells(_ value: Any, into c: inout [Int]) {
            if let list = value as? [Any] { for v in list { cells(v, into: &c) } } else if let n = value as? Int { c[0] += n; c[1] += 1 }
        }
        for line in dump.stdout.split(separator: "\n") {
            let batch = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            var c = [0, 0]
            for (key, value) in batch where key.hasSuffix("/attn_mask") { cells(value, into: &c) }
            counts.append(c)
        }
        XCTAssertEqual(counts.count, batches)
        return (dump.stdout, counts)
    }

    func testTrainRealReportsTheDumpedBatchesTokensAndSaneNumbers() throws {
        let params = parameters()
        let r = try Command.srdpr(["bench", "train-real", "--steps", "4", "--threads", "1"] + params)
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = try json(r.stdout, "bench train-real")
        XCTAssertEqual(out["warmup_steps"] as? Int, 4, "default warm-up: until each of the 4 pipelines ran once")
        XCTAssertEqual(out["steps"] as? Int, 4)
        XCTAssertEqual(out["steps_per_pipeline"] as? [String: Int], ["inbatch": 1, "pos": 1, "poshard": 1, "hard": 1])
        XCTAssertEqual(out["step_pipelines"] as? [String], ["inbatch", "pos", "poshard", "hard"])
        let (_, dumped) = try dumpedTokenCounts(params, batches: 8)
        XCTAssertEqual(out["real_tokens_per_step"] as? [Int], dumped[4...].map { $0[0] })
        XCTAssertEqual(out["padded_tokens_per_step"] as? [Int], dumped[4...].map { $0[1] })
        let real = try XCTUnwrap(out["real_tokens"] as? Int), padded = try XCTUnwrap(out["padded_tokens"] as? Int)
        XCTAssertEqual(real, dumped[4...].reduce(0) { $0 + $1[0] })
        XCTAssertGreaterThan(real, 0)
        XCTAssertGreaterThanOrEqual(padded, real)
        let total = try XCTUnwrap(out["total_s"] as? Double), median = try XCTUnwrap(out["median_step_s"] as? Double)
        XCTAssertGreaterThan(total, 0)
        XCTAssertGreaterThan(median, 0)
        XCTAssertLessThanOrEqual(median, total)
        let perSecond = try XCTUnwrap(out["real_tokens_per_s"] as? Double)
        XCTAssertEqual(perSecond, Double(real) / total, accuracy: Double(real) / total * 0.01 + 0.1)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(out["padded_tokens_per_s"] as? Double), perSecond)
        let rss = try XCTUnwrap(out["peak_rss_mb"] as? Double)
        XCTAssertTrue(rss > 1 && rss < 4096, "peak RSS \(rss) MB")
        let losses = try XCTUnwrap(out["losses"] as? [Double])
        XCTAssertEqual(losses.count, 8)
        XCTAssertTrue(losses.allSatisfy { $0.isFinite && $0 > 0 }, "\(losses)")
        let pipelines = try XCTUnwrap(out["pipelines"] as? [String: [String: Any]])
        XCTAssertEqual(pipelines.values.reduce(0) { $0 + ($1["real_tokens"] as? Int ?? -1) }, real)
    }

    func testAnchorCountsTheSameTokensAndComputesTheSameLosses() throws {
        let params = parameters(dropout: 0)
        let dir = try Fixtures.temporaryDirectory("srdpr-bench-train-real")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (lines, dumped) = try dumpedTokenCounts(params, batches: 8)
        let batches = dir.appendingPathComponent("batches.jsonl")
        try lines.write(to: batches, atomically: true, encoding: .utf8)

        let ours = try Command.srdpr(["bench", "train-real", "--steps", "4", "--warmup-steps", "4", "--threads", "1"] + params)
        XCTAssertEqual(ours.status, 0, ours.stderr)
        let mine = try json(ours.stdout, "bench train-real")

        let python = TRECEvalReference.python
        let script = Fixtures.packageRoot.appendingPathComponent("Benchmarks/train_real_anchor.py").path
        let anchor = try Command.run(python.executable, python.prefix + [
            script, "--batches", batches.path, "--model", Fixtures.url("tiny-bert").path, "--threads", "1", "--warmup-steps", "4",
            "--pooling", "mean", "--sim-func", "cosine", "--sim-scale", "20", "--dropout", "0", "--learning-rate", "5e-4",
            "--warmup-updates", "2", "--total-updates", "40", "--loss-scale", "1.0", "--max-grad-norm", "2.0"])
        XCTAssertEqual(anchor.status, 0, "train_real_anchor.py failed (needs torch + transformers: scripts/setup.sh --test, "
            + "SRDPR_PYTHON=.venv/bin/python): \(anchor.stderr.suffix(3000))")
        let theirs = try json(anchor.stdout, "train_real_anchor.py")
        XCTAssertEqual(theirs["real_tokens_per_step"] as? [Int], dumped[4...].map { $0[0] })
        XCTAssertEqual(theirs["padded_tokens_per_step"] as? [Int], dumped[4...].map { $0[1] })
        for key in ["real_tokens_per_step", "padded_tokens_per_step", "step_pipelines"] {
            XCTAssertEqual(theirs[key] as? NSArray, mine[key] as? NSArray, key)
        }
        XCTAssertEqual(theirs["steps_per_pipeline"] as? [String: Int], mine["steps_per_pipeline"] as? [String: Int])
        for key in ["real_tokens_per_s", "padded_tokens_per_s", "median_step_s", "peak_rss_mb"] {
            XCTAssertGreaterThan(try XCTUnwrap(theirs[key] as? Double, key), 0, key)
        }
        // Dropout off: the same updates give the same losses (fp32 summation order apart).
        let a = try XCTUnwrap(mine["losses"] as? [Double]), b = try XCTUnwrap(theirs["losses"] as? [Double])
        XCTAssertEqual(a.count, 8)
        XCTAssertEqual(a.count, b.count)
        for (i, (x, y)) in zip(a, b).enumerated() {
            XCTAssertEqual(x, y, accuracy: 1e-3 * max(1, abs(y)), "update \(i) (\(mine["step_pipelines"] ?? "")): ours \(x), PyTorch \(y)")
        }
    }

    func testTrainRealRefusesParametersItWouldIgnore() throws {
        let r = try Command.srdpr(["bench", "train-real", "--steps", "1"] + parameters() + ["output_dir=/tmp/x"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("output_dir"), r.stderr)
    }
}
