import Coordinator
import Data
import Foundation
import JobContracts
import Model
import TestSupport
import XCTest

/// The training loop alone, over a fake ``StepExecutor`` that computes nothing: the schedule,
/// sharding, checkpoint frequency and rotation, Ctrl-C, a failing step and an exact resume, in
/// milliseconds (the real executors are covered by TrainCLITests and MultiWorkerTests).
final class TrainingLoopTests: XCTestCase {
    /// Records what the loop asks; writes checkpoints holding only the loop's state.
    final class FakeExecutor: StepExecutor {
        struct Failure: TrainingFailure { var description: String }

        let worldSize: Int
        var job: JobStart?
        var executed: [(step: Int, shards: [[BatchPlan]], lastCheckpoint: String?)] = []
        var checkpoints: [TrainerState] = []
        var stops: [(code: Int32, reason: String)] = []
        /// Dev-set evaluations asked for: the step and the checkpoint written at it.
        var evaluations: [(step: Int, checkpoint: String?)] = []
        /// Step (0-based) whose execution fails like a non-finite loss.
        var failAt: Int?

        init(worldSize: Int = 1) { self.worldSize = worldSize }

        func start(_ job: JobStart) throws { self.job = job }

        func execute(step: Int, shards: [[BatchPlan]], lastCheckpoint: String?) throws -> [ControlMessage.StepReport] {
            if step == failAt { throw Failure(description: "step \(step + 1): the loss is nan") }
            executed.append((step, shards, lastCheckpoint))
            return (0..<worldSize).map { rank in
                ControlMessage.StepReport(rank: rank, step: step, loss: 1 / Float(step + 1), gradientNorm: 1, learningRate: 1e-3,
                                          tokens: 10, fetchSeconds: 0, computeSeconds: 0, communicationSeconds: 0, gatherSeconds: 0,
                                          batchHash: "h\(step)")
            }
        }

        /// How long a dev evaluation takes (it sleeps), and the seconds it reports having spent.
        var evaluationSleep: TimeInterval = 0
        var evaluationSeconds: Double = 0

        func evaluate(_ state: TrainerState, checkpoint: String?) throws -> DevSetReport {
            evaluations.append((state.step, checkpoint))
            if evaluationSleep > 0 { Thread.sleep(forTimeInterval: evaluationSleep) }
            return DevSetReport(step: state.step, scores: DevSetScores(metrics: ["mrr@10": 0.5 + Double(state.step) / 100], queries: 2,
                                                                        queriesWithoutJudgedPositive: 0, seconds: evaluationSeconds), best: nil)
        }

        func checkpoint(_ state: TrainerState) throws -> String {
            checkpoints.append(state)
            let config = try XCTUnwrap(job?.config)
            var writer = CheckpointWriter()
            try writer.addJSON(TrainingCheckpoint.stateSection, state)
            let directory = CheckpointDirectory(directory: URL(fileURLWithPath: try XCTUnwrap(config.outputDir)), prefix: config.checkpointFileName)
            return try directory.save(writer, step: state.step, keep: config.keepCheckpointMax).path
        }

        func stop(code: Int32, reason: String, lastCheckpoint: String?) { stops.append((code, reason)) }
    }

    var directory: URL!

