import XCTest
import Coordinator
import TestSupport

final class MetricsLogTests: XCTestCase {
    func testOneJSONObjectPerLineAppended() throws {
        let dir = try Fixtures.temporaryDirectory("srdpr-metrics")
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = try MetricsLog(logDir: dir)
        try log.log(step: 1, ["pipeline": .string("pos"), "loss": .double(2.25), "learning_rate": .double(1e-5)])
        try log.log(step: 2, ["pipeline": .string("po\"s\n"), "loss": .double(.nan), "tokens": .int(4096)])
        log.close()
        // Reopening appends (a resumed run continues the file).
        let again = try MetricsLog(logDir: dir)
        try again.log(step: 3, [:])
        let text = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        XCTAssertEqual(String(lines[0]), #"{"step": 1, "learning_rate": 1e-05, "loss": 2.25, "pipeline": "pos"}"#)
        let objects = try lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        XCTAssertEqual(objects[1]["pipeline"] as? String, "po\"s\n")
        XCTAssertTrue(objects[1]["loss"] is NSNull)
        XCTAssertEqual(objects[1]["tokens"] as? Int, 4096)
        XCTAssertEqual(objects[2]["step"] as? Int, 3)
        XCTAssertThrowsError(try MetricsLog(logDir: URL(fileURLWithPath: "/proc/no-such-dir")))
    }
}
