import Foundation
import XCTest
import Data
import TestSupport

/// Python `random` reference values recorded in fixtures/pipelines/config.json (Must show 2).
final class PythonRandomTests: XCTestCase {
    private func reference() throws -> [String: Any] {
        let data = try Data(contentsOf: Fixtures.url("pipelines/config.json"))
        let config = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try XCTUnwrap(config["python_random_reference"] as? [String: Any])
    }

    func testShuffleOfRangeWithPosSeed() throws {
        let expected = try XCTUnwrap(reference()["Random(seed+POS_SEED).shuffle(range(n_all))"] as? [Int])
        var rng = PythonRandom(seed: 12345 + 234567891)
        var values = Array(0..<37)
        rng.shuffle(&values)
        XCTAssertEqual(values, expected)
    }

    func testSeedThenShuffle() throws {
        let expected = try XCTUnwrap(reference()["seed(123); shuffle(range(10))"] as? [Int])
        var rng = PythonRandom(seed: 0)
        rng.seed(123)
        var values = Array(0..<10)
        rng.shuffle(&values)
        XCTAssertEqual(values, expected)
    }

    func testGetrandbits32() throws {
        let expected = try XCTUnwrap(reference()["Random(5).getrandbits(32) x3"] as? [UInt64])
        var rng = PythonRandom(seed: 5)
        XCTAssertEqual((0..<3).map { _ in rng.getrandbits(32) }, expected)
    }

    func testRandomWithSeedWiderThan32Bits() throws {
        // Foundation's JSON number parsing may round the last digit: read the literal from the file text.
        let text = try String(contentsOf: Fixtures.url("pipelines/config.json"), encoding: .utf8)
        let key = "\"Random(2**40+3).random()\":"
        let range = try XCTUnwrap(text.range(of: key))
        let literal = text[range.upperBound...].prefix { " 0123456789.eE-+".contains($0) }
        let expected = try XCTUnwrap(Double(literal.trimmingCharacters(in: .whitespaces)))
        var rng = PythonRandom(seed: (1 << 40) + 3)
        XCTAssertEqual(rng.random(), expected)
    }

    /// Negative seeds use |n| like CPython; the state round-trips through JSON.
    func testNegativeSeedAndCodableState() throws {
        var a = PythonRandom(seed: -77), b = PythonRandom(seed: 77)
        XCTAssertEqual(a.nextUInt32(), b.nextUInt32())
        let restored = try JSONDecoder().decode(PythonRandom.self, from: JSONEncoder().encode(a))
        var c = restored
        XCTAssertEqual(c.randbelow(1000), a.randbelow(1000))
    }
}
