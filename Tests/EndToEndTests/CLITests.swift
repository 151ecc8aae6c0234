import XCTest
import TestSupport

final class CLITests: XCTestCase {
    func testVersionAndUnknownSubcommand() throws {
        let version = try Command.srdpr(["--version"])
        XCTAssertEqual(version.status, 0, version.stderr)
        XCTAssertEqual(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "0.1.0")

        let bad = try Command.srdpr(["no-such-command"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("no-such-command"), bad.stderr)
    }
}
