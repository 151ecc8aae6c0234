import Collectives
import Foundation
import TestSupport
import XCTest

final class ZMQAllReduceTests: XCTestCase {
    /// World sizes 1-5, sizes 0, 1, below the world size, prime, several chunks; sum and mean.
    func testAllReduceMatchesFloatReferenceForWorldSizesOneToFive() throws {
        var options = RingHarness.fastOptions()
        options.chunkBytes = 4096  // many chunks per segment even for small buffers
        options.zeroCopyMinimumBytes = 2048  // both the copying and the zero-copy path
        for world in 1...5 {
            let results = RingHarness.run(world: world, options: options) { comm in try RingHarness.allReduceReferenceSizes(comm) }
            let outputs = try RingHarness.unwrap(results)
            for rank in 0..<world {
                RingHarness.checkReferenceOutputs(outputs[rank], world: world, rank: rank)
                // Every rank ends with bit-identical results (the owner's sum is copied around).
                XCTAssertEqual(outputs[rank], outputs[0], "world \(world): rank \(rank) differs from rank 0")
            }
        }
    }

    /// About a million floats with the default chunking (zero-copy sends).
    func testLargeAllReduceWithDefaultOptions() throws {
        let world = 3, count = 1_000_003
        var options = RingHarness.fastOptions()
        options.chunkBytes = ZMQCommunicator.Options().chunkBytes
        let results = RingHarness.run(world: world, options: options) { comm -> [Float] in
            var data = RingHarness.values(rank: comm.rank, count: count, seed: 5)
            try data.withUnsafeMutableBufferPointer { try comm.allReduce($0, op: .mean) }
            return data
        }
        let expected = RingHarness.reference(world: world, count: count, op: .mean, seed: 5)
        for (rank, got) in try RingHarness.unwrap(results).enumerated() {
            let d = deviation(got, expected)
            XCTAssertLessThanOrEqual(d.maxAbs, 1e-5 * max(1, d.scale), "rank \(rank): \(d)")
        }
    }

    func testCurveEncryptedRingReducesCorrectly() throws {
        var options = RingHarness.fastOptions()
        options.curve = true
        let results = RingHarness.run(world: 2, options: options) { comm -> [Float] in
            var data = RingHarness.values(rank: comm.rank, count: 5000)
            try data.withUnsafeMutableBufferPointer { try comm.allReduce($0, op: .sum) }
            return data
        }
        let expected = RingHarness.reference(world: 2, count: 5000, op: .sum)
        for got in try RingHarness.unwrap(results) {
            XCTAssertLessThanOrEqual(deviation(got, expected).maxAbs, 1e-5 * 4)
        }
    }

    /// The trainer marks buckets as backward produces them; the background thread reduces
    /// bucket 0 while "backward" has not yet produced bucket 1.
    func testBucketedAllReduceOverlapsBackward() throws {
        let world = 3, count = 10_000
        let buckets = BucketedAllReduce.buckets(count: count, bucketElements: 3000)
        XCTAssertEqual(buckets, [7000..<10_000, 4000..<7000, 1000..<4000, 0..<1000])
        let results = RingHarness.run(world: world) { comm -> ([Float], Bool) in
            let reducer = BucketedAllReduce(communicator: comm)
            var overlapped = true
            var outputs: [Float] = []
            for round in 0..<2 {
                comm.step = round
                var grads = RingHarness.values(rank: comm.rank, count: count, seed: round)
                try grads.withUnsafeMutableBufferPointer { grads in
                    try reducer.start(grads, buckets: buckets, op: .mean)
                    for bucket in buckets.indices {
                        try reducer.markReady(bucket)
                        if bucket == 0 {
                            // Backward would go on here; bucket 0 must get reduced meanwhile.
                            let deadline = Date(timeIntervalSinceNow: 10)
                            while reducer.reducedBuckets < 1 && Date() < deadline { usleep(1000) }
                            overlapped = overlapped && reducer.reducedBuckets >= 1
                        }
                    }
                    try reducer.wait()
                }
                XCTAssertEqual(reducer.reducedBuckets, buckets.count)
                outputs += grads
            }
            return (outputs, overlapped)
        }
        let expected = RingHarness.reference(world: world, count: count, op: .mean, seed: 0)
            + RingHarness.reference(world: world, count: count, op: .mean, seed: 1)
        for (rank, (got, overlapped)) in try RingHarness.unwrap(results).enumerated() {
            XCTAssertTrue(overlapped, "rank \(rank): bucket 0 was not reduced before bucket 1 was marked")
            let d = deviation(got, expected)
            XCTAssertLessThanOrEqual(d.maxAbs, 1e-5 * max(1, d.scale), "rank \(rank): \(d)")
        }
    }

    /// A failure on the background thread comes back from `wait()`, naming the silent peer.
    func testBucketedAllReduceRethrowsTheBackgroundError() throws {
        var options = RingHarness.fastOptions()
        options.receiveTimeout = 1
        let results = RingHarness.run(world: 2, options: options) { comm -> Void in
            guard comm.rank == 1 else { return }  // rank 0 never reduces
            let reducer = BucketedAllReduce(communicator: comm)
            var grads = [Float](repeating: 1, count: 1000)
            try grads.withUnsafeMutableBufferPointer { grads in
                try reducer.start(grads, buckets: BucketedAllReduce.buckets(count: 1000, bucketElements: 400), op: .sum)
                try reducer.markReady(0)
                try reducer.wait()
            }
        }
        XCTAssertThrowsError(try results[1].get()) { error in
            XCTAssertTrue("\(error)".contains("no message from rank 0"), "\(error)")
        }
    }

