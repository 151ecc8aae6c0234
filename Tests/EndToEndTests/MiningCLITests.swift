import XCTest
import Foundation
import TestSupport

/// `srdpr mine-hard-negatives` end to end: BM25 against rank-bm25 on the FAQ data, dense mining
/// against `srdpr search`, bad input; `create-dataset --from`.
final class MiningCLITests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-mining-cli") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    var faq: URL { Fixtures.sharedData.appendingPathComponent("faq") }

    func jsonLines(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func hits(_ line: [String: Any]) throws -> [(id: String, score: Double)] {
        try XCTUnwrap(line["hits"] as? [[String: Any]]).map { ($0["id"] as! String, ($0["score"] as! NSNumber).doubleValue) }
    }

    /// Must show 1: our BM25 top-100 (ids and scores) for the 523 FAQ questions against the 5,770
    /// passages equals rank-bm25's with the same analyzer, parameters and tie rule (score, then
    /// corpus order), with the defaults and with other settings.
    func testBM25EqualsRankBM25OnTheFAQ() throws {
        let python = ProcessInfo.processInfo.environment["SRDPR_PYTHON"] ?? "/usr/bin/python3"
        let check = try Command.run(URL(fileURLWithPath: python), ["-c", "import rank_bm25"])
        guard check.status == 0 else {
            return XCTFail("rank-bm25 is not installed for \(python): run scripts/setup.sh --test (or set SRDPR_PYTHON): \(check.stderr)")
        }
        let corpus = faq.appendingPathComponent("corpus.jsonl").path, samples = faq.appendingPathComponent("train.jsonl").path
        let script = Fixtures.packageRoot.appendingPathComponent("Tests/reference/bm25_reference.py").path
        for (k1, b, stop) in [("1.2", "0.75", "english"), ("0.9", "0.4", "none")] {
            let candidates = dir.appendingPathComponent("candidates-\(stop).jsonl").path
            let mined = try Command.srdpr(["mine-hard-negatives", "--bm25", "--input", samples, "--corpus", corpus,
                                           "--output", dir.appendingPathComponent("out-\(stop).jsonl").path,
                                           "--num-negatives", "5", "--range-max", "100", "--candidates", candidates,
                                           "--k1", k1, "--b", b, "--stopwords", stop])
            XCTAssertEqual(mined.status, 0, mined.stderr)
            let reference = try Command.run(URL(fileURLWithPath: python), [script, corpus, samples, "100", k1, b, stop])
            XCTAssertEqual(reference.status, 0, reference.stderr)
            let ours = try jsonLines(candidates)
            let theirs = try reference.stdout.split(separator: "\n").map {
                try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
            XCTAssertEqual(ours.count, 523)
            XCTAssertEqual(theirs.count, 523)
            var worst = 0.0, compared = 0
            for (q, (a, b)) in zip(ours, theirs).enumerated() {
                XCTAssertEqual(a["question"] as? String, b["question"] as? String)
                let x = try hits(a), y = try hits(b)
                XCTAssertEqual(x.map(\.id), y.map(\.id), "question \(q + 1), \(stop)")
                for (h, r) in zip(x, y) {
                    worst = max(worst, abs(h.score - r.score) / max(abs(r.score), 1e-30))
                    compared += 1
                }
            }
            XCTAssertLessThanOrEqual(worst, 1e-4)
            XCTAssertGreaterThan(compared, 40_000)
            print("BM25 parity (k1 \(k1), b \(b), stop words \(stop)): \(compared) hits compared, worst relative score difference \(worst)")
        }
    }

    /// The first `samples` FAQ samples, their qrels and the first `passages` passages, written to `dir`.
    func faqSlice(samples count: Int, passages: Int) throws -> (samples: String, qrels: String, corpus: String) {
        func head(_ name: String, _ lines: Int, to output: String) throws -> String {
            let path = dir.appendingPathComponent(output).path
            let text = try String(contentsOf: faq.appendingPathComponent(name), encoding: .utf8).split(separator: "\n").prefix(lines)
            try (text.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        return (try head("train.jsonl", count, to: "samples.jsonl"), try head("train_qrels.jsonl", count, to: "queries.jsonl"),
                try head("corpus.jsonl", passages, to: "corpus.jsonl"))
    }

    /// Must show 2: dense mining sees exactly the candidates `srdpr search` returns with the same model.
    func testDenseMiningCandidatesEqualSearch() throws {
        let model = Fixtures.url("tiny-bert").path
        let (samples, queries, corpus) = try faqSlice(samples: 20, passages: 400)

        let index = dir.appendingPathComponent("index").path
        let built = try Command.srdpr(["index", "--model", model, "--corpus", corpus, "--output", index, "--max-length", "64"])
        XCTAssertEqual(built.status, 0, built.stderr)
        let search = try Command.srdpr(["search", "--model", model, "--index", index, "--queries", queries, "--top-k", "50", "--max-length", "64"])
        XCTAssertEqual(search.status, 0, search.stderr)
        let candidates = dir.appendingPathComponent("candidates.jsonl").path, output = dir.appendingPathComponent("out.jsonl").path
        let mined = try Command.srdpr(["mine-hard-negatives", "--model", model, "--max-length", "64", "--input", samples,
                                       "--corpus", corpus, "--output", output, "--num-negatives", "4", "--range-max", "50",
                                       "--candidates", candidates, "--index", dir.appendingPathComponent("mine-index").path,
                                       "--qrels", queries])
        XCTAssertEqual(mined.status, 0, mined.stderr)
        let expected = try search.stdout.split(separator: "\n").map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        let got = try jsonLines(candidates)
        XCTAssertEqual(got.count, 20)
        for (a, b) in zip(got, expected) {
            XCTAssertEqual(a["question"] as? String, b["question"] as? String)
            XCTAssertEqual(try hits(a).map(\.id), try hits(b).map(\.id))
            XCTAssertEqual(try hits(a).map(\.score), try hits(b).map(\.score))
        }
        // The negatives taken are candidates, in rank order, never a positive.
        let perQuestion = try jsonLines(output + ".per-question.jsonl")
        let qrels = try jsonLines(queries)
        for ((line, candidateLine), qrel) in zip(zip(perQuestion, got), qrels) {
            let ids = try XCTUnwrap(line["negative_ids"] as? [String])
            XCTAssertEqual(ids.count, 4)
            let ranked = try hits(candidateLine).map(\.id)
            let ranks = ids.map { ranked.firstIndex(of: $0)! }
            XCTAssertEqual(ranks, ranks.sorted())
            XCTAssertTrue(Set(ids).isDisjoint(with: qrel["positive_ids"] as! [String]))
        }
    }

    /// `--workers 2`: the passage index is built by two `srdpr index-worker` children pulling shards,
    /// as `srdpr index --workers 2` builds it, and the mined samples, the
    /// per-question lines, the candidates and the index equal a one-process run's byte for byte.
    func testDenseMiningWithWorkersEqualsOneProcess() throws {
        let model = Fixtures.url("tiny-bert").path
        // 1,100 passages: 62 shards of 18 (the default on a small corpus: about 64), the last of 2.
        let (samples, qrels, corpus) = try faqSlice(samples: 16, passages: 1100)
        func mine(_ name: String, _ extra: [String]) throws -> [Data] {
            let output = dir.appendingPathComponent(name + ".jsonl").path, index = dir.appendingPathComponent(name + "-index").path
            let r = try Command.srdpr(["mine-hard-negatives", "--model", model, "--max-length", "64", "--input", samples,
                                       "--corpus", corpus, "--output", output, "--num-negatives", "4", "--range-max", "40",
                                       "--sampling", "random", "--candidates", output + ".candidates", "--index", index,
                                       "--qrels", qrels, "--report", output + ".report"] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: index + "/shards"), "the shards are removed once merged")
            return try [output, output + ".per-question.jsonl", output + ".candidates", index + "/embeddings.f32", index + "/ids.jsonl"]
                .map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        }
        // The same --threads: the questions' search (an sgemm over the index) keeps OpenBLAS's own
        // threads, which move the last bits of scores with the thread count. The index does not
        // depend on it: 2 children of 1 thread give the bytes of one process of 2.
        let one = try mine("one", ["--threads", "2"])
        let two = try mine("two", ["--threads", "2", "--workers", "2"])
        XCTAssertEqual(one.count, two.count)
        for (name, (a, b)) in zip(["samples", "per-question", "candidates", "embeddings.f32", "ids.jsonl"], zip(one, two)) {
            XCTAssertEqual(a, b, "\(name): --workers 2 differs from one process")
        }
        XCTAssertGreaterThan(one[0].count, 1000)
        let bm25 = try Command.srdpr(["mine-hard-negatives", "--bm25", "--workers", "2", "--input", samples, "--corpus", corpus,
                                      "--output", dir.appendingPathComponent("bm25.jsonl").path, "--num-negatives", "1"])
        XCTAssertNotEqual(bm25.status, 0)
        XCTAssertTrue(bm25.stderr.contains("use them with --model"), bm25.stderr)
    }

    /// `--bind ADDR --world-size 2`: the passage index is built by two `srdpr index-worker`s that
    /// connect (as a launcher starts them on the hosts of a job; here on loopback), and the mined
    /// samples, candidates and index equal a one-process run's byte for byte.
    func testDenseMiningAcrossHostsEqualsOneProcess() throws {
        let model = Fixtures.url("tiny-bert").path
        let (samples, qrels, corpus) = try faqSlice(samples: 8, passages: 300)
        let secret = dir.appendingPathComponent("secret").path
        try "mine-secret-\(UUID().uuidString)\n".write(toFile: secret, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: secret)
        func arguments(_ name: String, _ extra: [String]) -> [String] {
            let output = dir.appendingPathComponent(name + ".jsonl").path, index = dir.appendingPathComponent(name + "-index").path
            return ["mine-hard-negatives", "--model", model, "--max-length", "64", "--input", samples, "--corpus", corpus,
                    "--output", output, "--num-negatives", "4", "--range-max", "40", "--candidates", output + ".candidates",
                    "--index", index, "--qrels", qrels, "--threads", "2"] + extra
        }
        func files(_ name: String) throws -> [Data] {
            let output = dir.appendingPathComponent(name + ".jsonl").path, index = dir.appendingPathComponent(name + "-index").path
            return try [output, output + ".candidates", index + "/embeddings.f32", index + "/ids.jsonl"]
                .map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        }
        let one = try Command.srdpr(arguments("one", []))
        XCTAssertEqual(one.status, 0, one.stderr)
        let coordinator = try BackgroundCommand(arguments("hosts", ["--bind", "tcp://127.0.0.1:0", "--world-size", "2", "--secret-file", secret]),
                                                outputPrefix: dir.appendingPathComponent("coordinator"))
        var endpoint: String?
        let deadline = Date(timeIntervalSinceNow: 60)
        while endpoint == nil, coordinator.isRunning, deadline.timeIntervalSinceNow > 0 {
            endpoint = coordinator.stderr.split(separator: "\n").first(where: { $0.hasPrefix("index: listening on ") })
                .map { String($0.dropFirst("index: listening on ".count).prefix(while: { $0 != ";" })) }
            usleep(20_000)
        }
        guard let endpoint else { return XCTFail("the coordinator did not listen: \(coordinator.output)") }
        let workers = try (0..<2).map { rank in
            try BackgroundCommand(["index-worker", "--rank", String(rank), "--coordinator", endpoint, "--threads", "1", "--secret-file", secret],
                                  outputPrefix: dir.appendingPathComponent("worker\(rank)"))
        }
        XCTAssertEqual(coordinator.wait(seconds: 180), 0, coordinator.output)
        for w in workers { XCTAssertEqual(w.wait(seconds: 30), 0, w.output) }
        for (name, (a, b)) in zip(["samples", "candidates", "embeddings.f32", "ids.jsonl"], zip(try files("one"), try files("hosts"))) {
            XCTAssertEqual(a, b, "\(name): --bind differs from one process")
        }
        let refused = try Command.srdpr(arguments("refused", ["--secret-file", secret]))
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("--secret-file and --curve are for building the index across hosts (--bind)"), refused.stderr)
    }

    /// Must show 6: bad input fails naming the file and line (or the parameter) and leaves no output.
    func testBadInputNamesFileAndLineAndLeavesNoOutput() throws {
        let samples = dir.appendingPathComponent("samples.jsonl").path
        try (try String(contentsOf: faq.appendingPathComponent("train.jsonl"), encoding: .utf8).split(separator: "\n").prefix(3)
             .joined(separator: "\n") + "\n").write(toFile: samples, atomically: true, encoding: .utf8)
        let good = (0..<5).map { "{\"id\": \($0), \"title\": \"t\", \"text\": \"perl regex word \($0)\"}" }
        func mine(_ corpusLines: [String], _ extra: [String] = []) throws -> CommandResult {
            let corpus = dir.appendingPathComponent("corpus.jsonl").path
            try (corpusLines.joined(separator: "\n") + "\n").write(toFile: corpus, atomically: true, encoding: .utf8)
            return try Command.srdpr(["mine-hard-negatives", "--bm25", "--input", samples, "--corpus", corpus,
                                      "--output", dir.appendingPathComponent("out.jsonl").path, "--num-negatives", "2",
                                      "--range-max", "5"] + extra)
        }
        let corpus = dir.appendingPathComponent("corpus.jsonl").path
        let cases: [([String], [String], String)] = [
            (good + ["{\"title\": \"t\", \"text\": \"no id\"}"], [], "\(corpus):6: field \"id\" (or BEIR's \"_id\") is missing"),
            (good + ["{\"id\": 9, \"title\": \"t\"}"], [], "\(corpus):6: field \"text\" is missing or not a string"),
            (good + ["{\"id\": \"3\", \"text\": \"again\"}"], [], "\(corpus):6: duplicate passage id \"3\" (first seen on line 4)"),
            ([""], [], "cannot read \(corpus): the corpus holds no passage"),
            (good, ["--range-max", "6"], "--range-max: 6 is beyond the corpus, which holds 5 passages"),
            (good + ["{\"id\": 10, \"text\": \"cut"], [], "\(corpus):6: malformed JSON"),
        ]
        for (lines, extra, message) in cases {
            let r = try mine(lines, extra)
            XCTAssertNotEqual(r.status, 0, message)
            XCTAssertTrue(r.stderr.contains(message), "expected \(message) in: \(r.stderr)")
            let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("out.jsonl") }
            XCTAssertEqual(left, [], "no output, complete or partial, after: \(message)")
        }
        let ok = try mine(good)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(try jsonLines(dir.appendingPathComponent("out.jsonl").path).count, 3)
        let neither = try Command.srdpr(["mine-hard-negatives", "--input", samples, "--corpus", corpus, "--output", "x", "--num-negatives", "1"])
        XCTAssertNotEqual(neither.status, 0)
        XCTAssertTrue(neither.stderr.contains("give exactly one retriever"), neither.stderr)
    }

    func testCreateDatasetFromDPR() throws {
        let input = dir.appendingPathComponent("dpr.json").path
        try """
        [{"question": "q1", "answers": [], "positive_ctxs": [{"title": "t", "text": "p"}], "negative_ctxs": [], "hard_negative_ctxs": [{"title": "h", "text": "n"}]}]
        """.write(toFile: input, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("ds").path
        let r = try Command.srdpr(["create-dataset", "--from", "dpr", "--input", input, "--output-bytedataset-path", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        let shown = try Command.srdpr(["inspect-dataset", out, "--index", "0"])
        XCTAssertTrue(shown.stdout.contains("\"hardneg_contexts\": [{\"title\": \"h\", \"text\": \"n\"}]"), shown.stdout)
        let bad = try Command.srdpr(["create-dataset", "--from", "squad", "--input", input, "--output-bytedataset-path", out])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--from must be one of srdpr, dpr, tevatron, beir"), bad.stderr)
    }
}
