import XCTest
import Data
import TestSupport

/// Must show 3: each kind of bad input fails with one clear line, a non-zero exit status, and
/// no output left that looks like a valid dataset.
final class BadInputTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = try Fixtures.temporaryDirectory("srdpr-bad")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    private let good = #"{"sample_id": 1, "questions": ["q?"], "positive_contexts": [{"title": "t", "text": "p"}], "hardneg_contexts": []}"#

    /// Runs create-dataset on `jsonl`; checks failure, a one-line error containing `expected`,
    /// and that no data.pkl/idxs.pkl (nor temporary files) exist afterwards.
    private func assertConversionFails(_ jsonl: String, _ expected: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let input = dir.appendingPathComponent("input.jsonl")
        try DataTestHelpers.write(jsonl, to: input)
        let out = dir.appendingPathComponent("out.bytedataset")
        let result = try Command.srdpr(["create-dataset", "--input-jsonl-path", input.path, "--output-bytedataset-path", out.path])
        XCTAssertNotEqual(result.status, 0, "should fail", file: file, line: line)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "expected one error line, got: \(result.stderr)", file: file, line: line)
        for fragment in expected {
            XCTAssertTrue(result.stderr.contains(fragment), "'\(fragment)' not in: \(result.stderr)", file: file, line: line)
        }
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []
        XCTAssertEqual(leftovers, [], "output left behind: \(leftovers)", file: file, line: line)
    }

    func testMalformedJSONNamesTheLine() throws {
        try assertConversionFails(good + "\n" + good + "\n" + #"{"sample_id": 3, "questions": ["q"],, }"# + "\n" + good + "\n",
                                  ["input.jsonl:3:", "malformed JSON"])
    }

    func testUnterminatedStringNamesTheLine() throws {
        try assertConversionFails(good + "\n" + #"{"sample_id": 2, "questions": ["q"#, ["input.jsonl:2:", "unterminated string"])
    }

    func testMissingFieldIsNamed() throws {
        try assertConversionFails(good + "\n" + #"{"sample_id": 2, "positive_contexts": [], "hardneg_contexts": []}"#,
                                  ["input.jsonl:2:", "missing field `questions`"])
        try assertConversionFails(#"{"sample_id": 2, "questions": [], "positive_contexts": [{"text": "x"}], "hardneg_contexts": []}"#,
                                  ["input.jsonl:1:", "missing field `positive_contexts[0].title`"])
    }

    func testWrongFieldTypesAreNamed() throws {
        try assertConversionFails(#"{"sample_id": 2, "questions": "q?", "positive_contexts": [], "hardneg_contexts": []}"#,
                                  ["input.jsonl:1:", "`questions` is not a list of strings"])
        try assertConversionFails(#"{"sample_id": "2", "questions": [], "positive_contexts": [], "hardneg_contexts": []}"#,
                                  ["`sample_id` is not an integer"])
        try assertConversionFails(good + "\n" + #"{"sample_id": 2, "questions": [], "positive_contexts": [{"title": 5, "text": "x"}], "hardneg_contexts": []}"#,
                                  ["input.jsonl:2:", "`positive_contexts[0].title` is not a string"])
        try assertConversionFails(#"[1, 2]"#, ["input.jsonl:1:", "not a JSON object"])
    }

    func testEmptyInputFile() throws {
        try assertConversionFails("", ["no samples"])
        try assertConversionFails("\n  \n", ["no samples"])
    }

    func testNonExistentPaths() throws {
        let out = dir.appendingPathComponent("out")
        let missing = dir.appendingPathComponent("missing.jsonl").path
        let result = try Command.srdpr(["create-dataset", "--input-jsonl-path", missing, "--output-bytedataset-path", out.path])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains(missing) && result.stderr.contains("No such file"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "output directory created for a failed run")

        let inspect = try Command.srdpr(["inspect-dataset", dir.appendingPathComponent("nowhere").path])
        XCTAssertNotEqual(inspect.status, 0)
        XCTAssertTrue(inspect.stderr.contains("nowhere/idxs.pkl") && inspect.stderr.contains("No such file"), inspect.stderr)
    }

    func testFailedConversionKeepsAnEarlierDatasetUntouched() throws {
        let out = dir.appendingPathComponent("kept")
        let input = dir.appendingPathComponent("ok.jsonl")
        try DataTestHelpers.write(good + "\n", to: input)
        XCTAssertEqual(try Command.srdpr(["create-dataset", "--input-jsonl-path", input.path, "--output-bytedataset-path", out.path]).status, 0)
        let before = try Data(contentsOf: out.appendingPathComponent("data.pkl"))
        try DataTestHelpers.write(good + "\nnot json\n", to: input)
        XCTAssertNotEqual(try Command.srdpr(["create-dataset", "--input-jsonl-path", input.path, "--output-bytedataset-path", out.path]).status, 0)
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("data.pkl")), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path).sorted(), ["data.pkl", "idxs.pkl"])
    }

    // MARK: - bad datasets

    /// Runs inspect-dataset (count, then every index) and expects a one-line error with `expected`.
    private func assertInspectFails(_ dataset: URL, index: Int?, _ expected: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let args = ["inspect-dataset", dataset.path] + (index.map { ["--index", String($0)] } ?? [])
        let result = try Command.srdpr(args)
        XCTAssertNotEqual(result.status, 0, file: file, line: line)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr, file: file, line: line)
        for fragment in expected {
            XCTAssertTrue(result.stderr.contains(fragment), "'\(fragment)' not in: \(result.stderr)", file: file, line: line)
        }
    }

    func testCountLargerThanTheOffsetsPresent() throws {
        let pickle = try DataTestHelpers.firstFixturePickle()
        let ds = try DataTestHelpers.makeDataset(idxs: DataTestHelpers.idxs(count: 5, offsets: [0, 0]), data: pickle,
                                                 in: dir.appendingPathComponent("count"))
        try assertInspectFails(ds, index: nil, ["idxs.pkl", "declares 5 samples", "hold 2 offsets"])
        XCTAssertThrowsError(try ByteDataset(directory: ds.path)) { error in
            XCTAssertEqual(error as? ByteDatasetError,
                           .countMismatch(file: ds.path + "/idxs.pkl", declared: 5, offsetsPresent: 2, size: 16))
        }
        let short = try DataTestHelpers.makeDataset(idxs: [0, 0], data: pickle, in: dir.appendingPathComponent("short"))
        try assertInspectFails(short, index: nil, ["idxs.pkl", "too short"])
    }

    func testOffsetPastTheEndOfData() throws {
        let pickle = try DataTestHelpers.firstFixturePickle()
        let ds = try DataTestHelpers.makeDataset(idxs: DataTestHelpers.idxs(count: 2, offsets: [0, pickle.count + 10]),
                                                 data: pickle, in: dir.appendingPathComponent("offset"))
        try assertInspectFails(ds, index: 1, ["offset \(pickle.count + 10) of sample 1", "past the end of data.pkl"])
        let dataset = try ByteDataset(directory: ds.path)
        XCTAssertNoThrow(try dataset.sample(at: 0))
        XCTAssertThrowsError(try dataset.validate())
    }

    func testTruncatedPickle() throws {
        let pickle = try DataTestHelpers.firstFixturePickle()
        for cut in [1, 2, 12, 40, pickle.count / 2, pickle.count - 1] {
            let ds = try DataTestHelpers.makeDataset(idxs: DataTestHelpers.idxs(count: 1, offsets: [0]),
                                                     data: Array(pickle[0..<cut]), in: dir.appendingPathComponent("trunc\(cut)"))
            try assertInspectFails(ds, index: 0, ["data.pkl", "sample 0", "truncated pickle"])
        }
    }

    func testGlobalAndReduceAreRefusedNeverExecuted() throws {
        let marker = dir.appendingPathComponent("pwned")
        // pickle.dumps of os.system("touch <marker>") in protocol 2: GLOBAL, then REDUCE.
        var evil: [UInt8] = [0x80, 0x02] + Array("cos\nsystem\n".utf8) + [0x71, 0x00]
        let command = Array("touch \(marker.path)".utf8)
        evil += [0x58] + (0..<4).map { UInt8(truncatingIfNeeded: command.count >> (8 * $0)) } + command
        evil += [0x85, 0x52, 0x2E]  // TUPLE1 REDUCE STOP
        let ds = try DataTestHelpers.makeDataset(idxs: DataTestHelpers.idxs(count: 1, offsets: [0]), data: evil,
                                                 in: dir.appendingPathComponent("evil"))
        try assertInspectFails(ds, index: 0, ["refused pickle opcode GLOBAL at byte offset 2"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker.path), "the pickle's code ran")
        // The bytes are a working exploit: Python's pickle runs them (in this temporary directory).
        _ = try DataTestHelpers.runPython("import pickle, sys; pickle.loads(open(sys.argv[1], 'rb').read())",
                                          [ds.appendingPathComponent("data.pkl").path])
        XCTAssertTrue(FileManager.default.fileExists(atPath: marker.path), "the hand-made pickle is not what it claims")

        // REDUCE alone (callable from the stack, no import): refused at its own offset.
        let reduce: [UInt8] = [0x80, 0x04, 0x29, 0x29, 0x52, 0x2E]  // EMPTY_TUPLE EMPTY_TUPLE REDUCE STOP
        let ds2 = try DataTestHelpers.makeDataset(idxs: DataTestHelpers.idxs(count: 1, offsets: [0]), data: reduce,
                                                  in: dir.appendingPathComponent("reduce"))
        try assertInspectFails(ds2, index: 0, ["refused pickle opcode REDUCE at byte offset 4"])
    }

    func testAValidPickleThatIsNotASample() throws {
        let notSample: [UInt8] = [0x80, 0x04, 0x5D, 0x94, 0x2E]  // an empty list
        let ds = try DataTestHelpers.makeDataset(idxs: DataTestHelpers.idxs(count: 1, offsets: [0]), data: notSample,
                                                 in: dir.appendingPathComponent("list"))
        try assertInspectFails(ds, index: 0, ["sample 0 is not a sample", "not a dict"])
    }
}
