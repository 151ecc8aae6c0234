import XCTest
import Foundation
import TestSupport

/// `srdpr index --workers N` on tiny-bert: N child processes on chunk-aligned passage ranges,
/// merged to the bytes of one process run, whatever its thread count; a child
/// that fails is named with its shard, the run fails, and the index does not look complete.
final class IndexWorkersCLITests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-index-workers") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func index(_ corpus: String, _ output: String, _ extra: [String]) throws -> CommandResult {
        try Command.srdpr(["index", "--model", Fixtures.url("tiny-bert").path, "--corpus", corpus, "--output", output,
                           "--max-length", "64", "--chunk-rows", "16"] + extra)
    }

    func files(_ index: String) throws -> [Data] {
        try ["embeddings.f32", "ids.jsonl", "meta.json"].map { try Data(contentsOf: URL(fileURLWithPath: index + "/" + $0)) }
    }

    func testTwoWorkersGiveTheOneProcessIndex() throws {
        let (corpus, _) = try RetrievalData.small(dir, questions: 12, distractors: 90)
        let one = dir.appendingPathComponent("one").path, two = dir.appendingPathComponent("two").path
        let a = try index(corpus, one, ["--threads", "1"])
        XCTAssertEqual(a.status, 0, a.stderr)
        let b = try index(corpus, two, ["--threads", "2", "--workers", "2"])
        XCTAssertEqual(b.status, 0, b.stderr)
        XCTAssertEqual(try files(one), try files(two), "embeddings.f32, ids.jsonl and meta.json byte for byte")
        XCTAssertFalse(FileManager.default.fileExists(atPath: two + "/shards"), "the shards are removed once merged")
        // One process with 2 threads: the same bytes (the forward cuts its rows over threads on
        // sgemm's row period, SgemmRowTiling; before, OpenBLAS's threads moved the last bits).
        let wide = dir.appendingPathComponent("wide").path
        let c = try index(corpus, wide, ["--threads", "2"])
        XCTAssertEqual(c.status, 0, c.stderr)
        XCTAssertEqual(try files(one)[0], try files(wide)[0], "embeddings.f32 at --threads 1 and 2")
    }

    /// The parent reads the model's fingerprint from its files without loading the weights
    /// (`ModelDescription`); the children load the model. Had the two disagreed, the merge would
    /// refuse the shards: a checkpoint (mean pooling, cosine), its export root and the export's
    /// context encoder each give the one-process index, and `search` accepts it.
    func testWorkersOnACheckpointAndItsExport() throws {
        let dataset = try TrainFixture.dataset(dir, samples: 30)
        let checkpoint = try ExportParityTests.train(dir, model: TrainFixture.tinyBert, dataset: dataset, name: "cosine",
                                                     settings: ["sim_func=cosine", "pooling=mean", "sim_scale=20"])
        let export = dir.appendingPathComponent("export")
        XCTAssertEqual(try Command.srdpr(["export", "--checkpoint", checkpoint.path, "--output", export.path]).status, 0)
        let (corpus, qrels) = try RetrievalData.small(dir, questions: 6, distractors: 40)
        for model in [checkpoint.path, export.path, export.appendingPathComponent("ctx_encoder").path] {
            func index(_ output: String, _ extra: [String]) throws -> CommandResult {
                try Command.srdpr(["index", "--model", model, "--corpus", corpus, "--output", output, "--chunk-rows", "16"] + extra)
            }
            let one = dir.appendingPathComponent("one-\(UUID().uuidString)").path, two = dir.appendingPathComponent("two-\(UUID().uuidString)").path
            let a = try index(one, ["--threads", "1"])
            XCTAssertEqual(a.status, 0, a.stderr)
            let b = try index(two, ["--threads", "2", "--workers", "2"])
            XCTAssertEqual(b.status, 0, "\(model): \(b.stderr)")
            XCTAssertEqual(try files(one), try files(two), "\(model): --workers 2 gives the one-process index")
            if model != export.appendingPathComponent("ctx_encoder").path {
                let search = try Command.srdpr(["search", "--model", model, "--index", two, "--queries", qrels])
                XCTAssertEqual(search.status, 0, search.stderr)
            }
        }
    }

    func testAFailingShardIsNamedAndNothingLooksComplete() throws {
        let (corpus, qrels) = try RetrievalData.small(dir, questions: 12, distractors: 90)
        let lineCount = try String(contentsOfFile: corpus, encoding: .utf8).split(separator: "\n").count
        let output = dir.appendingPathComponent("idx").path
        // The second shard's directory is taken by a file: its child cannot write there.
        let chunks = (lineCount + 15) / 16
        let secondStart = ((chunks + 1) / 2) * 16
        try FileManager.default.createDirectory(atPath: output + "/shards", withIntermediateDirectories: true)
        let blocker = output + "/shards/rows-\(secondStart)-\(lineCount)"
        try Data("not a directory".utf8).write(to: URL(fileURLWithPath: blocker))
        let r = try index(corpus, output, ["--threads", "2", "--workers", "2"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("index shard 2 of 2 (passages \(secondStart)..<\(lineCount)) failed (exit status 1)"), r.stderr)
        XCTAssertTrue(r.stderr.contains("rows-\(secondStart)-\(lineCount).log ends with"), r.stderr)
        let search = try Command.srdpr(["search", "--model", Fixtures.url("tiny-bert").path, "--index", output, "--queries", qrels])
        XCTAssertNotEqual(search.status, 0)
        XCTAssertTrue(search.stderr.contains("its build stopped at row 0 of \(lineCount)"), search.stderr)
        // Once the obstacle is gone, the rerun finishes (the first shard is reused) with the one-process bytes.
        try FileManager.default.removeItem(atPath: blocker)
        let again = try index(corpus, output, ["--threads", "2", "--workers", "2"])
        XCTAssertEqual(again.status, 0, again.stderr)
        let one = dir.appendingPathComponent("one").path
        XCTAssertEqual(try index(corpus, one, ["--threads", "1"]).status, 0)
        XCTAssertEqual(try files(one), try files(output))
    }
}
