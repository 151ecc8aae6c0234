import XCTest
import Data
import TestSupport

/// Corrupted pickles never crash or hang either decoder: they decode or throw.
final class PickleFuzzTests: XCTestCase {
    func testMutatedSamplePicklesFailCleanly() throws {
        // Protocol 4 (MEMOIZE, FRAME) and protocol 2 (BINPUT) samples.
        var decoded = 0, refused = 0
        for (round, bytes) in try DataTestHelpers.mutatedSamplePickles(rounds: 20_000, seed: 42).enumerated() {
            let fast = bytes.withUnsafeBufferPointer { try? Sample.decode(pickle: $0) }
            let generic = try? PickleReader.read(bytes)
            if let fast {
                decoded += 1
                // Whenever the fast path succeeds, the generic reader agrees.
                XCTAssertEqual(fast, generic.flatMap { try? Sample(pickle: $0) }, "round \(round)")
            } else {
                refused += 1
            }
        }
        XCTAssertGreaterThan(refused, 5000)
        XCTAssertGreaterThan(decoded, 100)
    }
}
