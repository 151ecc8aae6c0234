import Collectives
import XCTest

final class WireHeaderTests: XCTestCase {
    func testSHA256AndHMACMatchPublishedVectors() {
        func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
        XCTAssertEqual(hex(SHA256.hash([])), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(hex(SHA256.hash(Array("abc".utf8))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(hex(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // RFC 4231 test cases 2 and 6 (key longer than the block).
        XCTAssertEqual(hex(SHA256.hmac(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))),
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        XCTAssertEqual(hex(SHA256.hmac(key: [UInt8](repeating: 0xaa, count: 131),
                                       message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8))),
                       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    func testHeaderRoundTripsAndChecksEveryField() throws {
        let header = WireHeader(kind: .allReduce, sender: 3, segment: 2, job: WireHeader.jobHash("job"), step: 17,
                                sequence: 9, chunk: 5, ringStep: 4, length: 4096, total: 123_456)
        let bytes = header.encoded()
        XCTAssertEqual(bytes.count, WireHeader.size)
        let decoded = try bytes.withUnsafeBytes { try WireHeader.decode($0, peer: 3) }
        XCTAssertEqual(decoded, header)
        XCTAssertNoThrow(try decoded.verify(expected: header, peer: 3, during: "test"))
        var other = header
        other.chunk = 6
        XCTAssertThrowsError(try decoded.verify(expected: other, peer: 3, during: "test")) {
            XCTAssertEqual("\($0)", "message from rank 3 does not match during test: chunk is 5, expected 6")
        }
        other = header
        other.job = WireHeader.jobHash("another job")
        XCTAssertThrowsError(try decoded.verify(expected: other, peer: 3, during: "test")) {
            XCTAssertTrue("\($0)".contains("job id hash"))
        }
    }

    func testGarbageAndTruncatedHeadersAreRejected() {
        var bytes = WireHeader(kind: .barrier, sender: 0, job: 1, step: 0, sequence: 0, length: 0).encoded()
        XCTAssertThrowsError(try bytes.dropLast().withUnsafeBytes { try WireHeader.decode($0, peer: 1) }) {
            XCTAssertTrue("\($0)".contains("63 bytes, expected 64"), "\($0)")
        }
        bytes[5] = 99
        XCTAssertThrowsError(try bytes.withUnsafeBytes { try WireHeader.decode($0, peer: 1) }) {
            XCTAssertTrue("\($0)".contains("unknown message kind 99"), "\($0)")
        }
        bytes[0] = 0
        XCTAssertThrowsError(try bytes.withUnsafeBytes { try WireHeader.decode($0, peer: 1) }) {
            XCTAssertTrue("\($0)".contains("bad magic"), "\($0)")
        }
        var random = SystemRandomNumberGenerator()
        for _ in 0..<200 {  // random bytes never crash the decoder
            let garbage = (0..<Int.random(in: 0...80, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            _ = try? garbage.withUnsafeBytes { try WireHeader.decode($0, peer: 1) }
        }
    }
}
