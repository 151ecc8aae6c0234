import Coordinator
import Foundation
import Model
import TestSupport
import XCTest

/// Shared set-up of the `srdpr train` tests: ByteDatasets made from the demo data with
/// `srdpr create-dataset`, runs of the CLI, and reading metrics.jsonl and checkpoints back.
enum TrainFixture {
    static let tinyBert = Fixtures.url("tiny-bert").path

    /// The demo's real FAQ samples (demo/data), or the shared copy they come from.
    static var demoJSONL: URL {
        let shipped = Fixtures.packageRoot.appendingPathComponent("demo/data/faq-train.jsonl")
        if FileManager.default.fileExists(atPath: shipped.path) { return shipped }
        return Fixtures.sharedData.appendingPathComponent("faq/train.jsonl")
    }

    /// A ByteDataset of the first `samples` demo samples, in `dir`.
    static func dataset(_ dir: URL, samples: Int) throws -> String {
        let lines = try String(contentsOf: demoJSONL, encoding: .utf8).split(separator: "\n").prefix(samples)
        let jsonl = dir.appendingPathComponent("faq-\(samples).jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: jsonl, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("faq-\(samples).bytedataset")
        let r = try Command.srdpr(["create-dataset", "--input-jsonl-path", jsonl.path, "--output-bytedataset-path", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        return out.path
    }

    /// Runs `srdpr train` and fails the test with its output when the exit status is not `status`.
    @discardableResult
    static func train(_ parameters: [String], status: Int32 = 0, file: StaticString = #filePath, line: UInt = #line) throws -> CommandResult {
        let r = try Command.srdpr(["train", "--threads", "2"] + parameters)
        XCTAssertEqual(r.status, status, "srdpr train exited with \(r.status)\nstdout:\n\(r.stdout)\nstderr:\n\(r.stderr)", file: file, line: line)
        return r
    }

    /// The records of `logDir/metrics.jsonl`.
    static func metrics(_ logDir: URL) throws -> [[String: Any]] {
        let text = try String(contentsOf: logDir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    /// A ByteDataset (in `dir`) of the first 60 demo samples that have hard negatives: the hard
    /// pipeline takes its "positive" from them. The multi-process tests' data.
    static func hardNegativeDataset(_ dir: URL) throws -> String {
        let out = dir.appendingPathComponent("hardneg.bytedataset").path
        if FileManager.default.fileExists(atPath: out) { return out }
        let lines = try String(contentsOf: demoJSONL, encoding: .utf8).split(separator: "\n")
            .filter { !$0.contains("\"hardneg_contexts\": []") && !$0.contains("\"hardneg_contexts\":[]") }.prefix(60)
        let jsonl = dir.appendingPathComponent("hardneg.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: jsonl, atomically: true, encoding: .utf8)
        let r = try Command.srdpr(["create-dataset", "--input-jsonl-path", jsonl.path, "--output-bytedataset-path", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        return out
    }

    /// The multi-process tests' job: pos+poshard+hard on `dataset`, tiny-bert, dropout 0, `updates`
    /// updates, checkpoints and logs under `run`.
    static func multiWorkerParameters(dataset ds: String, run: URL, updates: Int, checkpointEvery: Int) -> [String] {
        [
            "train_mode=pos+poshard+hard", "pretrained_model_cfg=\(tinyBert)",
            "bytedataset.pos=\(ds)", "bytedataset.poshard=\(ds)", "bytedataset.hard.hardneg=\(ds)", "bytedataset.hard.randneg=\(ds)",
            "pipeline.pos.forward_batch_size=5", "pipeline.pos.contrastive_size=4",
            "pipeline.poshard.forward_batch_size=4", "pipeline.poshard.contrastive_size=2",
            "pipeline.hard.forward_batch_size=3", "pipeline.hard.contrastive_size=3",
            "dropout=0", "max_length=64", "learning_rate=1e-4", "warmup_steps=0", "loss_scale=1.0",
            "total_updates=\(updates)", "save_checkpoint_freq=\(checkpointEvery)", "keep_checkpoint_max=10", "log_batch_step=1",
            "output_dir=\(run.appendingPathComponent("checkpoints").path)", "log_dir=\(run.appendingPathComponent("logs").path)",
        ]
    }

    /// Every float section of a checkpoint (weights and optimizer moments), by name.
    static func floatSections(_ url: URL) throws -> [String: [Float]] {
        let file = try CheckpointFile(url: url)
        var out: [String: [Float]] = [:]
        for name in file.names where (try? file.floatCount(name)) != nil { out[name] = try file.floats(name) }
        return out
    }
}

/// A test case with a scratch directory and a ByteDataset of the first 30 demo samples in it.
class TrainingRunTestCase: XCTestCase {
    var dir: URL!
    var ds: String!
    /// Prefix of the scratch directory's name.
    var scratchPrefix: String { "srdpr-train" }

    override func setUpWithError() throws {
        dir = try Fixtures.temporaryDirectory(scratchPrefix)
        ds = try TrainFixture.dataset(dir, samples: 30)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }
}

final class TrainSupportTests: XCTestCase {
    /// The fixture itself: the demo data converts and has what the pipelines need.
    func testDemoDataConverts() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let ds = try TrainFixture.dataset(dir, samples: 20)
        XCTAssertTrue(FileManager.default.fileExists(atPath: ds + "/idxs.pkl"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: ds + "/data.pkl"))
    }
}
