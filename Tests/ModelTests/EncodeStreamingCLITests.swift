import Data
import Foundation
import Model
import TestSupport
import XCTest

/// `srdpr encode` as a stream: more inputs than one window, `--format npy` with `--ids` giving the
/// same vectors as JSON lines, numpy reading the matrix, and a bad line deep in the file named by
/// file and line with nothing left at the output paths.
final class EncodeStreamingCLITests: XCTestCase {
    var tmp: URL!
    override func setUpWithError() throws { tmp = try Fixtures.temporaryDirectory("srdpr-encode-stream") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    /// 5,000 inputs (more than the 4,096-line window), some with ids, a blank line among them.
    func inputLines() -> [String] {
        (0..<5000).map { i in
            switch i % 4 {
            case 0: return #"{"id": "q\#(i)", "question": "what is item \#(i) of the list"}"#
            case 1: return #"{"_id": \#(i), "title": "Item \#(i)", "text": "\#(String(repeating: "word ", count: i % 37))end"}"#
            case 2: return i == 2 ? "   " : #"{"input_ids": [101, \#(1000 + i % 500), 102]}"#
            default: return #"{"question": "short \#(i)"}"#
            }
        }
    }

    func run(_ lines: [String], _ extra: [String]) throws -> CommandResult {
        let input = tmp.appendingPathComponent("in.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)
        return try Command.srdpr(["encode", "--model", Fixtures.url("tiny-bert").path, "--input", input.path, "--max-length", "32"] + extra)
    }

    func testNpyWithIdsEqualsJSONLinesAcrossWindows() throws {
        let lines = inputLines()
        let jsonl = tmp.appendingPathComponent("out.jsonl"), npy = tmp.appendingPathComponent("out.npy")
        let ids = tmp.appendingPathComponent("ids.jsonl")
        let a = try run(lines, ["--output", jsonl.path])
        XCTAssertEqual(a.status, 0, a.stderr)
        let b = try run(lines, ["--output", npy.path, "--format", "npy", "--ids", ids.path, "--batch-size", "5"])
        XCTAssertEqual(b.status, 0, b.stderr)
        let vectors = try String(contentsOf: jsonl, encoding: .utf8).split(separator: "\n").map { line in
            ((try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any])["embedding"] as! [NSNumber]).map(\.floatValue)
        }
        XCTAssertEqual(vectors.count, 4999, "one row per non-blank line")
        // The npy file: a 128-byte header with the final shape, then float32 rows.
        let bytes = try Data(contentsOf: npy)
        let header = String(decoding: bytes[10..<128], as: UTF8.self)
        XCTAssertTrue(header.contains("'descr': '<f4'") && header.contains("'shape': (4999, 64)"), header)
        let matrix: [Float] = bytes[128...].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(matrix.count, 4999 * 64)
        var worst: Float = 0
        for (r, v) in vectors.enumerated() { for (c, x) in v.enumerated() { worst = max(worst, abs(matrix[r * 64 + c] - x)) } }
        XCTAssertLessThanOrEqual(worst, 1e-6, "batch size 5 vs 32, npy vs the JSON text of the floats")
        let idLines = try String(contentsOf: ids, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(idLines.count, 4999)
        XCTAssertEqual(Array(idLines.prefix(5)), [#""q0""#, #""1""#, #""4""#, #""q4""#, #""5""#],
                       "the line's id, else its line number (line 3 is blank)")
        // numpy reads it as it is (the venv's numpy; skipped loudly without SRDPR_PYTHON).
        guard let python = ProcessInfo.processInfo.environment["SRDPR_PYTHON"] else {
            print("SKIPPED numpy.load check: set SRDPR_PYTHON to the venv's python")
            return
        }
        let check = try Command.run(URL(fileURLWithPath: python), ["-c", "import numpy, sys; m = numpy.load(sys.argv[1]); print(m.dtype, m.shape, float(m[4998, 63]))", npy.path])
        XCTAssertEqual(check.status, 0, check.stderr)
        XCTAssertTrue(check.stdout.hasPrefix("float32 (4999, 64) "), check.stdout)
        XCTAssertEqual(Float(check.stdout.split(separator: " ").last!.trimmingCharacters(in: .whitespacesAndNewlines))!, vectors[4998][63], accuracy: 1e-6)
    }

    /// `--workers 2`: two `srdpr index-worker` children pulling shards (row ranges) from this
    /// process, their embeddings appended in order: the bytes of one process run with the
    /// children's thread count, in both formats. A bad line (bad JSON field, a token id outside
    /// the vocabulary) is named by file and line before anything is embedded: nothing started,
    /// nothing left behind. (A child that dies: `IndexWorkersCLITests`.)
    func testTwoWorkersGiveTheOneProcessBytes() throws {
        var lines = inputLines()
        let npyOne = tmp.appendingPathComponent("one.npy"), idsOne = tmp.appendingPathComponent("one.ids")
        let npyTwo = tmp.appendingPathComponent("two.npy"), idsTwo = tmp.appendingPathComponent("two.ids")
        let jsonOne = tmp.appendingPathComponent("one.jsonl"), jsonTwo = tmp.appendingPathComponent("two.jsonl")
        for (extra, label) in [(["--output", npyOne.path, "--format", "npy", "--ids", idsOne.path, "--threads", "1"], "one npy"),
                               (["--output", npyTwo.path, "--format", "npy", "--ids", idsTwo.path, "--threads", "2", "--workers", "2"], "two npy"),
                               (["--output", jsonOne.path, "--threads", "1"], "one jsonl"),
                               (["--output", jsonTwo.path, "--threads", "2", "--workers", "2"], "two jsonl")] {
            let r = try run(lines, extra + ["--window", "1000"])
            XCTAssertEqual(r.status, 0, "\(label): \(r.stderr)")
            if extra.contains("--workers") {
                // 64 shards of 79 inputs (whatever --window), pulled by both children.
                XCTAssertTrue(r.stderr.contains("64 shard(s) (chunks of 1000 rows) for 2 worker(s)"), r.stderr)
                XCTAssertTrue(r.stderr.contains("encode: rank 0 on ") && r.stderr.contains("encode: rank 1 on "), r.stderr)
            }
        }
        XCTAssertEqual(try Data(contentsOf: npyOne), try Data(contentsOf: npyTwo))
        XCTAssertEqual(try Data(contentsOf: idsOne), try Data(contentsOf: idsTwo))
        XCTAssertEqual(try Data(contentsOf: jsonOne), try Data(contentsOf: jsonTwo))
        XCTAssertEqual(try Data(contentsOf: npyOne).count, 128 + 4999 * 64 * 4)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path).filter { $0.contains("shards") }, [],
                       "the shards are removed")

        let left = try FileManager.default.contentsOfDirectory(atPath: tmp.path).sorted()
        let npy = tmp.appendingPathComponent("bad.npy"), ids = tmp.appendingPathComponent("bad.ids")
        let arguments = ["--output", npy.path, "--format", "npy", "--ids", ids.path, "--threads", "2", "--workers", "2", "--window", "1000"]
        for (line, message) in [(#"{"question": 7}"#, #"in.jsonl:4501: "question" must be a string"#),
                                (#"{"input_ids": [101, 99999999, 102]}"#,
                                 "in.jsonl:4501: input id 99999999 is outside the vocabulary of the context encoder (vocab_size 30522)")] {
            lines[4500] = line
            let r = try run(lines, arguments)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains(message), r.stderr)
            XCTAssertFalse(r.stderr.contains("index-worker"), "no worker started: \(r.stderr)")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path).sorted(), left,
                           "no output, no shards and no temporary file after a bad line")
        }
        // The line mended: the one-process bytes.
        lines[4500] = inputLines()[4500]
        let mended = try run(lines, arguments)
        XCTAssertEqual(mended.status, 0, mended.stderr)
        XCTAssertEqual(try Data(contentsOf: npyOne), try Data(contentsOf: npy))
        XCTAssertEqual(try Data(contentsOf: idsOne), try Data(contentsOf: ids))
        XCTAssertFalse(FileManager.default.fileExists(atPath: npy.path + ".shards"), "the shards are removed once merged")
    }

    /// A `--workers` run killed (parent and children) once a shard is complete: the same command
    /// again embeds only the other shards and gives the bytes of an uninterrupted run.
    func testAKilledWorkersRunGoesOnFromItsFinishedShards() throws {
        let lines = inputLines()
        let input = tmp.appendingPathComponent("in.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)
        let one = tmp.appendingPathComponent("one.jsonl"), two = tmp.appendingPathComponent("two.jsonl")
        XCTAssertEqual(try run(lines, ["--output", one.path, "--threads", "1", "--window", "1000"]).status, 0)
        let arguments = ["encode", "--model", Fixtures.url("tiny-bert").path, "--input", input.path, "--max-length", "32",
                         "--output", two.path, "--threads", "2", "--workers", "2", "--window", "1000"]
        let parent = try BackgroundCommand(arguments, outputPrefix: tmp.appendingPathComponent("killed"))
        let shards = two.path + ".shards"
        let deadline = Date(timeIntervalSinceNow: 120)
        // Shards whose meta.json says complete (each is an index of its rows, written as the workers send them).
        func finished() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: shards)) ?? []).filter { name in
                guard name.hasPrefix("rows-"), let data = FileManager.default.contents(atPath: shards + "/" + name + "/meta.json"),
                      let meta = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
                return meta["complete"] as? Bool == true
            }
        }
        while finished().isEmpty, parent.isRunning, deadline.timeIntervalSinceNow > 0 { usleep(2_000) }
        // The children first (by their parent's pid), then the parent: nothing goes on writing.
        _ = try Command.run(URL(fileURLWithPath: "/usr/bin/pkill"), ["-KILL", "-P", String(parent.pid)])
        parent.kill(SIGKILL)
        XCTAssertNotNil(parent.wait(seconds: 10))
        let kept = finished()
        XCTAssertFalse(kept.isEmpty, "a shard was complete before the kill: \(parent.output)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: two.path), "no output from the killed run")
        let again = try Command.srdpr(arguments)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stderr.contains("encode: \(kept.count) of 64 shard(s) kept from an earlier run of this command"), again.stderr)
        XCTAssertEqual(try Data(contentsOf: one), try Data(contentsOf: two))
    }

    func testBadLineDeepInTheFileLeavesNoOutput() throws {
        var lines = inputLines()
        lines[4500] = #"{"question": 7}"#
        let npy = tmp.appendingPathComponent("out.npy"), ids = tmp.appendingPathComponent("ids.jsonl")
        let r = try run(lines, ["--output", npy.path, "--format", "npy", "--ids", ids.path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("in.jsonl:4501: \"question\" must be a string"), r.stderr)
        let left = try FileManager.default.contentsOfDirectory(atPath: tmp.path).sorted()
        XCTAssertEqual(left, ["in.jsonl"], "no output and no temporary file after a failed run")
        lines[4500] = #"{"input_ids": [101, 30522]}"#
        let outside = try run(lines, ["--output", npy.path, "--format", "npy", "--ids", ids.path])
        XCTAssertNotEqual(outside.status, 0)
        XCTAssertTrue(outside.stderr.contains("in.jsonl:4501: input id 30522 is outside the vocabulary of the context encoder (vocab_size 30522)"),
                      outside.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path).sorted(), ["in.jsonl"])
        let noIDs = try run(lines, ["--output", npy.path, "--format", "npy"])
        XCTAssertNotEqual(noIDs.status, 0)
        XCTAssertTrue(noIDs.stderr.contains("--format npy needs --ids"), noIDs.stderr)
    }
}
