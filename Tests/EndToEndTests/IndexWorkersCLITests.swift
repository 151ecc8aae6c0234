import XCTest
import Foundation
import TestSupport

/// `srdpr index --workers N` on tiny-bert: N `srdpr index-worker` children pulling shards (row
/// ranges) from this process (the coordinator of `--bind`, on loopback), merged to the bytes
/// of one process run, whatever its thread count; a child that dies is named with its log, a shard
/// that cannot be written is named, the run fails, the index does not look complete, and the rerun
/// finishes it.
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

    /// `index --workers 2` of `corpus` into `output` with its last shard's directory taken by a
    /// file (the default cut of a small corpus: about 64 shards, the last one handed out last):
    /// the run's result, the blocking file and the corpus's line count.
    func indexWithTheLastShardBlocked(_ corpus: String, _ output: String) throws -> (CommandResult, blocker: String, lineCount: Int) {
        let lineCount = try String(contentsOfFile: corpus, encoding: .utf8).split(separator: "\n").count
        let shardRows = (lineCount + 63) / 64
        let lastStart = ((lineCount - 1) / shardRows) * shardRows
        try FileManager.default.createDirectory(atPath: output + "/shards", withIntermediateDirectories: true)
        let blocker = output + "/shards/rows-\(lastStart)-\(lineCount)"
        try Data("not a directory".utf8).write(to: URL(fileURLWithPath: blocker))
        return (try index(corpus, output, ["--threads", "2", "--workers", "2"]), blocker, lineCount)
    }

    /// A shard the coordinator cannot write stops the job naming its directory; nothing looks
    /// complete; once the obstacle is gone, the rerun keeps the shards built and ends with the
    /// one-process bytes.
    func testAFailingShardIsNamedAndNothingLooksComplete() throws {
        let (corpus, qrels) = try RetrievalData.small(dir, questions: 12, distractors: 90)
        let output = dir.appendingPathComponent("idx").path
        let (r, blocker, lineCount) = try indexWithTheLastShardBlocked(corpus, output)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains(blocker), r.stderr)
        let search = try Command.srdpr(["search", "--model", Fixtures.url("tiny-bert").path, "--index", output, "--queries", qrels])
        XCTAssertNotEqual(search.status, 0)
        XCTAssertTrue(search.stderr.contains("its build stopped at row 0 of \(lineCount)"), search.stderr)
        try FileManager.default.removeItem(atPath: blocker)
        let again = try index(corpus, output, ["--threads", "2", "--workers", "2"])
        XCTAssertEqual(again.status, 0, again.stderr)
        let one = dir.appendingPathComponent("one").path
        XCTAssertEqual(try index(corpus, one, ["--threads", "1"]).status, 0)
        XCTAssertEqual(try files(one), try files(output))
    }

    /// A run killed after a shard's last chunk was recorded but before the shard was marked
    /// complete leaves every row of it (meta.json: all rows encoded, not complete): the rerun
    /// marks it complete without sending it to a worker (an empty range was sent before, and the
    /// worker asking for its next shard was taken for one that skipped its rows, CI stop 29) and
    /// ends with the one-process bytes.
    func testAShardWithEveryRowButNotMarkedCompleteIsFinishedNotResent() throws {
        let (corpus, _) = try RetrievalData.small(dir, questions: 12, distractors: 90)
        let output = dir.appendingPathComponent("idx").path
        // A first run stopped by a blocked last shard (as above) leaves the others complete.
        let (first, blocker, _) = try indexWithTheLastShardBlocked(corpus, output)
        XCTAssertNotEqual(first.status, 0)
        try FileManager.default.removeItem(atPath: blocker)
        let shards = try FileManager.default.contentsOfDirectory(atPath: output + "/shards").filter { $0.hasPrefix("rows-") }.sorted()
        var unmarked: [String] = []
        for name in shards {
            let metaURL = URL(fileURLWithPath: output + "/shards/" + name + "/meta.json")
            guard var meta = try JSONSerialization.jsonObject(with: Data(contentsOf: metaURL)) as? [String: Any],
                  meta["complete"] as? Bool == true else { continue }
            XCTAssertEqual(meta["encodedRows"] as? Int, meta["totalRows"] as? Int)
            meta["complete"] = false
            try JSONSerialization.data(withJSONObject: meta, options: [.sortedKeys]).write(to: metaURL)
            unmarked.append(name)
        }
        XCTAssertGreaterThan(unmarked.count, 1, "the first run completed shards before it stopped: \(shards)")
        let again = try index(corpus, output, ["--threads", "2", "--workers", "2"])
        XCTAssertEqual(again.status, 0, again.stderr)
        // The coordinator logs each range it sends ("(rows 12..<16)"): none empty, none of the unmarked shards.
        let sent = again.stderr.split(separator: "\n").compactMap { line -> (Int, Int)? in
            guard let open = line.range(of: "(rows "), let close = line[open.upperBound...].firstIndex(of: ")") else { return nil }
            let bounds = line[open.upperBound..<close].components(separatedBy: "..<").compactMap { Int($0) }
            return bounds.count == 2 ? (bounds[0], bounds[1]) : nil
        }
        XCTAssertFalse(sent.isEmpty, again.stderr)
        let unmarkedStarts = Set(unmarked.compactMap { Int($0.split(separator: "-")[1]) })
        for (lower, upper) in sent {
            XCTAssertLessThan(lower, upper, "an empty range was sent: \(again.stderr)")
            XCTAssertFalse(unmarkedStarts.contains(lower), "a shard with every row was sent again: \(again.stderr)")
        }
        let one = dir.appendingPathComponent("one").path
        XCTAssertEqual(try index(corpus, one, ["--threads", "1"]).status, 0)
        XCTAssertEqual(try files(one), try files(output))
    }

    /// An index-worker that dies (SIGKILL, as the OOM killer does) ends the job at once, named
    /// with the end of its log, and the other is stopped; the shards received are kept and the
    /// same command again finishes the index with the one-process bytes.
    func testAKilledWorkerIsNamedAndTheRerunFinishes() throws {
        let (corpus, _) = try RetrievalData.small(dir, questions: 12, distractors: 90)
        let output = dir.appendingPathComponent("idx").path
        let arguments = ["index", "--model", Fixtures.url("tiny-bert").path, "--corpus", corpus, "--output", output,
                         "--max-length", "64", "--chunk-rows", "4", "--threads", "2", "--workers", "2"]
        for attempt in 1...5 {
            try? FileManager.default.removeItem(atPath: output)
            let (parent, children, status) = try runKillingRank1(arguments, name: "parent-\(attempt)")
            guard children.count == 2 else { return }
            if status == 0 { continue }  // the job ended before the kill landed: try again
            XCTAssertEqual(status, 1, parent.output)
            XCTAssertTrue(parent.stderr.contains("index-worker rank 1 of 2 failed (killed by signal 9); its log \(output)/shards/index-worker-1.log ends with"),
                          parent.output)
            XCTAssertTrue(parent.stderr.contains("the finished shards are kept"), parent.output)
            if let survivor = children.first(where: { $0.rank == 0 }) {
                // /proc/PID/stat: "PID (COMMAND) STATE ..."; gone or a zombie once stopped.
                let stat = (try? String(contentsOfFile: "/proc/\(survivor.pid)/stat", encoding: .utf8)) ?? ""
                let state = stat.lastIndex(of: ")").map { close in stat[stat.index(close, offsetBy: 2)] }
                XCTAssertTrue(state == nil || state == "Z", "rank 0 (pid \(survivor.pid)) was stopped with the job")
            }
            let again = try Command.srdpr(arguments)
            XCTAssertEqual(again.status, 0, again.stderr)
            let one = dir.appendingPathComponent("one").path
            XCTAssertEqual(try index(corpus, one, ["--threads", "1"]).status, 0)
            XCTAssertEqual(try files(one), try files(output))
            return
        }
        XCTFail("in 5 attempts the job always ended before its worker was killed")
    }

    /// `srdpr encode --workers 2` through the same index-workers: one that dies (SIGKILL) ends the
    /// run at once, named with its log; nothing appears at the output paths, the complete shards
    /// stay in OUTPUT.shards/, and the same command again gives the one-process bytes.
    func testAKilledEncodeWorkerIsNamedAndTheRerunFinishes() throws {
        let (corpus, _) = try RetrievalData.small(dir, questions: 12, distractors: 300)
        let output = dir.appendingPathComponent("e.npy").path, ids = dir.appendingPathComponent("e.ids").path
        func arguments(_ output: String, _ ids: String, _ extra: [String]) -> [String] {
            ["encode", "--model", Fixtures.url("tiny-bert").path, "--input", corpus, "--output", output, "--format", "npy",
             "--ids", ids, "--max-length", "64", "--window", "4"] + extra
        }
        let one = try Command.srdpr(arguments(output + ".one", ids + ".one", ["--threads", "1"]))
        XCTAssertEqual(one.status, 0, one.stderr)
        let spread = arguments(output, ids, ["--threads", "2", "--workers", "2", "--shard-chunks", "1"])
        for attempt in 1...5 {
            try? FileManager.default.removeItem(atPath: output + ".shards")
            let (parent, children, status) = try runKillingRank1(spread, name: "encode-parent-\(attempt)")
            guard children.count == 2 else { return }
            if status == 0 { try? FileManager.default.removeItem(atPath: output); continue }  // ended before the kill landed
            XCTAssertEqual(status, 1, parent.output)
            XCTAssertTrue(parent.stderr.contains("index-worker rank 1 of 2 failed (killed by signal 9); its log \(output).shards/index-worker-1.log ends with"),
                          parent.output)
            XCTAssertTrue(parent.stderr.contains("encode: the finished shards are kept in \(output).shards"), parent.output)
            XCTAssertFalse(FileManager.default.fileExists(atPath: output), "no output after a failed run")
            XCTAssertFalse(FileManager.default.fileExists(atPath: ids), "no ids after a failed run")
            let again = try Command.srdpr(spread)
            XCTAssertEqual(again.status, 0, again.stderr)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: output)), try Data(contentsOf: URL(fileURLWithPath: output + ".one")))
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: ids)), try Data(contentsOf: URL(fileURLWithPath: ids + ".one")))
            return
        }
        XCTFail("in 5 attempts the run always ended before its worker was killed")
    }

    /// Starts `srdpr ARGUMENTS` (a `--workers 2` run) and SIGKILLs its index-worker of rank 1 as
    /// soon as it exists (before it loads the model, so before the job can end); returns the
    /// parent, its index-workers and its exit status.
    func runKillingRank1(_ arguments: [String], name: String) throws
        -> (parent: BackgroundCommand, children: [(pid: Int32, rank: Int)], status: Int32?) {
        let parent = try BackgroundCommand(arguments, outputPrefix: dir.appendingPathComponent(name))
        var children: [(pid: Int32, rank: Int)] = []
        let deadline = Date(timeIntervalSinceNow: 30)
        while children.count < 2, deadline.timeIntervalSinceNow > 0 {
            children = Self.children(of: parent.pid)
            usleep(5_000)
        }
        XCTAssertEqual(children.count, 2, parent.output)
        if let doomed = children.first(where: { $0.rank == 1 }) { kill(doomed.pid, SIGKILL) }
        return (parent, children, parent.wait(seconds: 60))
    }

    /// The `srdpr index-worker` children of `pid` and their ranks, from /proc.
    static func children(of pid: Int32) -> [(pid: Int32, rank: Int)] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> (Int32, Int)? in
            guard let child = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, Int32(fields[1]) == pid,
                  let command = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return nil }
            let arguments = command.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard arguments.contains("index-worker"), let flag = arguments.firstIndex(of: "--rank"), flag + 1 < arguments.count,
                  let rank = Int(arguments[flag + 1]) else { return nil }
            return (child, rank)
        }
    }
}
