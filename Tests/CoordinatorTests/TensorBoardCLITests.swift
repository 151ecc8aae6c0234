import XCTest
import Coordinator
import TestSupport

/// `srdpr inspect-events` prints what a TensorBoardWriter wrote.
final class TensorBoardCLITests: XCTestCase {
    func testInspectEventsPrintsScalars() throws {
        let dir = try Fixtures.temporaryDirectory("srdpr-inspect-events")
        defer { try? FileManager.default.removeItem(at: dir) }
        let writer = try TensorBoardWriter(logDir: dir, wallTime: 100, hostName: "h")
        try writer.addScalar("pos/loss", 1.5, step: 10, wallTime: 101)
        try writer.addScalar("learning_rate", 0.25, step: 10, wallTime: 101)
        writer.close()
        let result = try Command.srdpr(["inspect-events", dir.path, "--tag", "pos/loss"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "10\tpos/loss\t1.5\t101.0\n")
        let missing = try Command.srdpr(["inspect-events", dir.appendingPathComponent("nope").path])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("does not exist"), missing.stderr)
    }
}
