import XCTest
import Data
import TestSupport

/// Must show 1: every ByteDataset of the fixtures reads back equal to its JSON-lines source.
final class ByteDatasetFixtureTests: XCTestCase {
    private let cases: [(dataset: String, jsonl: String)] = [
        ("pipelines/all.bytedataset", "pipelines/all.jsonl"),
        ("pipelines/with_hardneg.bytedataset", "pipelines/with_hardneg.jsonl"),
        ("pipelines/without_hardneg.bytedataset", "pipelines/without_hardneg.jsonl"),
        ("pickle_protocols/protocol2.bytedataset", "pipelines/all.jsonl"),
        ("pickle_protocols/protocol3.bytedataset", "pipelines/all.jsonl"),
        ("pickle_protocols/protocol5.bytedataset", "pipelines/all.jsonl"),
    ]

    func testEveryFixtureDatasetReadsBackEqualToItsSource() throws {
        for (datasetPath, jsonlPath) in cases {
            let expected = try JSONLinesFile.readSamples(path: Fixtures.url(jsonlPath).path)
            let dataset = try ByteDataset(directory: Fixtures.url(datasetPath).path)
            XCTAssertEqual(dataset.count, expected.count, datasetPath)
            XCTAssertGreaterThan(dataset.count, 0, datasetPath)
            for i in 0..<min(dataset.count, expected.count) {
                XCTAssertEqual(try dataset.sample(at: i), expected[i], "\(datasetPath) sample \(i)")
                // The fast path (straight to Sample) and the generic reader agree.
                XCTAssertEqual(try Sample(pickle: dataset.value(at: i)), expected[i], "\(datasetPath) sample \(i), generic reader")
            }
        }
    }

    func testHardNegativesArePresentWhereTheSourceHasThem() throws {
        let dataset = try ByteDataset(directory: Fixtures.url("pipelines/with_hardneg.bytedataset").path)
        var withHardneg = 0
        for i in 0..<dataset.count where try !dataset.sample(at: i).hardnegContexts.isEmpty { withHardneg += 1 }
        XCTAssertEqual(withHardneg, dataset.count)
    }

    func testRawValueKeepsTheSourceKeyOrder() throws {
        let dataset = try ByteDataset(directory: Fixtures.url("pipelines/all.bytedataset").path)
        guard case .dict(let entries) = try dataset.value(at: 0) else { return XCTFail("not a dict") }
        XCTAssertEqual(entries.map(\.key), SampleJSON.keys.map { PickleValue.string($0) })
        XCTAssertEqual(entries[0].value, .int(1000))
    }

    /// The writer API (from `Sample` values) reproduces the original's files byte for byte.
    func testWriterFromSamplesReproducesTheFixtureFiles() throws {
        let samples = try JSONLinesFile.readSamples(path: Fixtures.url("pipelines/all.jsonl").path)
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("written")
        let writer = try ByteDatasetWriter(directory: out.path)
        for sample in samples { try writer.append(sample) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("idxs.pkl").path),
                       "idxs.pkl must appear only when the dataset is complete")
        try writer.finish()
        for name in ["idxs.pkl", "data.pkl"] {
            XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent(name)),
                           try Data(contentsOf: Fixtures.url("pipelines/all.bytedataset/\(name)")), name)
        }
        XCTAssertEqual(try ByteDataset(directory: out.path).samples(), samples)
    }
}
