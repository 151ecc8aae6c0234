import Data
import Foundation
import Model
import TestSupport
import XCTest

/// `srdpr encode` with tiny-bert: the three input kinds, order kept, same vectors as the library,
/// and clear errors for bad input.
final class EncodeCLITests: XCTestCase {
    var tmp: URL!
    override func setUpWithError() throws { tmp = try Fixtures.temporaryDirectory("srdpr-encode") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func encode(_ lines: [String], _ extra: [String] = []) throws -> (CommandResult, [[Float]]) {
        let input = tmp.appendingPathComponent("in.jsonl"), output = tmp.appendingPathComponent("out.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)
        let r = try Command.srdpr(["encode", "--model", Fixtures.url("tiny-bert").path, "--input", input.path,
                                   "--output", output.path] + extra)
        guard r.status == 0 else { return (r, []) }
        let vectors = try String(contentsOf: output, encoding: .utf8).split(separator: "\n").map { line in
            ((try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any])["embedding"] as! [NSNumber]).map(\.floatValue)
        }
        return (r, vectors)
    }

    func testMixedInputsInOrder() throws {
        let lines = [#"{"question": "who wrote hamlet?"}"#, #"{"title": "Hamlet", "text": "A tragedy by Shakespeare."}"#,
                     #"{"input_ids": [101, 7632, 2088, 102]}"#, #"{"question": "what is a tragedy"}"#]
        let (r, vectors) = try encode(lines, ["--batch-size", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(vectors.count, 4)
        XCTAssertTrue(vectors.allSatisfy { $0.count == 64 && $0.allSatisfy(\.isFinite) })

        let model = try BiEncoder.load(directory: Fixtures.url("tiny-bert"))
        let tokenizer = try BertTokenizer(vocabFile: Fixtures.url("tiny-bert/vocab.txt"), doLowerCase: true)
        let q = try model.encode(.question, TokenBatch(sequences: [tokenizer.encode("who wrote hamlet")]), train: false)
        XCTAssertLessThan(deviation(vectors[0], q).maxAbs, 1e-5)
        let c = try model.encode(.context, TokenBatch(sequences: [[101, 7632, 2088, 102]]), train: false)
        XCTAssertLessThan(deviation(vectors[2], c).maxAbs, 1e-5)
        // Batching does not change a vector: the same input alone gives the same numbers.
        let (_, alone) = try encode([lines[3]])
        XCTAssertLessThan(deviation(alone[0], vectors[3]).maxAbs, 1e-5)
    }

    /// `--batch-tokens` only cuts the batches: the same vectors bit for bit; below 1 it is refused by name.
    func testBatchTokensChangesTheBatchesNotTheVectors() throws {
        let lines = (0..<9).map { i in #"{"title": "t\#(i)", "text": "\#(String(repeating: "tragedy by shakespeare ", count: 1 + i * 3))"}"# }
        let (r, capped) = try encode(lines, ["--batch-tokens", "40"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let (r2, uncapped) = try encode(lines, ["--batch-tokens", "100000"])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        XCTAssertEqual(capped.count, 9)
        XCTAssertEqual(capped, uncapped)
        let (bad, _) = try encode(lines, ["--batch-tokens", "0"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--batch-tokens must be at least 1"), bad.stderr)
    }

    func testBadInputLineIsNamed() throws {
        let (r, _) = try encode([#"{"question": "fine"}"#, #"{"questio": 3}"#])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("in.jsonl:2"), r.stderr)
    }

    func testTooLongForTheModel() throws {
        // tiny-bert has 128 positions: --max-length 200 is capped at 128 with a warning (150 ids are cut).
        let ids = "[101, " + Array(repeating: "2000", count: 148).joined(separator: ", ") + ", 102]"
        let (r, capped) = try encode([#"{"input_ids": \#(ids)}"#], ["--max-length", "200"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: max_length 200 exceeds max_position_embeddings 128"), r.stderr)
        let (_, at128) = try encode([#"{"input_ids": \#(ids)}"#], ["--max-length", "128"])
        XCTAssertEqual(capped, at128)
    }

    func testMissingModelDirectory() throws {
        let input = tmp.appendingPathComponent("in.jsonl")
        try #"{"question": "x"}"#.write(to: input, atomically: true, encoding: .utf8)
        let r = try Command.srdpr(["encode", "--model", tmp.appendingPathComponent("nope").path, "--input", input.path,
                                   "--output", tmp.appendingPathComponent("o").path])
        XCTAssertNotEqual(r.status, 0)
        // The directory is missing, not its config.json (issue 14).
        XCTAssertTrue(r.stderr.contains("--model \(tmp.appendingPathComponent("nope").path): no such file or directory"), r.stderr)
        XCTAssertFalse(r.stderr.contains("config.json"), r.stderr)
        // A directory that is not a model: the file it lacks is named.
        let empty = tmp.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let r2 = try Command.srdpr(["encode", "--model", empty.path, "--input", input.path, "--output", tmp.appendingPathComponent("o").path])
        XCTAssertNotEqual(r2.status, 0)
        XCTAssertTrue(r2.stderr.contains("config.json") || r2.stderr.contains("model.safetensors"), r2.stderr)
    }
}