    func testBucketedAllReduceOnOneProcessLeavesGradientsAndReportsErrors() throws {
        let reducer = BucketedAllReduce(communicator: InProcessCommunicator())
        var grads: [Float] = [1, 2, 3, 4, 5]
        try grads.withUnsafeMutableBufferPointer { grads in
            try reducer.start(grads, buckets: BucketedAllReduce.buckets(count: 5, bucketElements: 2), op: .mean)
            XCTAssertThrowsError(try reducer.markReady(7))
            try reducer.wait()  // marks the rest itself
            XCTAssertThrowsError(try reducer.start(grads, buckets: [0..<9], op: .sum)) { error in
                XCTAssertTrue("\(error)".contains("outside the gradient buffer"), "\(error)")
            }
        }
        XCTAssertEqual(grads, [1, 2, 3, 4, 5])
    }
}

final class BenchAllReduceCommandTests: XCTestCase {
    /// `srdpr bench allreduce` starts its ranks as processes and prints one JSON line.
    func testBenchAllReducePrintsBusBandwidthPerSize() throws {
        let result = try Command.srdpr(["bench", "allreduce", "--world", "3", "--sizes-mb", "0.25,1", "--iters", "2"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let line = try XCTUnwrap(result.stdout.split(separator: "\n").last)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(json["world"] as? Int, 3)
        let busbw = try XCTUnwrap(json["busbw_gbps"] as? [String: Double])
        XCTAssertEqual(Set(busbw.keys), ["0.25", "1"])
        XCTAssertTrue(busbw.values.allSatisfy { $0 > 0 }, "\(busbw)")
        let rows = try XCTUnwrap(json["allreduce"] as? [[String: Any]])
        XCTAssertTrue(rows.allSatisfy { $0["correct"] as? Bool == true })
    }
}

final class BenchGradientAllReduceCommandTests: XCTestCase {
    /// Runs both ranks of `srdpr bench gradient-allreduce` on loopback; rank 0's result and rank 1's status.
    private func runTwoRanks(_ extra: [String]) throws -> (CommandResult, Int32) {
        let addresses = RingHarness.addresses(2).joined(separator: ",")
        let arguments = ["bench", "gradient-allreduce", "--addresses", addresses, "--shape", "64,2,2,128", "--wire", "bf16",
                         "--touched-rows", "10,20", "--backward-seconds", "0.05", "--iters", "1", "--warmup", "0"] + extra
        let other = Process()
        other.executableURL = Command.srdprBinary
        other.arguments = arguments + ["--rank", "1"]
        other.standardOutput = FileHandle.nullDevice
        other.standardError = FileHandle.nullDevice
        try other.run()
        let result = try Command.srdpr(arguments + ["--rank", "0"])
        other.waitUntilExit()
        return (result, other.terminationStatus)
    }

    /// `srdpr bench gradient-allreduce` (the scaling model's measurement): two ranks on loopback
    /// reduce a small bi-encoder's GradientPlan buckets alone and behind an emulated backward,
    /// and all-gather the seed batch's embeddings.
    func testTwoRanksReportTheAllReduceTheExposedTimeAndTheAllGather() throws {
        let (result, otherStatus) = try runTwoRanks([])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(otherStatus, 0)
        let line = try XCTUnwrap(result.stdout.split(separator: "\n").last)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(json["world"] as? Int, 2)
        XCTAssertEqual(json["wire"] as? String, "bf16")
        // Per encoder: 2 layers + the word-embedding rows + the rest of the embeddings.
        XCTAssertEqual(json["buckets"] as? Int, 8)
        let dense = try XCTUnwrap(json["dense_floats"] as? Int)
        XCTAssertEqual(json["payload_bytes"] as? Int, dense * 2 + (10 + 20) * 64 * 2 + 2 * 30522 * 4)
        XCTAssertGreaterThan(try XCTUnwrap(json["allreduce_s"] as? Double), 0)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(json["exposed_s"] as? Double), 0)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(json["backward_plus_exposed_s"] as? Double), 0.05)
        // The seed's batch by default: 8 + 16 embeddings of 64 floats, 12 rows on each rank, under
        // the trainer's default global_loss_buf_sz.
        XCTAssertEqual(json["allgather_rows"] as? [Int], [8, 16])
        XCTAssertEqual(json["allgather_bytes"] as? Int, 24 * 64 * 4)
        XCTAssertEqual(json["allgather_largest_rank_bytes"] as? Int, 12 * 64 * 4)
        XCTAssertEqual(json["global_loss_buf_sz"] as? Int, 150000)
        XCTAssertGreaterThan(try XCTUnwrap(json["allgather_s"] as? Double), 0)
        XCTAssertGreaterThan(try XCTUnwrap(json["allreduce_cpu_s"] as? Double), 0)
        XCTAssertEqual((json["loadavg_before"] as? [Double])?.count, 3)
    }

    /// A batch whose embeddings do not fit in global_loss_buf_sz fails as training would, naming it.
    func testAnAllGatherOverTheBufferSizeFailsNamingIt() throws {
        // 12 rows of 64 floats on each rank = 3,072 bytes, over a 1,000-byte limit.
        let (result, otherStatus) = try runTwoRanks(["--global-loss-buf-sz", "1000"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertNotEqual(otherStatus, 0)
        XCTAssertTrue(result.stderr.contains("3072 bytes, over global_loss_buf_sz=1000"), result.stderr)
        let (bad, _) = try runTwoRanks(["--batch-rows", "8"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--batch-rows needs 2"), bad.stderr)
    }
}
