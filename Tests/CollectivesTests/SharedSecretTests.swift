import Collectives
import Foundation
import TestSupport
import XCTest

/// The secret-file policy: refused like a loose ssh key when group or others can read it, and
/// when it is shorter than 16 bytes.
final class SharedSecretTests: XCTestCase {
    func testLooseShortOrMissingSecretFilesAreRefused() throws {
        let dir = try Fixtures.temporaryDirectory("srdpr-secret")
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ name: String, _ text: String, mode: Int) throws -> String {
            let url = dir.appendingPathComponent(name)
            try text.write(to: url, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
            return url.path
        }
        func message(_ body: () throws -> [UInt8]) -> String {
            do { _ = try body(); return "accepted" } catch { return "\(error)" }
        }
        let good = try write("good", "0123456789abcdef0123\n", mode: 0o600)
        XCTAssertEqual(try SharedSecret.load(file: good), Array("0123456789abcdef0123".utf8))
        XCTAssertEqual(try SharedSecret.load(file: try write("owner-only-read", "0123456789abcdef", mode: 0o400)).count, 16)

        let loose = try write("loose", "0123456789abcdef0123\n", mode: 0o644)
        let looseMessage = message { try SharedSecret.load(file: loose) }
        XCTAssertTrue(looseMessage.contains("--secret-file \(loose)"), looseMessage)
        XCTAssertTrue(looseMessage.contains("mode 644"), looseMessage)
        XCTAssertTrue(looseMessage.contains("chmod 600 \(loose)"), looseMessage)
        XCTAssertTrue(message { try SharedSecret.load(file: try write("group", "0123456789abcdef0123", mode: 0o640)) }.contains("mode 640"))

        let short = try write("short", "vm\n", mode: 0o600)
        let shortMessage = message { try SharedSecret.load(file: short) }
        XCTAssertTrue(shortMessage.contains("2 byte(s), fewer than 16"), shortMessage)
        XCTAssertTrue(message { try SharedSecret.load(file: try write("15", "012345678901234", mode: 0o600)) }.contains("15 byte(s)"))
        XCTAssertTrue(message { try SharedSecret.load(file: dir.appendingPathComponent("missing").path) }.contains("cannot read it"))
        XCTAssertTrue(message { try SharedSecret.load(file: dir.path) }.contains("not a regular file"))
        XCTAssertTrue(message { try SharedSecret.validate(Array("short".utf8), source: "SRDPR_SECRET") }
            .contains("SRDPR_SECRET: refusing an insecure shared secret"))
    }
}
