import XCTest
import Data
import Retrieval
import TestSupport

/// `create-dataset --from dpr|tevatron|beir` writes the ByteDataset the equivalent SR-DPR JSON
/// lines give, byte for byte; bad files are refused naming the line, leaving no dataset.
final class TrainingDataImporterTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-import") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func write(_ name: String, _ text: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// The ByteDataset of the same samples written as SR-DPR JSON lines.
    func reference(_ samples: [Sample]) throws -> String {
        let jsonl = try write("reference-\(UUID().uuidString).jsonl", samples.map(SampleJSON.line(for:)).joined(separator: "\n") + "\n")
        let out = dir.appendingPathComponent("reference-\(UUID().uuidString)").path
        _ = try ByteDatasetConverter.convert(jsonlPath: jsonl, outputDirectory: out)
        return out
    }

    func assertSameDataset(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) {
        for name in ["data.pkl", "idxs.pkl"] {
            let x = FileManager.default.contents(atPath: a + "/" + name), y = FileManager.default.contents(atPath: b + "/" + name)
            XCTAssertNotNil(x, name, file: file, line: line)
            XCTAssertEqual(x, y, "\(name) differs", file: file, line: line)
        }
    }

    let expected = [
        Sample(sampleID: 0, questions: [.text("who wrote perl?")],
               positiveContexts: [Passage(title: "Perl", text: "Larry Wall wrote \"Perl\".\nIn 1987.")],
               hardnegContexts: [Passage(title: "Python", text: "Guido wrote Python"), Passage(title: "", text: "no title")]),
        Sample(sampleID: 1, questions: [.text("what is debian? é ü {[")],
               positiveContexts: [Passage(title: "Debian", text: "an OS ] } \\ done"), Passage(title: "D2", text: "second")],
               hardnegContexts: []),
    ]

    let dprText = """
    [
      {
        "dataset": "test", "question": "who wrote perl?", "answers": ["Larry Wall"],
        "positive_ctxs": [{"title": "Perl", "text": "Larry Wall wrote \\"Perl\\".\\nIn 1987.", "score": 1000, "passage_id": "1"}],
        "negative_ctxs": [{"title": "Random", "text": "random negative"}],
        "hard_negative_ctxs": [{"title": "Python", "text": "Guido wrote Python", "passage_id": 0}, {"text": "no title"}]
      },
      {"question": "what is debian? é ü {[", "answers": [], "positive_ctxs": [{"title": "Debian", "text": "an OS ] } \\\\ done"}, {"title": "D2", "text": "second"}],
       "negative_ctxs": []}
    ]
    """

    func testDPRMatchesSRDPRJSONLines() throws {
        let path = try write("dpr.json", dprText)
        let out = dir.appendingPathComponent("dpr").path
        let summary = try TrainingDataImporter.importDPR(path: path, outputDirectory: out)
        XCTAssertEqual(summary.samples, 2)
        let dataset = try ByteDataset(directory: out)
        XCTAssertEqual(try (0..<dataset.count).map { try dataset.sample(at: $0) }, expected)
        assertSameDataset(out, try reference(expected))
    }

    func testDPRBadFilesNameTheLine() throws {
        func importError(_ text: String) throws -> String {
            let path = try write("bad.json", text)
            let out = dir.appendingPathComponent("bad-\(UUID().uuidString)").path
            do { _ = try TrainingDataImporter.importDPR(path: path, outputDirectory: out); return "no error" } catch {
                XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/data.pkl"))
                XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/idxs.pkl"))
                return "\(error)".replacingOccurrences(of: dir.path + "/", with: "")
            }
        }
        // Cut in the middle of the second sample.
        let cut = String(dprText[..<dprText.range(of: "second")!.lowerBound])
        XCTAssertEqual(try importError(cut), "bad.json:8: the file ends inside the sample that starts here (a truncated file?)")
        XCTAssertEqual(try importError("[{\"question\": \"q\", \"positive_ctxs\": []},"), "bad.json:1: the file ends before the list is closed with ']' (a truncated file?)")
        XCTAssertEqual(try importError("[\n{\"question\": \"q\"}]"), "bad.json:2: the sample has no \"positive_ctxs\" list")
        XCTAssertEqual(try importError("[\n\n{\"positive_ctxs\": []}]"), "bad.json:3: the sample has no \"question\" string")
        XCTAssertEqual(try importError("[{\"question\": \"q\", \"positive_ctxs\": [{\"title\": \"t\"}]}]"), "bad.json:1: \"positive_ctxs\"[0] has no \"text\" string")
        XCTAssertEqual(try importError("{\"question\": \"q\"}"), "bad.json:1: expected a JSON list ('[') of DPR samples")
        XCTAssertEqual(try importError("[]"), "cannot read bad.json: the list holds no sample")
        XCTAssertEqual(try importError(""), "bad.json:1: the file is empty; expected a JSON list of DPR samples")
        XCTAssertTrue(try importError("[{\"question\": \"q\", \"positive_ctxs\": [}]").hasPrefix("bad.json:1: malformed JSON"))
    }

    func testTevatronMatchesSRDPRJSONLines() throws {
        let path = try write("tevatron.jsonl", """
            {"query_id": "12", "query": "who wrote perl?", "positive_passages": [{"docid": "1", "title": "Perl", "text": "Larry Wall wrote \\"Perl\\".\\nIn 1987."}], "negative_passages": [{"docid": "2", "title": "Python", "text": "Guido wrote Python"}, {"docid": "3", "text": "no title"}]}

            {"query_id": "13", "query": "what is debian? é ü {[", "positive_passages": [{"docid": "4", "title": "Debian", "text": "an OS ] } \\\\ done"}, {"docid": "5", "title": "D2", "text": "second"}], "negative_passages": []}

            """)
        let out = dir.appendingPathComponent("tevatron").path
        XCTAssertEqual(try TrainingDataImporter.importTevatron(path: path, outputDirectory: out).samples, 2)
        assertSameDataset(out, try reference(expected))
        let bad = try write("bad.jsonl", "{\"query\": \"q\", \"positive_passages\": []}\n{\"positive_passages\": []}\n")
        XCTAssertThrowsError(try TrainingDataImporter.importTevatron(path: bad, outputDirectory: dir.appendingPathComponent("bad").path)) {
            XCTAssertEqual("\($0)", "\(bad):2: field \"query\" is missing or not a string")
        }
    }

    func testBEIRMatchesSRDPRJSONLines() throws {
        let beir = dir.appendingPathComponent("beir").path
        _ = try write("beir/corpus.jsonl", """
            {"_id": "d1", "title": "Perl", "text": "Larry Wall wrote \\"Perl\\".\\nIn 1987."}
            {"_id": 0, "title": "Debian", "text": "an OS ] } \\\\ done"}
            {"_id": "d3", "title": "D2", "text": "second"}
            {"_id": "d4", "title": "Other", "text": "not relevant"}

            """)
        _ = try write("beir/queries.jsonl", """
            {"_id": "q1", "text": "who wrote perl?"}
            {"_id": 2, "text": "what is debian? é ü {["}
            {"_id": "q3", "text": "no relevant passage in the corpus"}
            {"_id": "q4", "text": "not in the qrels"}

            """)
        _ = try write("beir/qrels/train.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n2\t0\t2\n2\td4\t0\nq3\tgone\t1\n2\td3\t1\nq9\td1\t1\n")
        let out = dir.appendingPathComponent("beir-out").path
        let summary = try TrainingDataImporter.importBEIR(directory: beir, split: "train", outputDirectory: out)
        XCTAssertEqual(summary.samples, 2)
        XCTAssertEqual(summary.missingPassages, 1)
        XCTAssertEqual(summary.skippedQueries, 1)
        XCTAssertEqual(summary.missingQueries, 1)
        var withoutNegatives = expected
        withoutNegatives[0].hardnegContexts = []
        assertSameDataset(out, try reference(withoutNegatives))
        XCTAssertThrowsError(try TrainingDataImporter.importBEIR(directory: beir, split: "test", outputDirectory: out)) {
            XCTAssertTrue("\($0)".contains("qrels/test.tsv: no such file"), "\($0)")
        }
        _ = try write("beir/qrels/dev.tsv", "query-id\tcorpus-id\tscore\nq1 d1 1\n")
        XCTAssertThrowsError(try TrainingDataImporter.importBEIR(directory: beir, split: "dev", outputDirectory: out)) {
            XCTAssertEqual("\($0)", "\(beir)/qrels/dev.tsv:2: expected query-id<TAB>corpus-id<TAB>score")
        }
    }
}
