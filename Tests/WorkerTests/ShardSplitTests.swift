import XCTest
import Data

final class ShardSplitTests: XCTestCase {
    func testChunksAreContiguousAndTheFirstRanksTakeTheRemainder() {
        // 7 items over 3 ranks: 3, 2, 2 (SPEC §6).
        XCTAssertEqual(ShardSplit.range(count: 7, rank: 0, worldSize: 3), 0..<3)
        XCTAssertEqual(ShardSplit.range(count: 7, rank: 1, worldSize: 3), 3..<5)
        XCTAssertEqual(ShardSplit.range(count: 7, rank: 2, worldSize: 3), 5..<7)
        // Fewer items than ranks: the last ranks get empty chunks.
        XCTAssertEqual(ShardSplit.range(count: 2, rank: 2, worldSize: 4), 2..<2)
    }

    func testChunksCoverEveryItemOnce() {
        for world in 1...6 {
            for count in 0...20 {
                let ranges = (0..<world).map { ShardSplit.range(count: count, rank: $0, worldSize: world) }
                XCTAssertEqual(ranges.first?.lowerBound, 0)
                XCTAssertEqual(ranges.last?.upperBound, count)
                for (a, b) in zip(ranges, ranges.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
                let sizes = ranges.map(\.count)
                XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1)
            }
        }
    }
}
