import Coordinator
import Foundation
import Model
import TestSupport
import XCTest

/// Must show 5: bad input to `srdpr train` ends with a clear message (naming the parameter, file
/// or step) and a non-zero status, never a crash; SIGINT writes a checkpoint and exits.
final class TrainBadInputTests: TrainingRunTestCase {
    override var scratchPrefix: String { "srdpr-train-bad" }

    func base(_ name: String) -> [String] {
        ["train_mode=pos", "pretrained_model_cfg=\(TrainFixture.tinyBert)", "bytedataset.pos=\(ds!)", "max_length=32",
         "pipeline.pos.forward_batch_size=4", "pipeline.pos.contrastive_size=4", "warmup_steps=0",
         "output_dir=\(dir.appendingPathComponent(name + "/ckpt").path)", "log_dir=\(dir.appendingPathComponent(name + "/logs").path)"]
    }

    /// pooling=mean and sim_scale are run settings that inference and export honour; until training
    /// honours them too, training refuses them rather than ignoring them.
    func testPoolingAndSimScaleAreNotIgnoredByTraining() throws {
        var r = try TrainFixture.train(base("pool") + ["pooling=mean", "total_updates=1"], status: 1)
        XCTAssertTrue(r.stderr.contains("pooling: training with pooling=mean is not supported yet"), r.stderr)
        r = try TrainFixture.train(base("scale") + ["sim_scale=20", "total_updates=1"], status: 1)
        XCTAssertTrue(r.stderr.contains("sim_scale: training with sim_scale=20.0 is not supported yet"), r.stderr)
    }

    func testMissingByteDatasetOfAPipelineInTrainMode() throws {
        // Not set at all.
        var r = try TrainFixture.train(base("a") + ["train_mode=pos+poshard"], status: 1)
        XCTAssertTrue(r.stderr.contains("bytedataset.poshard=...  a ByteDataset (srdpr create-dataset); train_mode=pos+poshard includes the poshard pipeline"), r.stderr)
        // Set to a directory that does not exist.
        let missing = dir.appendingPathComponent("nope").path
        r = try TrainFixture.train(base("b") + ["train_mode=pos+hard", "bytedataset.hard.hardneg=\(ds!)", "bytedataset.hard.randneg=\(missing)"], status: 1)
        XCTAssertTrue(r.stderr.contains("bytedataset.hard.randneg=\(missing): no such directory"), r.stderr)
        // A directory that is not a ByteDataset.
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        r = try TrainFixture.train(base("c") + ["bytedataset.pos=\(empty.path)"], status: 1)
        XCTAssertTrue(r.stderr.contains("bytedataset.pos=\(empty.path): the directory has no idxs.pkl"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("a/ckpt/dpr_biencoder.1").path))
    }

    func testUnknownPipelineName() throws {
        let r = try TrainFixture.train(base("a") + ["train_mode=pos+hardneg"], status: 1)
        XCTAssertTrue(r.stderr.contains("'hardneg' is not a pipeline; use names from inbatch, pos, poshard, hard"), r.stderr)
    }

    func testOutputDirNotWritable() throws {
        let file = dir.appendingPathComponent("a-file")
        try "x".write(to: file, atomically: true, encoding: .utf8)
        var r = try TrainFixture.train(base("a") + ["output_dir=\(file.path)/checkpoints"], status: 1)
        XCTAssertTrue(r.stderr.contains("output_dir=\(file.path)/checkpoints is not writable: \(file.path) is a file"), r.stderr)
        r = try TrainFixture.train(base("b") + ["output_dir=\(file.path)"], status: 1)
        XCTAssertTrue(r.stderr.contains("output_dir=\(file.path) is not writable: it is a file, not a directory"), r.stderr)
    }

