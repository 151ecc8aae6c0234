import XCTest
import Data
import Retrieval
import TestSupport

final class BM25IndexTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-bm25") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func write(_ name: String, _ lines: [String]) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testAnalyzer() throws {
        let none = try TextAnalyzer.named("none"), english = try TextAnalyzer.named("english")
        XCTAssertEqual(none.terms("How do I use $_ in Perl's __FILE__? 3.14, x2"),
                       ["how", "do", "i", "use", "in", "perl", "s", "file", "3", "14", "x2"])
        XCTAssertEqual(english.terms("The cat is on the mat, and it is THE cat"), ["cat", "mat", "cat"])
        // Unicode: letters, marks and digits of any script; each character lower-cased alone.
        XCTAssertEqual(none.terms("Ünïcode ΣΑΣ straße e\u{301}té ٣٤ İ"), ["ünïcode", "σασ", "straße", "e\u{301}té", "٣٤", "i\u{307}"])
        XCTAssertEqual(english.terms(title: "The title", text: "and the text"), ["title", "text"])
        let file = try write("stop.txt", ["Foo", "bar baz", ""])
        XCTAssertEqual(try TextAnalyzer.named(file).stopWords, ["foo", "bar", "baz"])
        XCTAssertThrowsError(try TextAnalyzer.named(dir.appendingPathComponent("missing").path))
    }

    let lines = [
        "{\"id\": \"a\", \"title\": \"Cats\", \"text\": \"cats purr and cats sleep\"}",
        "{\"id\": 0, \"title\": \"Dogs\", \"text\": \"dogs bark\"}",
        "",
        "{\"id\": 1, \"text\": \"a cat and a dog\"}",
        "{\"id\": \"d\", \"title\": \"\", \"text\": \"nothing in common\"}",
        "{\"id\": \"e\", \"title\": \"Cats\", \"text\": \"cats purr and cats sleep\"}",
    ]

    func testSearchByHand() throws {
        let corpus = try write("corpus.jsonl", lines)
        let directory = dir.appendingPathComponent("idx").path
        try BM25IndexBuilder.build(corpusPath: corpus, directory: directory, analyzer: try .named("english"))
        let index = try BM25Index(directory: directory)
        XCTAssertEqual(index.passageCount, 5)
        XCTAssertEqual(index.meta.totalTerms, 5 + 3 + 2 + 2 + 5)
        XCTAssertEqual(index.documentFrequency("cats"), 2)
        XCTAssertEqual(index.documentFrequency("the"), 0)
        let p = BM25Parameters(k1: 1.2, b: 0.75)
        let hits = index.search(questions: [["cats", "dog"]], k: 10, parameters: p)[0]
        // By hand: N = 5, avgdl = 17 / 5; "dogs" is not "dog", nor "cat" "cats" (no stemming).
        func idf(_ df: Double) -> Double { log(1 + (5 - df + 0.5) / (df + 0.5)) }
        func part(_ tf: Double, _ dl: Double) -> Double { tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * dl / 3.4)) }
        let catsRow = idf(2) * part(3, 5), dogRow = idf(1) * part(1, 2)
        XCTAssertEqual(hits.map(\.row), [2, 0, 4])      // rows 0 and 4 tie: corpus order
        XCTAssertEqual(hits[0].score, dogRow, accuracy: 1e-12)
        XCTAssertEqual(hits[1].score, catsRow, accuracy: 1e-12)
        XCTAssertEqual(hits[2].score, catsRow, accuracy: 1e-12)
        XCTAssertEqual(try index.passage(row: 2), CorpusRecord(id: "1", title: "", text: "a cat and a dog"))
        XCTAssertEqual(try index.passage(row: 1).id, "0")
        // The score of a passage given by its terms equals search's.
        XCTAssertEqual(index.score(question: ["cats", "dog"], passageTerms: index.analyzer.terms(title: "Cats", text: "cats purr and cats sleep"), parameters: p),
                       hits[1].score)
        XCTAssertEqual(index.search(questions: [["cats"]], k: 1, parameters: p)[0].map(\.row), [0])
        XCTAssertEqual(index.search(questions: [["cats", "cats"]], k: 1, parameters: p)[0][0].score, 2 * catsRow, accuracy: 1e-12)
        XCTAssertEqual(index.search(questions: [["unknown"]], k: 3, parameters: p)[0], [])
        // Rebuilding a complete index does nothing (the corpus named by another path to the same
        // file is the same corpus); a changed corpus is refused.
        try BM25IndexBuilder.build(corpusPath: dir.path + "/./corpus.jsonl", directory: directory, analyzer: try .named("english"))
        XCTAssertTrue(index.meta.corpusPath.hasPrefix("/"))
        _ = try write("corpus.jsonl", lines + ["{\"id\": \"f\", \"text\": \"more\"}"])
        XCTAssertThrowsError(try BM25Index(directory: directory))
        XCTAssertThrowsError(try BM25IndexBuilder.build(corpusPath: corpus, directory: directory, analyzer: try .named("english")))
    }

    func testResumeFromACheckpointGivesTheSameIndex() throws {
        var many: [String] = []
        for i in 0..<50 { many.append("{\"id\": \(i), \"text\": \"word\(i % 7) common w\(i % 3) w\(i % 3) x\(i)\"}") }
        let corpus = try write("corpus.jsonl", many)
        let full = dir.appendingPathComponent("full").path
        try BM25IndexBuilder.build(corpusPath: corpus, directory: full, analyzer: try .named("none"))
        // A build that stops after its second checkpoint: keep copies of its files at that moment.
        let partial = dir.appendingPathComponent("partial").path
        let snapshot = dir.appendingPathComponent("snapshot").path
        try FileManager.default.createDirectory(atPath: snapshot, withIntermediateDirectories: true)
        try BM25IndexBuilder.build(corpusPath: corpus, directory: partial, analyzer: try .named("none"), checkpointRows: 10) { p in
            if p.stage == "postings" && p.done == 20 {
                for name in try! FileManager.default.contentsOfDirectory(atPath: partial) {
                    try? FileManager.default.removeItem(atPath: snapshot + "/" + name)
                    try! FileManager.default.copyItem(atPath: partial + "/" + name, toPath: snapshot + "/" + name)
                }
            }
        }
        var meta = try BM25Index.readMeta(snapshot)
        XCTAssertEqual(meta.stage, "postings")
        try BM25IndexBuilder.build(corpusPath: corpus, directory: snapshot, analyzer: try .named("none"), checkpointRows: 10) { p in
            if p.stage == "postings" { XCTAssertGreaterThanOrEqual(p.done, 20) }
        }
        meta = try BM25Index.readMeta(snapshot)
        XCTAssertEqual(meta.stage, "complete")
        for name in ["postings.bin", "postings.u64", "terms.bytes", "terms.u64", "rows.u64", "lengths.u32"] {
            XCTAssertEqual(FileManager.default.contents(atPath: full + "/" + name), FileManager.default.contents(atPath: snapshot + "/" + name), name)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: snapshot + "/cursors.u64"))
    }

    func testBadCorpora() throws {
        let analyzer = try TextAnalyzer.named("english")
        func buildError(_ lines: [String]) throws -> String {
            let corpus = try write("bad.jsonl", lines)
            let directory = dir.appendingPathComponent("bad-\(UUID().uuidString)").path
            do {
                try BM25IndexBuilder.build(corpusPath: corpus, directory: directory, analyzer: analyzer)
                return "no error"
            } catch { return "\(error)" }
        }
        let path = dir.appendingPathComponent("bad.jsonl").path
        XCTAssertEqual(try buildError(["{\"id\": 1, \"text\": \"a\"}", "{\"id\": 2}"]), "\(path):2: field \"text\" is missing or not a string")
        XCTAssertEqual(try buildError(["{\"text\": \"a\"}"]), "\(path):1: field \"id\" (or BEIR's \"_id\") is missing")
        XCTAssertEqual(try buildError(["{\"id\": 7, \"text\": \"a\"}", "{\"id\": \"x\", \"text\": \"b\"}", "{\"id\": \"7\", \"text\": \"c\"}"]),
                       "\(path):3: duplicate passage id \"7\" (first seen on line 1); ids must be unique")
        XCTAssertEqual(try buildError(["", "  "]), "cannot read \(path): the corpus holds no passage (an empty file or only blank lines)")
    }
}
