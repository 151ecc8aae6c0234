import Data
import Foundation
import TestSupport
import JobContracts
import XCTest

/// The coordinator<->worker messages: the fuzz seeds (one of each kind) decode and survive a
/// round trip; anything else is an error that says what is wrong, never a crash.
final class ControlMessageTests: XCTestCase {
    func testEverySeedMessageDecodesAndRoundTrips() throws {
        let seeds = Fixtures.packageRoot.appendingPathComponent("Tests/Fuzz/seeds/control")
        let files = try FileManager.default.contentsOfDirectory(atPath: seeds.path).sorted()
        XCTAssertGreaterThanOrEqual(files.count, 9)
        var kinds = Set<String>()
        for file in files {
            let bytes = Array(try Data(contentsOf: seeds.appendingPathComponent(file)))
            let message = try ControlMessage.decode(bytes)
            XCTAssertEqual(try ControlMessage.decode(try message.encoded()), message, file)
            kinds.insert(String("\(message)".prefix { $0 != "(" }))
        }
        XCTAssertEqual(kinds.count, 9, "one seed per kind of message: \(kinds.sorted())")
    }

    func testMalformedMessagesAreErrorsNamingTheProblem() {
        let cases: [(String, String)] = [
            ("{\"ready\":{\"rank\":\"one\"}}", "wrong type at ready.rank"),
            ("{\"step\":{\"_0\":{\"plans\":[]}}}", "missing field 'step'"),
            ("{\"ready\":", "not valid JSON"),
            ("{\"launch\":{}}", "malformed control message"),
            ("", "an empty control message"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try ControlMessage.decode(Array(text.utf8)), text) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(text): \(error)")
            }
        }
        XCTAssertThrowsError(try ControlMessage.decode([UInt8](repeating: 0x20, count: ControlMessage.maximumBytes + 1))) { error in
            XCTAssertTrue("\(error)".contains("at most"), "\(error)")
        }
    }
}
