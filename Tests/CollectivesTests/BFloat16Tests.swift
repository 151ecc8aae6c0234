import Collectives
import Foundation
import TestSupport
import XCTest

/// `allreduce_dtype=bf16`: the conversion against PyTorch's, and the ring all-reduce with bfloat16
/// payloads against the exact sum.
final class BFloat16Tests: XCTestCase {
    /// Float bit patterns that exercise the rounding: signed zeros, infinities, NaNs, the largest
    /// float (rounds to infinity), the normal/subnormal boundary, subnormals and their ties,
    /// exact ties to even in both directions, just above and below a tie, carries into the
    /// exponent; then random patterns of every exponent.
    static func probeBits() -> [UInt32] {
        var bits: [UInt32] = [
            0x0000_0000, 0x8000_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0xFFC0_0000, 0x7F80_0001, 0x7FBF_FFFF,
            0x7F7F_FFFF, 0xFF7F_FFFF, 0x7F7F_7FFF, 0x7F7F_8000, 0x0080_0000, 0x007F_FFFF, 0x0000_0001, 0x8000_0001,
            0x0000_8000, 0x0001_8000, 0x0000_7FFF, 0x0001_7FFF, 0x0000_8001, 0x807F_8000,
            0x3F80_8000, 0x3F81_8000, 0x3F80_8001, 0x3F80_7FFF, 0xBF80_8000, 0xBF81_8000, 0x3FFF_8000, 0x3FFF_FFFF,
            Float(1).bitPattern, Float(-2.5).bitPattern, Float.pi.bitPattern, Float(1e-40).bitPattern, Float(3e38).bitPattern,
        ]
        var random = SplitMix(seed: 21)
        for _ in 0..<20_000 { bits.append(UInt32(truncatingIfNeeded: random.next())) }
        // Ties and near-ties in every exponent.
        for exponent in stride(from: UInt32(0), through: 254, by: 3) {
            for low: UInt32 in [0x7FFF, 0x8000, 0x8001, 0x1_8000] {
                bits.append((exponent << 23) | (UInt32(truncatingIfNeeded: random.next()) & 0x007E_0000) | low)
            }
        }
        return bits
    }

    func testConversionEqualsPyTorch() throws {
        let python = ProcessInfo.processInfo.environment["SRDPR_PYTHON"] ?? "/usr/bin/python3"
        let check = try Command.run(URL(fileURLWithPath: python), ["-c", "import torch, numpy"])
        guard check.status == 0 else {
            return XCTFail("torch is not installed for \(python): run scripts/setup.sh --test (or set SRDPR_PYTHON): \(check.stderr)")
        }
        let bits = Self.probeBits()
        let script = Fixtures.packageRoot.appendingPathComponent("Tests/reference/bf16_reference.py").path
        let reference = try Command.run(URL(fileURLWithPath: python), [script],
                                        stdin: bits.map { String(format: "%08x", $0) }.joined(separator: "\n"))
        XCTAssertEqual(reference.status, 0, reference.stderr)
        let theirs = reference.stdout.split(separator: "\n").compactMap { UInt16($0, radix: 16) }
        XCTAssertEqual(theirs.count, bits.count)
        var mismatches = 0, nans = 0, subnormals = 0, infinities = 0
        for (word, torchBits) in zip(bits, theirs) {
            let value = Float(bitPattern: word)
            let ours = BFloat16.bits(value)
            if value.isNaN {
                // Every NaN stays a NaN; which NaN differs inside PyTorch itself (its scalar path
                // gives 0x7FC0, the vectorised one 0xFFFF), so only NaN-ness is compared.
                nans += 1
                XCTAssertTrue(BFloat16.float(ours).isNaN && BFloat16.float(torchBits).isNaN, String(format: "%08x", word))
                continue
            }
            if value.isSubnormal { subnormals += 1 }
            if BFloat16.float(ours).isInfinite { infinities += 1 }
            if ours != torchBits {
                mismatches += 1
                if mismatches <= 10 { XCTFail(String(format: "%08x (%g): ours %04x, torch %04x", word, value, ours, torchBits)) }
            }
            XCTAssertEqual(BFloat16.rounded(value).bitPattern, UInt32(ours) << 16)
        }
        XCTAssertEqual(mismatches, 0)
        XCTAssertGreaterThan(nans, 4)
        XCTAssertGreaterThan(subnormals, 10)
        XCTAssertGreaterThan(infinities, 4)
    }

    /// Bounds of one element of a bf16 all-reduce: each of the n-1 hops rounds a partial sum
    /// (relative error 2^-9 each at most) and the owner rounds the total once more.
    static func bf16Bound(world: Int, absoluteSum: Double) -> Double {
        Double(world) * pow(2, -8) * absoluteSum + 1e-30
    }

