import XCTest
import Data
import TestSupport

/// Must show 2: `srdpr create-dataset` writes what the original writes.
final class CreateDatasetTests: XCTestCase {
    /// Loads every sample of a ByteDataset with Python's pickle the way the original reader does
    /// and compares with `json.loads` of the source lines.
    static let pythonCompare = """
    import json, pickle, sys
    src, ds = sys.argv[1], sys.argv[2]
    lines = [json.loads(l) for l in open(src, encoding='utf-8') if l.strip()]
    idxs = open(ds + '/idxs.pkl', 'rb'); data = open(ds + '/data.pkl', 'rb')
    n = int.from_bytes(idxs.read(4), 'big')
    assert n == len(lines), (n, len(lines))
    for i in range(n):
        idxs.seek(4 + 6 * i); data.seek(int.from_bytes(idxs.read(6), 'big'))
        got = pickle.load(data)
        assert json.dumps(got) == json.dumps(lines[i]), i   # NaN-safe equality, key order included
        assert pickle.dumps(got, protocol=4) == pickle.dumps(lines[i], protocol=4), i
    print('OK', n)
    """

    func testCreateDatasetMatchesTheOriginalOnTheFixture() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("not/yet/there")  // a missing directory is created
        let source = Fixtures.url("pipelines/all.jsonl")
        let result = try Command.srdpr(["create-dataset", "--input-jsonl-path", source.path,
                                        "--output-bytedataset-path", out.path])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("37 samples"), result.stdout)

        let idxs = try Data(contentsOf: out.appendingPathComponent("idxs.pkl"))
        XCTAssertEqual(idxs, try Data(contentsOf: Fixtures.url("pipelines/all.bytedataset/idxs.pkl")), "idxs.pkl differs")
        // Stronger than required: data.pkl is byte-identical too.
        let data = try Data(contentsOf: out.appendingPathComponent("data.pkl"))
        XCTAssertEqual(data, try Data(contentsOf: Fixtures.url("pipelines/all.bytedataset/data.pkl")), "data.pkl differs")

        let python = try DataTestHelpers.runPython(Self.pythonCompare, [source.path, out.path])
        XCTAssertEqual(python.trimmingCharacters(in: .whitespacesAndNewlines), "OK 37")
        // No temporary files left beside the dataset.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path).sorted(), ["data.pkl", "idxs.pkl"])
    }

    /// Frames, payloads over 64 KiB, escapes and surrogates, big ints, floats, NaN, extra keys,
    /// key orders, lists over 1000 items, pre-tokenized fields: byte-identical to `pickle.dumps`.
    func testTrickyInputIsByteIdenticalToPythonPickle() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("tricky.jsonl")
        _ = try DataTestHelpers.runPython(Self.trickyGenerator, [source.path])
        let out = dir.appendingPathComponent("tricky.bytedataset")
        let result = try Command.srdpr(["create-dataset", "--input-jsonl-path", source.path,
                                        "--output-bytedataset-path", out.path])
        XCTAssertEqual(result.status, 0, result.stderr)
        let check = """
        import json, pickle, sys
        lines = [json.loads(l) for l in open(sys.argv[1], encoding='utf-8') if l.strip()]
        expected = b''.join(pickle.dumps(s, protocol=4) for s in lines)
        got = open(sys.argv[2] + '/data.pkl', 'rb').read()
        print('identical' if got == expected else 'DIFFERENT', len(lines))
        """
        let python = try DataTestHelpers.runPython(check, [source.path, out.path])
        XCTAssertEqual(python.trimmingCharacters(in: .whitespacesAndNewlines), "identical 7")
        // And our reader reads those samples back.
        let dataset = try ByteDataset(directory: out.path)
        XCTAssertEqual(dataset.count, 7)
        XCTAssertEqual(try dataset.sample(at: 2).questions.first, .tokenIDs(Array(0..<1200)))
        XCTAssertEqual(try dataset.sample(at: 3).positiveContexts[0].text, .text("b"))
        guard case .list(let positives) = try dataset.value(at: 1)["positive_contexts"] else { return XCTFail("no list") }
        XCTAssertEqual(positives.first?["text"], .string(String(repeating: "y", count: 70000)))
        // A sample_id beyond 64 bits is read as a big int but is not a usable `Sample`.
        XCTAssertThrowsError(try dataset.sample(at: 1)) { error in
            XCTAssertTrue("\(error)".contains("sample 1") && "\(error)".contains("sample_id"), "\(error)")
        }
        guard case .bigInt(let big) = try dataset.value(at: 1)["sample_id"] else { return XCTFail("sample_id is not a big int") }
        XCTAssertEqual(big.description, "1180591620717411303424")  // 2**70
    }

    func testInspectDatasetPrintsCountAndSampleInSourceOrder() throws {
        let ds = Fixtures.url("pipelines/all.bytedataset").path
        let count = try Command.srdpr(["inspect-dataset", ds])
        XCTAssertEqual(count.status, 0, count.stderr)
        XCTAssertEqual(count.stdout, "37\n")
        let sample = try Command.srdpr(["inspect-dataset", ds, "--index", "5"])
        XCTAssertEqual(sample.status, 0, sample.stderr)
        let sourceLines = try String(contentsOf: Fixtures.url("pipelines/all.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        // The fixture was written by json.dumps with ensure_ascii=True: compare parsed values.
        XCTAssertEqual(try JSONParser.parse(sample.stdout), try JSONParser.parse(String(sourceLines[5])))
        XCTAssertTrue(sample.stdout.hasPrefix("{\"sample_id\": "), sample.stdout)
        let bad = try Command.srdpr(["inspect-dataset", ds, "--index", "37"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("out of range"), bad.stderr)
    }

    static let trickyGenerator = """
    import json, random, sys
    rnd = random.Random(7)
    out = open(sys.argv[1], 'w', encoding='utf-8')
    def text(n):
        alphabet = "abc d\\u00e9f \\u00f1 \\u4e2d\\u6587 \\U0001F600 \\"\\\\\\n\\t/"
        return ''.join(rnd.choice(alphabet) for _ in range(n))
    lines = []
    lines.append({"sample_id": 0, "questions": ["", "a", "\\u00e9", "\\u00ff", "\\u0100", "q"], "positive_contexts": [{"title": "", "text": ""}, {"title": "a", "text": "x"}], "hardneg_contexts": []})
    lines.append({"sample_id": 2**70, "questions": [text(300)], "positive_contexts": [{"title": "t", "text": "y" * 70000}], "hardneg_contexts": [{"title": "t2", "text": text(20000)} for _ in range(8)]})
    lines.append({"sample_id": -5, "questions": [list(range(1200)), [], [7]], "positive_contexts": [{"title": [1, 2], "text": [300, 70000, 2**40, -3]}], "hardneg_contexts": [], "extra": {"score": 1.5, "flag": True, "none": None, "neg": -2**31, "big": -2**200}})
    lines.append({"hardneg_contexts": [], "sample_id": 65536, "positive_contexts": [{"text": "b", "title": "a", "passage_id": "123"}], "questions": ["title", "text", "sample_id"]})
    lines.append({"sample_id": 3, "questions": [text(50) for _ in range(1001)], "positive_contexts": [{"title": "T", "text": text(100)} for _ in range(3)], "hardneg_contexts": [{"title": "T", "text": text(100)} for _ in range(1000)]})
    for l in lines:
        out.write(json.dumps(l, ensure_ascii=rnd.random() < 0.5) + "\\n")
    out.write('{"sample_id": 9, "questions": ["\\\\ud83d\\\\ude00 pair", "lone \\\\ud800 high", "\\\\u00e9\\\\u0000"], "positive_contexts": [{"title": "\\\\/", "text": "1e5"}], "hardneg_contexts": [], "f": [1e5, 1.0, -0.0, 1E-7, 123456789012345678901234567890, NaN, Infinity, -Infinity]}\\n')
    out.write('\\n')
    out.write('  {"sample_id":10,"questions":[],"positive_contexts":[],"hardneg_contexts":[]}  \\n')
    """
}
