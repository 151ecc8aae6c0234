import Collectives
import TestSupport
import XCTest

final class ZMQCollectivesTests: XCTestCase {
    func testAllGatherBroadcastAndBarrierForWorldSizesOneToFive() throws {
        for world in 1...5 {
            let results = RingHarness.run(world: world) { comm -> ([[UInt8]], [[UInt8]]) in
                // Uneven payloads, rank 0's empty.
                let payload = (0..<(comm.rank * 3)).map { UInt8(truncatingIfNeeded: comm.rank * 10 + $0) }
                let gathered = try comm.allGather(payload)
                var broadcasts: [[UInt8]] = []
                for root in 0..<world {
                    let mine: [UInt8] = comm.rank == root ? Array("from \(root)".utf8) : [9, 9]
                    broadcasts.append(try comm.broadcast(mine, root: root))
                }
                try comm.barrier()
                return (gathered, broadcasts)
            }
            let expectedGather = (0..<world).map { r in (0..<(r * 3)).map { UInt8(truncatingIfNeeded: r * 10 + $0) } }
            for (rank, (gathered, broadcasts)) in try RingHarness.unwrap(results).enumerated() {
                XCTAssertEqual(gathered, expectedGather, "world \(world) rank \(rank)")
                XCTAssertEqual(broadcasts, (0..<world).map { Array("from \($0)".utf8) }, "world \(world) rank \(rank)")
            }
        }
    }

    /// A barrier does not return before the slowest rank has entered it.
    func testBarrierWaitsForTheSlowestRank() throws {
        let results = RingHarness.run(world: 3) { comm -> Date in
            if comm.rank == 2 { Thread.sleep(forTimeInterval: 0.5) }
            let entered = Date()
            try comm.barrier()
            return comm.rank == 2 ? entered : Date()
        }
        let times = try RingHarness.unwrap(results)
        XCTAssertGreaterThanOrEqual(times[0], times[2])
        XCTAssertGreaterThanOrEqual(times[1], times[2])
    }

    func testAllGatherOverLimitFailsOnEveryRankAndNamesTheParameter() throws {
        var options = RingHarness.fastOptions()
        options.globalLossBufferSize = 100
        let results = RingHarness.run(world: 3, options: options) { comm -> (String, [[UInt8]]) in
            let payload = [UInt8](repeating: 1, count: comm.rank == 1 ? 150 : 100)
            var message = ""
            do {
                _ = try comm.allGather(payload)
            } catch let error as CollectivesError {
                XCTAssertEqual(error, .allGatherPayloadTooLarge(rank: 1, size: 150, limit: 100))
                message = "\(error)"
            }
            // The ring is still consistent afterwards.
            return (message, try comm.allGather([UInt8(comm.rank)]))
        }
        for (message, after) in try RingHarness.unwrap(results) {
            XCTAssertTrue(message.contains("global_loss_buf_sz=100"), message)
            XCTAssertTrue(message.contains("at least 150"), message)
            XCTAssertEqual(after, [[0], [1], [2]])
        }
        XCTAssertThrowsError(try InProcessCommunicator(globalLossBufferSize: 10).allGather([UInt8](repeating: 0, count: 11))) {
            XCTAssertTrue("\($0)".contains("global_loss_buf_sz"))
        }
    }
}
