import Coordinator
import Data
import Foundation
import Model
import TestSupport
import XCTest

/// Issue 14 ("a new user's first hour"): a reused output_dir loses nothing, Ctrl-C twice stops
/// at once naming the last checkpoint, hard negatives are checked, messages say what to do, and
/// `srdpr train --help` lists every parameter of the parser's table.
final class FirstHourTests: TrainingRunTestCase {
    override var scratchPrefix: String { "srdpr-first-hour" }

    func base(output: String = "ckpt", logs: String = "logs") -> [String] {
        ["train_mode=pos", "pretrained_model_cfg=\(TrainFixture.tinyBert)", "bytedataset.pos=\(ds!)", "max_length=32",
         "pipeline.pos.forward_batch_size=4", "pipeline.pos.contrastive_size=4", "warmup_steps=0", "dropout=0",
         "output_dir=\(dir.appendingPathComponent(output).path)", "log_dir=\(dir.appendingPathComponent(logs).path)"]
    }
    var checkpoints: CheckpointDirectory { CheckpointDirectory(directory: dir.appendingPathComponent("ckpt"), prefix: "dpr_biencoder") }
    var logs: URL { dir.appendingPathComponent("logs") }

    // MARK: Item 1: a reused output_dir

    /// A fresh run into an output_dir with checkpoints is refused and changes nothing; the ways
    /// out are resume=latest, model_file= and overwrite_output_dir=true; a fresh run's logs never
    /// mix with an earlier run's.
    func testReusedOutputDirIsRefusedUnlessResumedOrOverwritten() throws {
        try TrainFixture.train(base() + ["total_updates=2", "save_checkpoint_freq=1", "keep_checkpoint_max=2"])
        XCTAssertEqual(try checkpoints.list().map(\.step), [1, 2])
        let before = try Data(contentsOf: checkpoints.url(step: 2))
        let metricsBefore = try String(contentsOf: logs.appendingPathComponent("metrics.jsonl"), encoding: .utf8)

        // Refused: nothing written, nothing deleted, the message names the checkpoints and the ways out.
        var r = try TrainFixture.train(base() + ["total_updates=1", "keep_checkpoint_max=2"], status: 1)
        XCTAssertTrue(r.stderr.contains("output_dir=\(checkpoints.directory.path) already holds checkpoints of an earlier run (dpr_biencoder.1, dpr_biencoder.2)"), r.stderr)
        XCTAssertTrue(r.stderr.contains("resume=latest, or model_file=\(checkpoints.url(step: 2).path)"), r.stderr)
        XCTAssertTrue(r.stderr.contains("overwrite_output_dir=true"), r.stderr)
        XCTAssertEqual(try checkpoints.list().map(\.step), [1, 2])
        XCTAssertEqual(try Data(contentsOf: checkpoints.url(step: 2)), before)
        XCTAssertEqual(try String(contentsOf: logs.appendingPathComponent("metrics.jsonl"), encoding: .utf8), metricsBefore)

        // Way out 1: resume=latest picks the newest checkpoint and continues the same logs.
        r = try TrainFixture.train(base() + ["total_updates=3", "keep_checkpoint_max=2", "resume=latest"])
        XCTAssertTrue(r.stdout.contains("resume=latest: resuming from \(checkpoints.url(step: 2).path)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("resumed from \(checkpoints.url(step: 2).path) at step 2"), r.stdout)
        XCTAssertEqual(try checkpoints.list().map(\.step), [2, 3])
        XCTAssertEqual(try TrainFixture.metrics(logs).map { $0["step"] as? Int }, [1, 2, 3])

        // resume=latest skips a newest checkpoint that is not complete (cut short by a copy, say).
        let newest = try Data(contentsOf: checkpoints.url(step: 3))
        try newest.prefix(newest.count / 2).write(to: checkpoints.url(step: 5))
        r = try TrainFixture.train(base() + ["total_updates=3", "keep_checkpoint_max=3", "resume=latest"])
        XCTAssertTrue(r.stdout.contains("resume=latest: skipping \(checkpoints.url(step: 5).path): checkpoint \(checkpoints.url(step: 5).path) is truncated"), r.stdout)
        XCTAssertTrue(r.stdout.contains("resume=latest: resuming from \(checkpoints.url(step: 3).path)"), r.stdout)
        try FileManager.default.removeItem(at: checkpoints.url(step: 5))
        // Resuming and overwriting at once is a contradiction, not a silent choice.
        r = try TrainFixture.train(base() + ["total_updates=4", "model_file=\(checkpoints.url(step: 3).path)", "overwrite_output_dir=true"], status: 1)
        XCTAssertTrue(r.stderr.contains("overwrite_output_dir=true and a resume from \(checkpoints.url(step: 3).path) contradict each other"), r.stderr)

        // Way out 2: model_file= of an existing checkpoint.
        r = try TrainFixture.train(base() + ["total_updates=4", "keep_checkpoint_max=2", "model_file=\(checkpoints.url(step: 3).path)"])
        XCTAssertEqual(try checkpoints.list().map(\.step), [3, 4])

        // Way out 3: overwrite_output_dir=true deletes the earlier checkpoints; the earlier logs
        // move to log_dir/earlier-runs/<time>/, so metrics.jsonl and TensorBoard hold this run only.
        r = try TrainFixture.train(base() + ["total_updates=1", "keep_checkpoint_max=2", "overwrite_output_dir=true"])
        XCTAssertTrue(r.stdout.contains("overwrite_output_dir=true: deleted 2 checkpoint(s) of an earlier run"), r.stdout)
        XCTAssertEqual(try checkpoints.list().map(\.step), [1])
        XCTAssertEqual(try TrainFixture.metrics(logs).map { $0["step"] as? Int }, [1])
        XCTAssertEqual(try TensorBoardEventReader.eventFiles(in: logs).count, 1)
        let earlier = try FileManager.default.contentsOfDirectory(atPath: logs.appendingPathComponent("earlier-runs").path)
        XCTAssertEqual(earlier.count, 1)
        let moved = logs.appendingPathComponent("earlier-runs").appendingPathComponent(earlier[0])
        XCTAssertEqual(try TrainFixture.metrics(moved).map { $0["step"] as? Int }, [1, 2, 3, 4])

        // resume=latest with nothing to resume starts a fresh run; with model_file it is a conflict.
        r = try TrainFixture.train(base(output: "other", logs: "other-logs") + ["total_updates=1", "resume=latest"])
        XCTAssertTrue(r.stdout.contains("resume=latest: no checkpoint in output_dir="), r.stdout)
        r = try TrainFixture.train(base() + ["total_updates=2", "resume=latest", "model_file=\(checkpoints.url(step: 1).path)"], status: 1)
        XCTAssertTrue(r.stderr.contains("resume=latest and model_file=\(checkpoints.url(step: 1).path) both say where to resume from"), r.stderr)
    }

    /// Rotation never deletes the checkpoint it has just written, even when older files carry
    /// higher steps (the situation of the issue: .50 and .60 of an earlier run, a new .1).
    func testRotationKeepsTheCheckpointJustWritten() throws {
        let store = CheckpointDirectory(directory: dir.appendingPathComponent("rotation"), prefix: "dpr_biencoder")
        for step in [50, 60] {
            var writer = CheckpointWriter()
            try writer.addFloats("x", [Float(step)])
            try store.save(writer, step: step, keep: 5)
        }
        var writer = CheckpointWriter()
        try writer.addFloats("x", [1])
        let url = try store.save(writer, step: 1, keep: 2)
        XCTAssertTrue(FileManager.default.fileExists(atPath: url.path))
        XCTAssertEqual(try store.list().map(\.step), [1, 60])
    }

    // MARK: Item 6: disk space

    /// A checkpoint larger than the free space fails before anything is written, naming both
    /// sizes and the intact previous checkpoint. (The section is never read: the check comes first.)
    func testCheckpointThatCannotFitFailsBeforeWriting() throws {
        let store = CheckpointDirectory(directory: dir.appendingPathComponent("space"), prefix: "dpr_biencoder")
        var small = CheckpointWriter()
        try small.addFloats("x", [1])
        try store.save(small, step: 1, keep: 5)
        var free = statvfs()
        XCTAssertEqual(statvfs(store.directory.path, &free), 0)
        let freeBytes = Int(free.f_bavail) * Int(free.f_frsize)
        var value: Float = 0
        var huge = CheckpointWriter()
        try withUnsafePointer(to: &value) { pointer in
            try huge.addFloats("weights", unsafeBuffer: UnsafeBufferPointer(start: pointer, count: freeBytes / 4 + 1 << 28))
        }
        XCTAssertThrowsError(try store.save(huge, step: 2, keep: 5)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("cannot write checkpoint \(store.url(step: 2).path): No space left on device: the checkpoint needs "), message)
            XCTAssertTrue(message.contains(" MB are free in \(store.directory.path)"), message)
            XCTAssertTrue(message.contains("the previous checkpoint \(store.url(step: 1).path) is intact"), message)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: store.directory.path), ["dpr_biencoder.1"])
    }

