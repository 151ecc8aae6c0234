import Collectives
import Foundation
import XCTest

/// The word-embedding gradient is reduced over the rows some rank wrote only; the result must
/// be what the dense all-reduce gives (bit for bit with 2 ranks), rows nobody wrote stay +0.0.
final class SparseRowAllReduceTests: XCTestCase {
    /// Rank `rank`'s matrix: rows it "touched" hold test values, the others +0.0; row 1 is -0.0
    /// on rank 0 only (a written row whose values happen to be zero).
    func matrix(rank: Int, rows: Int, width: Int) -> [Float] {
        let values = RingHarness.values(rank: rank, count: rows * width)
        var out = [Float](repeating: 0, count: rows * width)
        for row in 0..<rows where (row * 7 + rank * 3) % 5 == 0 || row == rows - 1 {
            for i in 0..<width { out[row * width + i] = values[row * width + i] }
        }
        if rank == 0 { for i in 0..<width { out[width + i] = -0.0 } }
        return out
    }

    func testMatchesTheDenseAllReduce() throws {
        let rows = 41, width = 6
        for world in [2, 3] {
            for op in [ReduceOp.mean, .sum] {
                let results = RingHarness.run(world: world) { comm -> ([Float], [Float]) in
                    var sparse = self.matrix(rank: comm.rank, rows: rows, width: width)
                    var dense = sparse
                    try sparse.withUnsafeMutableBufferPointer { try comm.allReduceNonzeroRows($0, rowWidth: width, op: op) }
                    try dense.withUnsafeMutableBufferPointer { try comm.allReduce($0, op: op) }
                    return (sparse, dense)
                }
                for (rank, (sparse, dense)) in try RingHarness.unwrap(results).enumerated() {
                    var expected = [Double](repeating: 0, count: rows * width)
                    for r in 0..<world { for (i, v) in matrix(rank: r, rows: rows, width: width).enumerated() { expected[i] += Double(v) } }
                    for i in sparse.indices {
                        let want = op == .mean ? expected[i] / Double(world) : expected[i]
                        XCTAssertEqual(Double(sparse[i]), want, accuracy: 1e-5, "world \(world) \(op) rank \(rank) element \(i)")
                        if world == 2 { XCTAssertEqual(sparse[i].bitPattern, dense[i].bitPattern, "world 2 \(op) rank \(rank) element \(i)") }
                    }
                    // Untouched rows keep +0.0 bits; the -0.0 row was reduced like any written row.
                    let untouched = (0..<rows).filter { row in (0..<world).allSatisfy { r in (row * 7 + r * 3) % 5 != 0 } && row != rows - 1 && row != 1 }
                    XCTAssertFalse(untouched.isEmpty)
                    for row in untouched { for i in 0..<width { XCTAssertEqual(sparse[row * width + i].bitPattern, 0) } }
                }
            }
        }
    }

    func testAllZeroMatrixAndBadWidth() throws {
        let results = RingHarness.run(world: 2) { comm -> [Float] in
            var zeros = [Float](repeating: 0, count: 30)
            try zeros.withUnsafeMutableBufferPointer { try comm.allReduceNonzeroRows($0, rowWidth: 3, op: .mean) }
            XCTAssertThrowsError(try zeros.withUnsafeMutableBufferPointer { try comm.allReduceNonzeroRows($0, rowWidth: 7, op: .mean) }) {
                XCTAssertTrue("\($0)".contains("not rows of 7"), "\($0)")
            }
            return zeros
        }
        for zeros in try RingHarness.unwrap(results) { XCTAssertEqual(zeros, [Float](repeating: 0, count: 30)) }
        // One rank: nothing to do, nothing changes.
        var values: [Float] = [1, 0, 2, 3]
        try values.withUnsafeMutableBufferPointer { try InProcessCommunicator().allReduceNonzeroRows($0, rowWidth: 2, op: .mean) }
        XCTAssertEqual(values, [1, 0, 2, 3])
    }

    /// A sparse bucket inside a bucketed all-reduce.
    func testSparseBucketInABucketedAllReduce() throws {
        let rows = 20, width = 4, dense = 13
        let results = RingHarness.run(world: 2) { comm -> [Float] in
            var grads = RingHarness.values(rank: comm.rank, count: dense) + self.matrix(rank: comm.rank, rows: rows, width: width)
            let reducer = BucketedAllReduce(communicator: comm)
            try grads.withUnsafeMutableBufferPointer { grads in
                try reducer.start(grads, buckets: [GradientBucket(dense..<(dense + rows * width), sparseRowWidth: width), GradientBucket(0..<dense)],
                                  op: .mean)
                try reducer.markReady(0)
                try reducer.markReady(1)
                try reducer.wait()
            }
            return grads
        }
        let got = try RingHarness.unwrap(results)
        XCTAssertEqual(got[0].map(\.bitPattern), got[1].map(\.bitPattern))
        let head = RingHarness.reference(world: 2, count: dense, op: .mean)
        for i in 0..<dense { XCTAssertEqual(got[0][i], head[i], accuracy: 1e-6) }
        let a = matrix(rank: 0, rows: rows, width: width), b = matrix(rank: 1, rows: rows, width: width)
        for i in 0..<(rows * width) { XCTAssertEqual(got[0][dense + i], (a[i] + b[i]) / 2, accuracy: 1e-6) }
    }
}
