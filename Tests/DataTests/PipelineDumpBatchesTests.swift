import Foundation
import XCTest
import Data
import TestSupport

/// Must show 3 through the CLI: `srdpr dump-batches` with the settings of fixtures/pipelines/config.json
/// prints the recorded batches of each pipeline, plus "step" and "pipeline".
final class PipelineDumpBatchesTests: XCTestCase {
    func arguments(for kind: PipelineKind) -> [String] {
        let base = Fixtures.url("pipelines").path
        let c = PipelineFixture.config
        var args = ["dump-batches", "--vocab", Fixtures.url("tiny-bert/vocab.txt").path, "--batches", "8",
                    "train_mode=\(kind.rawValue)", "seed=\(c["seed"]!.int!)", "max_length=\(c["max_length"]!.int!)",
                    "do_lower_case=\(c["do_lower_case"]!.bool!)"]
        let datasets = c["bytedataset"]!
        switch kind {
        case .hard:
            args += ["bytedataset.hard.hardneg=\(base)/\(datasets["hard"]!["hardneg"]!.stringValue)",
                     "bytedataset.hard.randneg=\(base)/\(datasets["hard"]!["randneg"]!.stringValue)"]
        default:
            args.append("bytedataset.\(kind.rawValue)=\(base)/\(datasets[kind.rawValue]!.stringValue)")
        }
        guard case .object(let settings) = c["pipeline"]![kind.rawValue]! else { return args }
        // sample_from_hardneg is derived from the dataset sizes, not a parameter.
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) where key != "sample_from_hardneg" {
            args.append("pipeline.\(kind.rawValue).\(key)=\(value)")
        }
        return args
    }

    func testDumpBatchesPrintsTheRecordedBatches() throws {
        for kind in PipelineKind.allCases {
            let result = try Command.srdpr(arguments(for: kind))
            XCTAssertEqual(result.status, 0, "\(kind): \(result.stderr)")
            let lines = result.stdout.split(separator: "\n")
            let (expected, _) = try PipelineFixture.expected(kind)
            XCTAssertEqual(lines.count, 8, "\(kind)")
            for (i, (line, want)) in zip(lines, expected).enumerated() {
                guard case .object(var got) = try JSONDecoder().decode(JSONTree.self, from: Data(line.utf8)) else {
                    XCTFail("\(kind) line \(i + 1) is not an object"); continue
                }
                XCTAssertEqual(got.removeValue(forKey: "step"), .number(Double(i)), "\(kind) line \(i + 1) step")
                XCTAssertEqual(got.removeValue(forKey: "pipeline"), .string(kind.rawValue))
                guard case .object(let theirs) = want else { continue }
                XCTAssertEqual(Set(got.keys), Set(theirs.keys), "\(kind) line \(i + 1) keys")
                for key in theirs.keys where got[key] != theirs[key] {
                    XCTFail("\(kind) line \(i + 1): \(key) differs")
                }
            }
        }
    }

    func testDumpBatchesRejectsUnknownParameterWithSuggestion() throws {
        let result = try Command.srdpr(["dump-batches", "--vocab", Fixtures.url("tiny-bert/vocab.txt").path,
                                        "pipeline.pos.forward_bach_size=4"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("pipeline.pos.forward_batch_size"), result.stderr)
    }

    func testDumpBatchesNamesMissingDataset() throws {
        let result = try Command.srdpr(["dump-batches", "--vocab", Fixtures.url("tiny-bert/vocab.txt").path, "train_mode=pos"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("bytedataset.pos"), result.stderr)
    }
}

extension JSONTree {
    var stringValue: String { if case .string(let s) = self { return s } else { return description } }
}
