import XCTest
import Data
import TestSupport

/// Corrupted pickles never crash or hang either decoder: they decode or throw.
final class PickleFuzzTests: XCTestCase {
    func testMutatedSamplePicklesFailCleanly() throws {
        // Protocol 4 (MEMOIZE, FRAME) and protocol 2 (BINPUT) samples.
        let p2 = try Data(contentsOf: Fixtures.url("pickle_protocols/protocol2.bytedataset/data.pkl"))
        let originals = [try DataTestHelpers.firstFixturePickle(), Array(p2.prefix(700))]
        var state: UInt64 = 42
        func random(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
        var decoded = 0, refused = 0
        for round in 0..<20_000 {
            var bytes = originals[round % 2]
            for _ in 0..<(1 + random(4)) {
                switch random(3) {
                case 0: bytes[random(bytes.count)] = UInt8(random(256))          // overwrite a byte
                case 1: bytes.removeSubrange(random(bytes.count)..<bytes.count)  // truncate
                default: bytes.insert(UInt8(random(256)), at: random(bytes.count))
                }
                if bytes.isEmpty { bytes = [0x80] }
            }
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
