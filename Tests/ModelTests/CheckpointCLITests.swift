import XCTest
import Model
import TestSupport

/// `srdpr inspect-checkpoint` on good and damaged files.
final class CheckpointCLITests: XCTestCase {
    func testInspectCheckpointListsSectionsAndRejectsDamage() throws {
        let dir = try Fixtures.temporaryDirectory("srdpr-inspect")
        defer { try? FileManager.default.removeItem(at: dir) }
        var writer = CheckpointWriter()
        try writer.addFloats("question_model.embeddings.word_embeddings.weight", [Float](repeating: 0.5, count: 12), shape: [4, 3])
        try writer.addJSON("config", ["sim_func": "dot_product"])
        let url = dir.appendingPathComponent("dpr_biencoder.3")
        try writer.write(to: url)

        let ok = try Command.srdpr(["inspect-checkpoint", url.path])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("2 sections"), ok.stdout)
        XCTAssertTrue(ok.stdout.contains("question_model.embeddings.word_embeddings.weight  f32    12 values [4, 3]"), ok.stdout)
        let json = try Command.srdpr(["inspect-checkpoint", "--json", url.path])
        XCTAssertEqual(json.stdout.split(separator: "\n").count, 2)

        let bytes = try Data(contentsOf: url)
        try bytes.prefix(bytes.count - 5).write(to: url)
        let truncated = try Command.srdpr(["inspect-checkpoint", url.path])
        XCTAssertNotEqual(truncated.status, 0)
        XCTAssertTrue(truncated.stderr.contains("\(url.path) is truncated"), truncated.stderr)

        var flipped = bytes
        flipped[20] ^= 0xFF
        try flipped.write(to: url)
        let corrupt = try Command.srdpr(["inspect-checkpoint", url.path])
        XCTAssertNotEqual(corrupt.status, 0)
        XCTAssertTrue(corrupt.stderr.contains("checksum mismatch in section 'question_model.embeddings.word_embeddings.weight'"),
                      corrupt.stderr)
    }
}
