import Collectives
import Foundation
import XCTest

/// Payloads between ranks on one host through shared-memory lanes (headers still over ZeroMQ).
final class SharedMemoryLaneTests: XCTestCase {
    private func localAddresses(_ world: Int) throws -> [String] {
        #if os(Linux)
        return (0..<world).map { _ in RingTransport.localAddress()! }
        #else
        throw XCTSkip("abstract Unix sockets are Linux only")
        #endif
    }

    private func laneFiles() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? []).filter { $0.hasPrefix("srdpr-lane-\(getpid())-") }
    }

    /// World sizes 2-5, sizes 0, 1, below the world size, prime, many chunks; sum and mean; the
    /// all-gather and broadcast too. Every link has a lane, the payloads use it, and no lane file
    /// is left in /dev/shm once the ring is up.
    func testCollectivesThroughLanesMatchTheReference() throws {
        var options = RingHarness.fastOptions()
        options.chunkBytes = 4096
        for world in 2...5 {
            let results = RingHarness.run(world: world, options: options, addresses: try localAddresses(world)) { comm -> ([[Float]], [[UInt8]], [UInt8], Bool, Int) in
                let outputs = try RingHarness.allReduceReferenceSizes(comm)
                let gathered = try comm.allGather((0..<(comm.rank * 5)).map { UInt8(truncatingIfNeeded: $0 + comm.rank) })
                let broadcast = try comm.broadcast(comm.rank == 1 ? Array("from one".utf8) : [], root: 1)
                let links = comm.sharedMemoryLinks
                return (outputs, gathered, broadcast, links.toRight && links.fromLeft, comm.laneCounts.published)
            }
            let ranks = try RingHarness.unwrap(results)
            XCTAssertEqual(laneFiles(), [], "lane files are unlinked once both sides mapped them")
            for (rank, (outputs, gathered, broadcast, lanes, published)) in ranks.enumerated() {
                XCTAssertTrue(lanes, "world \(world) rank \(rank) has both lanes")
                XCTAssertGreaterThan(published, 2 * RingHarness.referenceSizes(world: world).count, "world \(world) rank \(rank) sent through its lane")
                RingHarness.checkReferenceOutputs(outputs, world: world, rank: rank)
                XCTAssertEqual(outputs, ranks[0].0, "world \(world): rank \(rank) differs from rank 0")
                XCTAssertEqual(gathered, (0..<world).map { r in (0..<(r * 5)).map { UInt8(truncatingIfNeeded: $0 + r) } })
                XCTAssertEqual(broadcast, Array("from one".utf8))
            }
        }
    }

    /// A lane of one slot is full whenever the receiver lags: those payloads go over the socket
    /// (a send never waits for a slot, so a ring of full lanes cannot deadlock) and the sums hold.
    func testFullLaneFallsBackToTheSocket() throws {
        var options = RingHarness.fastOptions()
        options.chunkBytes = 4096
        options.laneSlots = 1
        let count = 200_000
        let results = RingHarness.run(world: 3, options: options, addresses: try localAddresses(3)) { comm -> ([Float], Int, Int) in
            var data = RingHarness.values(rank: comm.rank, count: count)
            for _ in 0..<3 {
                data = RingHarness.values(rank: comm.rank, count: count)
                try data.withUnsafeMutableBufferPointer { try comm.allReduce($0, op: .sum) }
            }
            return (data, comm.laneCounts.published, comm.laneCounts.overflowed)
        }
        let expected = RingHarness.reference(world: 3, count: count, op: .sum)
        var overflowed = 0
        for (data, published, overflow) in try RingHarness.unwrap(results) {
            XCTAssertGreaterThan(published, 0)
            overflowed += overflow
            for i in stride(from: 0, to: count, by: 101) { XCTAssertEqual(data[i], expected[i], accuracy: 1e-5 * max(1, abs(expected[i]))) }
        }
        XCTAssertGreaterThan(overflowed, 0, "with one slot some payloads went over the socket")
    }

    /// A rank with lanes off declines its left neighbour's offer and offers none itself: those
    /// links carry payloads over the socket, the others through lanes, and the sums agree.
    func testRankWithLanesOffDeclines() throws {
        let addresses = try localAddresses(3)
        let count = 30_000
        let results = RingHarness.concurrently(3) { rank -> ([Float], (toRight: Bool, fromLeft: Bool)) in
            var options = RingHarness.fastOptions()
            options.chunkBytes = 4096
            options.sharedMemoryLanes = rank != 1
            let comm = try ZMQCommunicator(rank: rank, worldSize: 3, addresses: addresses, jobID: "lanes-off",
                                           secret: Array("s3cret".utf8), options: options)
            var data = RingHarness.values(rank: rank, count: count)
            try data.withUnsafeMutableBufferPointer { try comm.allReduce($0, op: .mean) }
            return (data, comm.sharedMemoryLinks)
        }
        let ranks = try RingHarness.unwrap(results)
        XCTAssertEqual(ranks.map { $0.1.toRight }, [false, false, true], "0 -> 1 declined, 1 -> 2 not offered, 2 -> 0 kept")
        XCTAssertEqual(ranks.map { $0.1.fromLeft }, [true, false, false])
        let expected = RingHarness.reference(world: 3, count: count, op: .mean)
        for (data, _) in ranks {
            for i in stride(from: 0, to: count, by: 37) { XCTAssertEqual(data[i], expected[i], accuracy: 1e-5 * max(1, abs(expected[i]))) }
        }
        XCTAssertEqual(laneFiles(), [])
    }

    /// Ranks reached over TCP never get lanes (they may be on other hosts).
    func testTCPLinksHaveNoLanes() throws {
        let results = RingHarness.run(world: 2) { comm -> Bool in
            var data: [Float] = [1, 2, 3]
            try data.withUnsafeMutableBufferPointer { try comm.allReduce($0, op: .sum) }
            return comm.sharedMemoryLinks.toRight || comm.sharedMemoryLinks.fromLeft
        }
        XCTAssertEqual(try RingHarness.unwrap(results), [false, false])
    }

    /// A header that points into a lane slot the sender never published is rejected, not read.
    func testUnpublishedSlotIsRejected() throws {
        var options = RingHarness.fastOptions()
        options.receiveTimeout = 5
        let results = RingHarness.run(world: 2, options: options, addresses: try localAddresses(2)) { comm -> Void in
            if comm.rank == 0 {
                var header = WireHeader(kind: .allReduce, sender: 0, segment: 0, job: WireHeader.jobHash(comm.jobID),
                                        step: 0, sequence: 0, chunk: 0, ringStep: 0, length: 400, total: 200)
                header.flags = WireHeader.flagSharedMemory
                header.slot = 7
                try comm.sendRawFramesForTesting([header.encoded()])
                return
            }
            var data = [Float](repeating: 1, count: 200)
            try data.withUnsafeMutableBufferPointer { try comm.allReduce($0, op: .sum) }
        }
        XCTAssertNoThrow(try results[0].get())
        XCTAssertThrowsError(try results[1].get()) { error in
            guard case let .malformedMessage(peer, reason)? = error as? CollectivesError else { return XCTFail("\(error)") }
            XCTAssertEqual(peer, 0)
            XCTAssertTrue(reason.contains("shared-memory slot 7"), reason)
            XCTAssertTrue(reason.contains("not published"), reason)
        }
    }
}