    func testBF16AllReduceOverTwoAndThreeRanksIsTheSumWithinBF16Error() throws {
        var options = RingHarness.fastOptions()
        options.chunkBytes = 4096  // several chunks per segment
        for world in [2, 3] {
            for op in [ReduceOp.sum, .mean] {
                let count = 20_011
                let results = RingHarness.run(world: world, options: options) { comm -> [Float] in
                    var data = RingHarness.values(rank: comm.rank, count: count, seed: 3)
                    try data.withUnsafeMutableBufferPointer { try comm.allReduce($0, op: op, wire: .bf16) }
                    return data
                }
                let outputs = try RingHarness.unwrap(results)
                let exact = RingHarness.reference(world: world, count: count, op: op, seed: 3)
                var absoluteSums = [Double](repeating: 0, count: count)
                for rank in 0..<world {
                    for (i, v) in RingHarness.values(rank: rank, count: count, seed: 3).enumerated() { absoluteSums[i] += Double(abs(v)) }
                }
                let divisor = op == .mean ? Double(world) : 1
                var worst = 0.0, differs = 0
                for i in 0..<count {
                    let error = abs(Double(outputs[0][i]) - Double(exact[i]))
                    XCTAssertLessThanOrEqual(error, Self.bf16Bound(world: world, absoluteSum: absoluteSums[i] / divisor),
                                             "world \(world) \(op) element \(i): \(outputs[0][i]) vs \(exact[i])")
                    worst = max(worst, error / max(1e-6, absoluteSums[i] / divisor))
                    if outputs[0][i] != exact[i] { differs += 1 }
                    // The results are bfloat16 values.
                    XCTAssertEqual(outputs[0][i].bitPattern & 0xFFFF, 0)
                }
                XCTAssertLessThan(worst, Double(world) * pow(2, -8))
                XCTAssertGreaterThan(differs, 0, "bf16 should not be exact on random data")
                for rank in 1..<world { XCTAssertEqual(outputs[rank], outputs[0], "world \(world): rank \(rank) differs from rank 0") }
            }
        }
    }

    /// The bucketed (overlapping) reduction with the sparse word-embedding rows passes the wire
    /// type on: equal to one bf16 all-reduce of the packed rows.
    func testBucketedAndSparseRowsUseTheWireType() throws {
        let rows = 50, width = 8
        let results = RingHarness.run(world: 2) { comm -> [Float] in
            var matrix = [Float](repeating: 0, count: rows * width)
            let values = RingHarness.values(rank: comm.rank, count: rows * width, seed: 9)
            for row in stride(from: comm.rank, to: rows, by: 3) { for c in 0..<width { matrix[row * width + c] = values[row * width + c] } }
            let reducer = BucketedAllReduce(communicator: comm)
            try matrix.withUnsafeMutableBufferPointer { buffer in
                try reducer.start(buffer, buckets: [GradientBucket(0..<(rows * width), sparseRowWidth: width)], op: .sum, wire: .bf16)
                try reducer.wait()
            }
            return matrix
        }
        let outputs = try RingHarness.unwrap(results)
        XCTAssertEqual(outputs[0], outputs[1])
        for v in outputs[0] { XCTAssertEqual(v.bitPattern & 0xFFFF, 0, "\(v) is not a bfloat16 value") }
        XCTAssertTrue(outputs[0].contains { $0 != 0 })
    }

    /// A world of one sends nothing: bf16 leaves every bit as it was (in process and over a ring of one).
    func testWorldOfOneIsUnaffected() throws {
        let original = RingHarness.values(rank: 0, count: 1001, seed: 4)
        var data = original
        try data.withUnsafeMutableBufferPointer { try InProcessCommunicator().allReduce($0, op: .mean, wire: .bf16) }
        XCTAssertEqual(data.map(\.bitPattern), original.map(\.bitPattern))
        let ring = try RingHarness.unwrap(RingHarness.run(world: 1) { comm -> [Float] in
            var data = original
            try data.withUnsafeMutableBufferPointer { try comm.allReduce($0, op: .sum, wire: .bf16) }
            return data
        })
        XCTAssertEqual(ring[0].map(\.bitPattern), original.map(\.bitPattern))
    }

    /// Ranks configured differently fail on the first message, naming allreduce_dtype.
    func testMixedWireTypesFailNamingTheSetting() throws {
        let results = RingHarness.run(world: 2) { comm -> [Float] in
            var data = RingHarness.values(rank: comm.rank, count: 1000)
            try data.withUnsafeMutableBufferPointer { try comm.allReduce($0, op: .sum, wire: comm.rank == 0 ? .bf16 : .fp32) }
            return data
        }
        let messages = results.compactMap { result -> String? in
            if case .failure(let error) = result { return "\(error)" }
            return nil
        }
        XCTAssertEqual(messages.count, 2, "both ranks must fail")
        XCTAssertTrue(messages.contains { $0.contains("allreduce_dtype") }, messages.joined(separator: "\n"))
    }
}

/// SplitMix64 for the random probe patterns (the tests' own, so they do not depend on Data).
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