    /// The resolved configuration lands in log_dir/config.yaml, and `--config` of it repeats the run.
    func testConfigYAMLRepeatsTheRun() throws {
        try TrainFixture.train(base() + ["total_updates=2", "learning_rate=3e-4", "adam_betas=(0.8,0.99)"])
        let yaml = logs.appendingPathComponent("config.yaml")
        let first = try String(contentsOf: yaml, encoding: .utf8)
        XCTAssertTrue(first.contains("learning_rate: 0.0003"), first)
        try TrainFixture.train(["--config", yaml.path] + base(output: "again", logs: "again-logs"))
        let second = try String(contentsOf: dir.appendingPathComponent("again-logs/config.yaml"), encoding: .utf8)
        func body(_ text: String) -> [Substring] {
            text.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.hasPrefix("output_dir:") && !$0.hasPrefix("log_dir:") }
        }
        XCTAssertEqual(body(first), body(second))
        XCTAssertEqual(body(first).count, TrainingConfig.parameterKeys.count - 2)
        let a = try TrainFixture.floatSections(checkpoints.url(step: 2))
        let b = try TrainFixture.floatSections(dir.appendingPathComponent("again/dpr_biencoder.2"))
        XCTAssertEqual(a, b, "the repeated run must reach the same weights")
    }

    // MARK: Item 2: the second Ctrl-C

    /// Waits until `logs/metrics.jsonl` has `lines` lines and the checkpoint of `step` exists.
    func waitForProgress(_ run: BackgroundCommand, lines: Int, checkpoint step: Int) {
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, run.isRunning {
            let count = ((try? String(contentsOf: logs.appendingPathComponent("metrics.jsonl"), encoding: .utf8)) ?? "")
                .split(separator: "\n").count
            if count >= lines, FileManager.default.fileExists(atPath: checkpoints.url(step: step).path) { return }
            usleep(20_000)
        }
        XCTFail("no progress: \(run.output)")
    }

    /// The direct children of `pid` (from /proc).
    static func children(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { child in
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == pid
        }
    }

    /// True when `pid` no longer runs (gone, or a zombie waiting to be reaped).
    static func isGone(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else {
            return true
        }
        return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
    }

    /// `train --workers 2`: the second SIGINT ends the coordinator and both workers within 2 s,
    /// says that no checkpoint is written and names the last one, and leaves no temporary file.
    func testSecondInterruptStopsEveryWorkerAtOnceNamingTheLastCheckpoint() throws {
        // Steps long enough (max_length 256, 16 x 16) that the second SIGINT lands while the step
        // the first one lets finish still runs.
        let run = try BackgroundCommand(["train", "--threads", "2", "--workers", "2"] + base()
                                            + ["total_updates=100000", "save_checkpoint_freq=2", "max_length=256",
                                               "pipeline.pos.forward_batch_size=16", "pipeline.pos.contrastive_size=16"],
                                        outputPrefix: dir.appendingPathComponent("two-workers"))
        waitForProgress(run, lines: 3, checkpoint: 2)
        let workers = Self.children(of: run.pid)
        XCTAssertEqual(workers.count, 2, "worker processes of \(run.pid): \(workers)")
        run.kill(SIGINT)
        usleep(30_000)  // two signals sent at once would merge into one
        let second = Date()
        run.kill(SIGINT)
        var everyoneGone: Double?
        while Date().timeIntervalSince(second) < 10 {
            if !run.isRunning, workers.allSatisfy(Self.isGone) { everyoneGone = Date().timeIntervalSince(second); break }
            usleep(10_000)
        }
        let seconds = try XCTUnwrap(everyoneGone, "processes still running 10 s after the second SIGINT: \(run.output)")
        XCTAssertLessThanOrEqual(seconds, 2.0, run.output)
        print("second SIGINT: coordinator and 2 workers gone after \(String(format: "%.2f", seconds)) s")
        XCTAssertEqual(run.wait(seconds: 1), 130, run.output)
        XCTAssertTrue(run.stderr.contains("interrupt (Ctrl-C): finishing the current step, then writing a checkpoint"), run.output)
        XCTAssertTrue(run.stderr.contains("second interrupt (Ctrl-C): stopping at once without a checkpoint"), run.output)
        // The named checkpoint exists and is complete; no half-written file is left.
        let named = try XCTUnwrap(run.stderr.range(of: #"The last good checkpoint is (\S+) \(resume"#, options: .regularExpression)
            .map { String(run.stderr[$0]).split(separator: " ")[5] }, run.output)
        XCTAssertNoThrow(try CheckpointFile(url: URL(fileURLWithPath: String(named))), run.output)
        XCTAssertTrue(try checkpoints.list().contains { $0.url.path == named }, run.output)
        let names = try FileManager.default.contentsOfDirectory(atPath: checkpoints.directory.path)
        XCTAssertFalse(names.contains { $0.contains(".tmp-") }, "\(names)")
    }

    /// One process: the second SIGINT exits at once (inside a step), with the message.
    func testSecondInterruptOfOneProcessExitsAtOnce() throws {
        // Steps long enough (max_length 256, 16 x 16) that the second SIGINT lands inside the step
        // the first one lets finish.
        let run = try BackgroundCommand(["train", "--threads", "1"] + base()
                                            + ["total_updates=100000", "save_checkpoint_freq=2", "max_length=256",
                                               "pipeline.pos.forward_batch_size=16", "pipeline.pos.contrastive_size=16"],
                                        outputPrefix: dir.appendingPathComponent("one"))
        waitForProgress(run, lines: 3, checkpoint: 2)
        run.kill(SIGINT)
        usleep(30_000)  // two signals sent at once would merge into one
        run.kill(SIGINT)
        let status = run.wait(seconds: 2)
        XCTAssertEqual(status, 130, run.output)
        XCTAssertTrue(run.stderr.contains("second interrupt (Ctrl-C): stopping at once without a checkpoint; the last one is "
                                          + checkpoints.directory.path + "/dpr_biencoder."), run.output)
        let names = try FileManager.default.contentsOfDirectory(atPath: checkpoints.directory.path)
        XCTAssertFalse(names.contains { $0.contains(".tmp-") }, "\(names)")
    }

    // MARK: Item 5: hard negatives

    func testDatasetsWithoutHardNegativesAreReportedWithTheirCount() throws {
        // Every demo sample: a few have no hard negatives.
        let lines = try String(contentsOf: TrainFixture.demoJSONL, encoding: .utf8).split(separator: "\n")
        let without = lines.filter { $0.contains("\"hardneg_contexts\": []") }.count
        XCTAssertGreaterThan(without, 0, "the fixture needs samples without hard negatives")
        ds = try TrainFixture.dataset(dir, samples: lines.count)
        var r = try TrainFixture.train(base() + ["train_mode=pos+hard", "bytedataset.hard.hardneg=\(ds!)",
                                                 "bytedataset.hard.randneg=\(ds!)", "total_updates=1"], status: 1)
        XCTAssertTrue(r.stderr.contains("bytedataset.hard.hardneg=\(ds!): \(without) of \(lines.count) samples have no hard negatives"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: checkpoints.directory.path + "/dpr_biencoder.1"))
        r = try TrainFixture.train(base() + ["train_mode=pos+poshard", "bytedataset.poshard=\(ds!)", "total_updates=1"])
        XCTAssertTrue(r.stderr.contains("warning: bytedataset.poshard=\(ds!): \(without) of \(lines.count) samples have no hard negatives"), r.stderr)
    }

    // MARK: Item 7: messages

    func testMessagesSayWhatToDo() throws {
        // train without arguments: every missing required parameter at once.
        var r = try Command.srdpr(["train"])
        XCTAssertEqual(r.status, 1)
        for key in ["output_dir", "pretrained_model_cfg", "bytedataset.poshard", "bytedataset.hard.hardneg", "bytedataset.hard.randneg"] {
            XCTAssertTrue(r.stderr.contains("  \(key)=..."), "\(key): \(r.stderr)")
        }
        // train_mode names the key once.
        r = try Command.srdpr(["train", "train_mode=pos+foo"])
        XCTAssertTrue(r.stderr.contains("train_mode=pos+foo: 'foo' is not a pipeline"), r.stderr)
        XCTAssertFalse(r.stderr.contains("train_mode: train_mode="), r.stderr)
        // A missing model_file lists the checkpoints that exist.
        try TrainFixture.train(base() + ["total_updates=2", "save_checkpoint_freq=1"])
        let absent = checkpoints.url(step: 7).path
        r = try TrainFixture.train(base() + ["total_updates=3", "model_file=\(absent)"], status: 1)
        XCTAssertTrue(r.stderr.contains("model_file=\(absent): no such checkpoint; the checkpoints there are: "
                                        + "\(checkpoints.url(step: 1).path), \(checkpoints.url(step: 2).path)"), r.stderr)
        // A missing absolute model directory is missing, not a Hub name.
        let nope = dir.appendingPathComponent("no-model").path
        r = try TrainFixture.train(base(output: "x", logs: "x-logs") + ["pretrained_model_cfg=\(nope)", "total_updates=1"], status: 1)
        XCTAssertTrue(r.stderr.contains("pretrained_model_cfg=\(nope): no such directory"), r.stderr)
        XCTAssertFalse(r.stderr.contains("huggingface-cli"), r.stderr)
        r = try TrainFixture.train(base(output: "y", logs: "y-logs") + ["pretrained_model_cfg=bert-base-uncased", "total_updates=1"], status: 1)
        XCTAssertTrue(r.stderr.contains("huggingface-cli download bert-base-uncased"), r.stderr)
        // encode --model of a missing path.
        r = try Command.srdpr(["encode", "--model", "/nope", "--input", "/dev/null", "--output", dir.appendingPathComponent("e").path])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("--model /nope: no such file or directory"), r.stderr)
        XCTAssertFalse(r.stderr.contains("config.json"), r.stderr)
        // A malformed corpus line: the line and the column.
        let corpus = dir.appendingPathComponent("corpus.jsonl")
        try "{\"id\": \"a\", \"text\": \"fine\"}\n{\"id\": \"b\", \"text\": \"broken}\n".write(to: corpus, atomically: true, encoding: .utf8)
        r = try Command.srdpr(["index", "--model", TrainFixture.tinyBert, "--corpus", corpus.path, "--output", dir.appendingPathComponent("idx").path])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("\(corpus.path):2: malformed JSON: "), r.stderr)
        XCTAssertTrue(r.stderr.contains("at column "), r.stderr)
        // A compatibility key that does nothing says so.
        r = try TrainFixture.train(base(output: "z", logs: "z-logs") + ["pretrained_file=/some/file", "total_updates=1"])
        XCTAssertTrue(r.stderr.contains("warning: pretrained_file=/some/file is kept only for compatibility with the original and is ignored"), r.stderr)
        // The checkpoint line says its size.
        XCTAssertTrue(r.stdout.contains(" MB; at most 5 kept)"), r.stdout)
    }

    // MARK: Item 4: the parameter reference

    /// `srdpr train --help` lists every key of the parser's table with its default and a meaning.
    func testTrainHelpListsEveryParameterWithItsDefault() throws {
        let r = try Command.srdpr(["train", "--help"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let defaults = Dictionary(uniqueKeysWithValues: TrainingConfig().keyValues().map { ($0.key, $0.value) })
        XCTAssertEqual(Set(defaults.keys), Set(TrainingConfig.parameterKeys))
        let lines = r.stdout.split(separator: "\n").map(String.init)
        for key in TrainingConfig.parameterKeys {
            let value = defaults[key]!.isEmpty ? "\"\"" : defaults[key]!
            let index = lines.firstIndex(of: "  \(key) = \(value)")
            XCTAssertNotNil(index, "train --help does not list '\(key) = \(value)'")
            if let index {
                let meaning = lines[index + 1]
                XCTAssertTrue(meaning.hasPrefix("      ") && meaning.count > 12, "\(key) has no meaning line: '\(meaning)'")
                XCTAssertFalse(meaning.contains("(no description yet)"), "\(key) needs a line in ParameterReference.swift")
            }
        }
        for key in TrainingConfig.compatibilityKeys.union(TrainingConfig.cudaKeys) {
            XCTAssertTrue(r.stdout.contains(key), "\(key) missing from the help")
        }
        XCTAssertFalse(r.stdout.contains("SPEC"), "the help must not point outside the repository")
        XCTAssertTrue(lines.contains("      compatibility only, ignored: start from pretrained_model_cfg, resume"), r.stdout)
    }
}
