import Data
import Foundation
import TestSupport
import XCTest

/// Size + CRC-32C of a ByteDataset's files, which each worker compares with the coordinator's.
final class DatasetFingerprintTests: XCTestCase {
    func testSizesChecksumsAndTheDifferenceNamed() throws {
        let dir = try Fixtures.temporaryDirectory("srdpr-fingerprint")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = Array("0123456789".utf8)
        try Data([0, 0, 0, 1, 0, 0, 0, 0, 0, 0]).write(to: dir.appendingPathComponent("idxs.pkl"))
        try Data(data).write(to: dir.appendingPathComponent("data.pkl"))
        let original = try DatasetFingerprint.make(key: "bytedataset.pos", path: dir.path)
        var crc = CRC32C()
        crc.update(data)
        XCTAssertEqual(original.files.map(\.name), ["idxs.pkl", "data.pkl"])
        XCTAssertEqual(original.files[1].bytes, 10)
        XCTAssertEqual(original.files[1].crc32c, crc.finalValue)
        XCTAssertNil(original.difference(from: original))

        // Same size, one byte changed: the checksum tells.
        try Data(Array("0123456780".utf8)).write(to: dir.appendingPathComponent("data.pkl"))
        let changed = try DatasetFingerprint.make(key: "bytedataset.pos", path: dir.path)
        let difference = try XCTUnwrap(original.difference(from: changed))
        XCTAssertTrue(difference.hasPrefix("bytedataset.pos=\(dir.path): data.pkl here is 10 bytes with CRC-32C"), difference)
        XCTAssertTrue(difference.contains("the coordinator's is 10 bytes"), difference)

        try FileManager.default.removeItem(at: dir.appendingPathComponent("idxs.pkl"))
        XCTAssertThrowsError(try DatasetFingerprint.make(key: "bytedataset.pos", path: dir.path)) { error in
            XCTAssertTrue("\(error)".contains("idxs.pkl"), "\(error)")
            XCTAssertTrue("\(error)".contains("bytedataset.pos="), "\(error)")
        }
    }

    /// The datasets of the pipelines train_mode runs, each named by its parameter.
    func testTheDatasetsOfTheTrainMode() throws {
        var config = TrainingConfig()
        config.trainMode = "pos+hard"
        config.bytedataset.pos = "/d/pos"
        config.bytedataset.poshard = "/d/unused"
        config.bytedataset.hard.hardneg = "/d/hard"
        config.bytedataset.hard.randneg = "/d/rand"
        let keys = try DatasetFingerprint.datasets(of: config).map(\.key)
        XCTAssertTrue(keys.contains("bytedataset.pos") && keys.contains("bytedataset.hard.hardneg"), "\(keys)")
        XCTAssertFalse(keys.contains("bytedataset.poshard"), "\(keys)")
    }
}