    override func setUpWithError() throws { directory = try Fixtures.temporaryDirectory("srdpr-loop") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func config(_ extra: [String] = []) throws -> TrainingConfig {
        try TrainingConfig.parse([
            "train_mode=pos", "pretrained_model_cfg=\(Fixtures.url("tiny-bert").path)",
            "bytedataset.pos=\(Fixtures.url("pipelines/all.bytedataset").path)",
            "pipeline.pos.forward_batch_size=2", "pipeline.pos.contrastive_size=2",
            "total_updates=6", "save_checkpoint_freq=2", "keep_checkpoint_max=2", "log_batch_step=100",
            "output_dir=\(directory.appendingPathComponent("out").path)", "log_dir=\(directory.appendingPathComponent("logs").path)",
        ] + extra).config
    }

    func loop(_ config: TrainingConfig, _ executor: FakeExecutor, interruptAfter: Int? = nil) -> (TrainingLoop, () -> [String]) {
        let loop = TrainingLoop(config: config, executor: executor)
        var lines: [String] = []
        loop.print = { lines.append($0) }
        loop.showProgress = false
        if let interruptAfter { loop.isInterrupted = { executor.executed.count >= interruptAfter } }
        return (loop, { lines })
    }

    /// The lines of log_dir/metrics.jsonl.
    func metrics() throws -> [[String: Any]] {
        try String(contentsOf: directory.appendingPathComponent("logs/metrics.jsonl"), encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func testOneRankIsPlannedShardedAndCheckpointedLikeMany() throws {
        let executor = FakeExecutor()
        let (loop, lines) = loop(try config(), executor)
        let summary = try loop.run()
        XCTAssertEqual(summary.step, 6)
        XCTAssertFalse(summary.interrupted)
        XCTAssertEqual(executor.executed.map(\.step), Array(0..<6))
        for (_, shards, _) in executor.executed {
            XCTAssertEqual(shards.count, 1)
            for plan in shards[0] {
                // A shard of the one rank: every row, owned by rank 0.
                XCTAssertEqual(plan.globalRows, [plan.questions.count] + plan.contextParts.map(\.count))
                XCTAssertEqual(plan.rowOwners?.allSatisfy { $0.allSatisfy { $0 == 0 } }, true)
            }
        }
        // max_length is capped once, before the job starts: tiny-bert has 128 positions.
        XCTAssertEqual(executor.job?.config.maxLength, 128)
        XCTAssertTrue(lines().contains { $0.contains("max_length=256 exceeds the model's max_position_embeddings 128") }, "\(lines())")
        XCTAssertEqual(executor.job?.resume, false)
        XCTAssertEqual(executor.job?.dropoutSeed, 12345)
        // Every save_checkpoint_freq updates; the newest is handed to the next step; rotation keeps two.
        XCTAssertEqual(executor.checkpoints.map(\.step), [2, 4, 6])
        XCTAssertEqual(executor.checkpoints.last?.lossHistory["pos"]?.count, 6)
        XCTAssertEqual(executor.executed[2].lastCheckpoint.map { URL(fileURLWithPath: $0).lastPathComponent }, "dpr_biencoder.2")
        let kept = try CheckpointDirectory(directory: directory.appendingPathComponent("out"), prefix: "dpr_biencoder").list().map(\.step)
        XCTAssertEqual(kept, [4, 6])
        XCTAssertEqual(summary.checkpoint?.lastPathComponent, "dpr_biencoder.6")
        XCTAssertEqual(executor.stops.map(\.code), [0])
        let metrics = try self.metrics()
        XCTAssertEqual(metrics.count, 6)
        XCTAssertEqual(metrics.last?["batch_hash"] as? String, "h5")
    }

    func testTwoRanksGetDisjointShardsCoveringTheBatch() throws {
        let executor = FakeExecutor(worldSize: 2)
        let (loop, _) = loop(try config(["total_updates=2"]), executor)
        _ = try loop.run()
        for (_, shards, _) in executor.executed {
            XCTAssertEqual(shards.count, 2)
            for (a, b) in zip(shards[0], shards[1]) {
                XCTAssertEqual(a.rowOwners, b.rowOwners)
                XCTAssertEqual(a.questions.count + b.questions.count, a.globalRows?[0])
            }
        }
    }

    func testInterruptCheckpointsTheCurrentStepAndStops() throws {
        let executor = FakeExecutor()
        let (loop, lines) = loop(try config(), executor, interruptAfter: 3)
        let summary = try loop.run()
        XCTAssertTrue(summary.interrupted)
        XCTAssertEqual(summary.step, 3)
        XCTAssertEqual(executor.checkpoints.map(\.step), [2, 3])
        XCTAssertEqual(summary.checkpoint?.lastPathComponent, "dpr_biencoder.3")
        XCTAssertEqual(executor.stops.map(\.code), [130])
        XCTAssertTrue(lines().contains { $0.hasPrefix("interrupted") && $0.contains("checkpoint") && $0.contains("written at step 3") }, "\(lines())")
    }

    func testAFailingStepStopsWithTheLastCheckpoint() throws {
        let executor = FakeExecutor()
        executor.failAt = 4
        let (loop, _) = loop(try config(), executor)
        XCTAssertThrowsError(try loop.run()) { error in
            guard case let TrainerError.stopped(reason, last) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(reason, "step 5: the loss is nan")
            XCTAssertEqual(last.map { URL(fileURLWithPath: $0).lastPathComponent }, "dpr_biencoder.4")
        }
        XCTAssertEqual(executor.stops.map(\.code), [1])
        let metrics = try self.metrics()
        XCTAssertEqual(metrics.last?["error"] as? String, "step 5: the loss is nan")
        XCTAssertEqual(metrics.last?["step"] as? Int, 5)
    }

    func testResumeContinuesWithTheSamePlansAndState() throws {
        let straight = FakeExecutor()
        _ = try loop(try config(), straight).0.run()

        try FileManager.default.removeItem(at: directory.appendingPathComponent("out"))
        let first = FakeExecutor()
        _ = try loop(try config(), first, interruptAfter: 3).0.run()
        let resumed = FakeExecutor()
        let checkpoint = directory.appendingPathComponent("out/dpr_biencoder.3").path
        let (loop, lines) = loop(try config(["model_file=\(checkpoint)"]), resumed)
        let summary = try loop.run()
        XCTAssertEqual(summary.step, 6)
        XCTAssertEqual(resumed.job?.resume, true)
        XCTAssertTrue(lines().contains("resumed from \(checkpoint) at step 3"), "\(lines())")
        XCTAssertEqual(resumed.executed.map(\.step), [3, 4, 5])
        XCTAssertEqual(resumed.executed.map(\.shards), straight.executed.suffix(3).map(\.shards))
        XCTAssertEqual(resumed.checkpoints.last, straight.checkpoints.last)
    }

    /// The dev set (issue 18): evaluated after every eval_every-th update and after the last one,
    /// by the executor, with the checkpoint written at that step (if any); each evaluation is one
    /// metrics.jsonl row carrying its metrics, the seconds the evaluation reported and the wall
    /// time the run spent on it, while the step rows keep exactly the fields of a run without a dev set.
    func testDevSetIsEvaluatedEveryEvalEveryUpdatesAndAtTheEndAndTimed() throws {
        let devSet = ["eval.corpus=\(directory.appendingPathComponent("dev-corpus.jsonl").path)",
                      "eval.qrels=\(directory.appendingPathComponent("dev-qrels.jsonl").path)"]
        let executor = FakeExecutor()
        executor.evaluationSleep = 0.05
        executor.evaluationSeconds = 0.04
        let (loop, _) = loop(try config(devSet + ["total_updates=7", "eval_every=3"]), executor)
        _ = try loop.run()
        // 3 and 6 (eval_every) and 7 (the end); at 6 the step's checkpoint is handed over, at 3 none was written.
        XCTAssertEqual(executor.evaluations.map(\.step), [3, 6, 7])
        XCTAssertEqual(executor.evaluations.map { $0.checkpoint.map { URL(fileURLWithPath: $0).lastPathComponent } },
                       [nil, "dpr_biencoder.6", "dpr_biencoder.7"])
        XCTAssertEqual(executor.executed.map(\.step), Array(0..<7), "evaluations do not replace or repeat updates")
        let rows = try metrics()
        let evalRows = rows.filter { $0["eval"] != nil }
        XCTAssertEqual(evalRows.map { $0["step"] as? Int }, [3, 6, 7])
        for row in evalRows {
            let step = try XCTUnwrap(row["step"] as? Int)
            let eval = try XCTUnwrap(row["eval"] as? [String: Any])
            XCTAssertEqual(try XCTUnwrap(eval["mrr@10"] as? Double), 0.5 + Double(step) / 100, accuracy: 1e-12)
            XCTAssertEqual(eval["queries"] as? Int, 2)
            XCTAssertEqual(try XCTUnwrap(row["eval_seconds"] as? Double), 0.04, accuracy: 1e-12, "the evaluator's own time")
            let wall = try XCTUnwrap(row["eval_wall_seconds"] as? Double)
            XCTAssertGreaterThanOrEqual(wall, 0.05, "the time the run waited for the evaluation")
            XCTAssertLessThan(wall, 5)
        }
        let stepRows = rows.filter { $0["eval"] == nil }
        XCTAssertEqual(stepRows.map { $0["step"] as? Int }, Array(1...7))

        // A dev set with eval_every=0 or without eval_every: the end only.
        for every in [["eval_every=0"], []] {
            try FileManager.default.removeItem(at: directory.appendingPathComponent("out"))
            try FileManager.default.removeItem(at: directory.appendingPathComponent("logs"))
            let endOnly = FakeExecutor()
            _ = try self.loop(try config(devSet + ["total_updates=7"] + every), endOnly).0.run()
            XCTAssertEqual(endOnly.evaluations.map(\.step), [7], "\(every)")
        }

        // No dev set: no evaluation is asked for, no row carries an eval field, and the step rows
        // hold the same fields as with a dev set.
        try FileManager.default.removeItem(at: directory.appendingPathComponent("out"))
        try FileManager.default.removeItem(at: directory.appendingPathComponent("logs"))
        let plain = FakeExecutor()
        _ = try self.loop(try config(["total_updates=7"]), plain).0.run()
        XCTAssertTrue(plain.evaluations.isEmpty)
        let plainRows = try metrics()
        XCTAssertEqual(plainRows.map { $0["step"] as? Int }, Array(1...7))
        for row in plainRows {
            XCTAssertNil(row["eval"]); XCTAssertNil(row["eval_seconds"]); XCTAssertNil(row["eval_wall_seconds"]); XCTAssertNil(row["best"])
        }
        XCTAssertEqual(plainRows.map { Set($0.keys) }, stepRows.map { Set($0.keys) })
    }
}