    /// A checkpoint cut short, or with one flipped byte, is refused on resume (and by export)
    /// with a message naming the file; nothing is trained from it.
    func testTruncatedOrCorruptCheckpointIsRefused() throws {
        try TrainFixture.train(base("a") + ["total_updates=2", "save_checkpoint_freq=2"])
        let good = dir.appendingPathComponent("a/ckpt/dpr_biencoder.2")
        let bytes = try Data(contentsOf: good)

        let truncated = dir.appendingPathComponent("truncated.2")
        try bytes.prefix(bytes.count / 2).write(to: truncated)
        var r = try TrainFixture.train(base("b") + ["total_updates=4", "model_file=\(truncated.path)"], status: 1)
        XCTAssertTrue(r.stderr.contains("checkpoint \(truncated.path) is truncated"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("b/ckpt/dpr_biencoder.4").path))

        var flipped = bytes
        flipped[bytes.count / 3] ^= 0x40
        let corrupt = dir.appendingPathComponent("corrupt.2")
        try flipped.write(to: corrupt)
        r = try TrainFixture.train(base("c") + ["total_updates=4", "model_file=\(corrupt.path)"], status: 1)
        XCTAssertTrue(r.stderr.contains("checkpoint \(corrupt.path) is corrupt: checksum mismatch in section"), r.stderr)
        r = try Command.srdpr(["export", "--checkpoint", corrupt.path, "--output", dir.appendingPathComponent("export").path])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("checksum mismatch"), r.stderr)

        r = try TrainFixture.train(base("d") + ["total_updates=4", "model_file=\(dir.appendingPathComponent("absent.2").path)"], status: 1)
        XCTAssertTrue(r.stderr.contains("absent.2"), r.stderr)
    }

    /// A loss that turns NaN stops training with a message naming the step; the weights of that
    /// step are not applied and the last good checkpoint stays, and loads.
    func testNaNLossStopsNamingTheStepAndKeepsTheLastGoodCheckpoint() throws {
        // A learning rate of 1e30 blows the weights up after the first update.
        let r = try TrainFixture.train(base("a") + ["learning_rate=1e30", "total_updates=10", "save_checkpoint_freq=1"], status: 1)
        XCTAssertTrue(r.stderr.contains("training stopped: step 2 (pos pipeline): the loss is"), r.stderr)
        XCTAssertTrue(r.stderr.contains("nan") || r.stderr.contains("inf"), r.stderr)
        let last = dir.appendingPathComponent("a/ckpt/dpr_biencoder.1")
        XCTAssertTrue(r.stderr.contains("The last good checkpoint is \(last.path)"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("a/ckpt/dpr_biencoder.2").path))
        let state = try CheckpointFile(url: last).json(TrainingCheckpoint.stateSection, as: TrainerState.self)
        XCTAssertEqual(state.step, 1)
        XCTAssertTrue(state.lossHistory["pos"]?.allSatisfy(\.isFinite) ?? false)
    }

    /// Ctrl-C: the run finishes its current update, writes a checkpoint of it, says where, and exits 130.
    func testSIGINTWritesACheckpointAndExits() throws {
        let logs = dir.appendingPathComponent("a/logs")
        let process = Process()
        process.executableURL = Command.srdprBinary
        process.arguments = ["train", "--threads", "1"] + base("a") + ["total_updates=100000", "save_checkpoint_freq=100000"]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Wait for a few updates to be logged.
        let deadline = Date().addingTimeInterval(120)
        var lines = 0
        while Date() < deadline {
            lines = ((try? String(contentsOf: logs.appendingPathComponent("metrics.jsonl"), encoding: .utf8)) ?? "")
                .split(separator: "\n").count
            if lines >= 3 { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertGreaterThanOrEqual(lines, 3)
        process.interrupt()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 130, stdout + stderr)
        let checkpoints = try CheckpointDirectory(directory: dir.appendingPathComponent("a/ckpt"), prefix: "dpr_biencoder").list()
        XCTAssertEqual(checkpoints.count, 1, stdout)
        let step = try XCTUnwrap(checkpoints.first).step
        XCTAssertTrue(stdout.contains("interrupted (Ctrl-C): checkpoint \(checkpoints[0].url.path) written at step \(step)"), stdout)
        // The checkpoint is complete and matches the log: every logged update is in it.
        let state = try CheckpointFile(url: checkpoints[0].url).json(TrainingCheckpoint.stateSection, as: TrainerState.self)
        XCTAssertEqual(state.step, step)
        XCTAssertEqual(try TrainFixture.metrics(logs).count, step)
        XCTAssertGreaterThanOrEqual(step, 3)
    }
}
