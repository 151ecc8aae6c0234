import CKernels
import Data
import Foundation
@testable import Model
import TestSupport
import XCTest

/// `srdpr_gemm_rows`, the Linear layers' forward kernel, in both builds (AVX2 + FMA and the
/// baseline SSE2 one): within the fp32 summation bound of the exact product, bit for bit the plain
/// scalar chain (bias, then + input[k] * weight[k] for k in order) at odd shapes, and a row's
/// bytes independent of the batch it is in and of the thread count. Then the packed weights
/// follow the parameters: a forward after a parameter update uses the updated values.
final class GemmKernelTests: XCTestCase {
    override func tearDown() { srdpr_kernels_force_baseline(0) }

    struct Operands {
        var input: [Float], weight: [Float], bias: [Float]
        var rows: Int, inDim: Int, outDim: Int

        init(rows: Int, inDim: Int, outDim: Int, seed: UInt64) {
            var random = SplitMix64(seed: seed)
            func value(_ scale: Float) -> Float { Float(Int(random.next() % 20001) - 10000) / 10000 * scale }
            input = (0..<(rows * inDim)).map { _ in value(3) }
            weight = (0..<(outDim * inDim)).map { _ in value(0.2) }
            bias = (0..<outDim).map { _ in value(1) }
            self.rows = rows; self.inDim = inDim; self.outDim = outDim
        }

        func packed() -> [Float] {
            var packed = [Float](repeating: .nan, count: srdpr_gemm_packed_floats(outDim, inDim))
            srdpr_gemm_pack_weights(&packed, weight, bias, outDim, inDim)
            return packed
        }

        /// The kernel over rows [first, first + count) on `threads` threads (Linear.forward's split).
        func product(first: Int = 0, count: Int? = nil, threads: Int = 1) -> [Float] {
            let count = count ?? rows, packed = packed()
            var out = [Float](repeating: .nan, count: count * outDim)
            let before = BLASThreads.current
            BLASThreads.set(threads)
            defer { BLASThreads.set(before) }
            input.withUnsafeBufferPointer { x in
                out.withUnsafeMutableBufferPointer {
                    Linear.forward($0.baseAddress!, x.baseAddress! + first * inDim, packed: packed, rows: count, inDim: inDim, outDim: outDim)
                }
            }
            return out
        }

        /// The scalar chain: a fused multiply-add per term (AVX2 build) or a rounded product then a
        /// rounded sum (baseline build).
        func scalarChain(fused: Bool) -> [Float] {
            var out = [Float](repeating: 0, count: rows * outDim)
            for r in 0..<rows {
                for o in 0..<outDim {
                    var sum = bias[o]
                    for k in 0..<inDim {
                        let a = input[r * inDim + k], w = weight[o * inDim + k]
                        sum = fused ? sum.addingProduct(a, w) : sum + a * w
                    }
                    out[r * outDim + o] = sum
                }
            }
            return out
        }
    }

    func builds() -> [(name: String, forceBaseline: Int32, fused: Bool)] {
        var list: [(String, Int32, Bool)] = [("baseline", 1, false)]
        srdpr_kernels_force_baseline(0)
        if srdpr_kernels_use_avx2() != 0 { list.insert(("avx2", 0, true), at: 0) }
        else { print("GemmKernelTests: this CPU has no AVX2 + FMA: only the baseline build is tested") }
        return list
    }

    func testBitForBitTheScalarChainAtOddShapes() {
        for build in builds() {
            srdpr_kernels_force_baseline(build.forceBaseline)
            var checked = 0
            // Depths 1...70 (all), then across the 256-deep blocks; columns not multiples of 16.
            for inDim in Array(1...70) + [255, 256, 257, 600] {
                let rows = 1 + inDim % 13, outDim = [1, 5, 16, 17, 33, 40, 7][inDim % 7]
                let operands = Operands(rows: rows, inDim: inDim, outDim: outDim, seed: UInt64(inDim))
                let got = operands.product(), expected = operands.scalarChain(fused: build.fused)
                let differing = zip(got, expected).filter { $0.bitPattern != $1.bitPattern }.count
                XCTAssertEqual(differing, 0, "\(build.name): \(rows) x \(inDim) -> \(outDim): \(differing) outputs differ from the scalar chain")
                checked += 1
            }
            // Every row count 1...13 at one odd shape (partial register tiles of every size).
            for rows in 1...13 {
                let operands = Operands(rows: rows, inDim: 37, outDim: 23, seed: UInt64(100 + rows))
                XCTAssertEqual(operands.product().map(\.bitPattern), operands.scalarChain(fused: build.fused).map(\.bitPattern),
                               "\(build.name): \(rows) rows x 37 -> 23")
            }
            XCTAssertEqual(checked, 74)
            // Wider than one column block (16 panels = 256 columns), deeper than one depth block.
            let wide = Operands(rows: 7, inDim: 300, outDim: 290, seed: 99)
            XCTAssertEqual(wide.product().map(\.bitPattern), wide.scalarChain(fused: build.fused).map(\.bitPattern),
                           "\(build.name): 7 rows x 300 -> 290")
        }
    }

    /// |got - exact| <= gamma(n) * (|bias| + sum |a w|), gamma(n) = n u / (1 - n u), u = 2^-24:
    /// the bound of any fp32 summation of n terms (rounded products add at most one more term).
    func testWithinTheSummationBoundOfTheExactProduct() {
        for build in builds() {
            srdpr_kernels_force_baseline(build.forceBaseline)
            for (rows, inDim, outDim) in [(50, 384, 70), (13, 1536, 48), (7, 3072, 33)] {
                let operands = Operands(rows: rows, inDim: inDim, outDim: outDim, seed: 7)
                let got = operands.product()
                let u = 0x1p-24, n = Double(inDim + 2), gamma = n * u / (1 - n * u)
                var worst = 0.0
                for r in 0..<rows {
                    for o in 0..<outDim {
                        var exact = Double(operands.bias[o]), magnitude = abs(exact)
                        for k in 0..<inDim {
                            let term = Double(operands.input[r * inDim + k]) * Double(operands.weight[o * inDim + k])
                            exact += term
                            magnitude += abs(term)
                        }
                        worst = max(worst, abs(Double(got[r * outDim + o]) - exact) / (gamma * magnitude))
                    }
                }
                XCTAssertLessThanOrEqual(worst, 1, "\(build.name): \(rows) x \(inDim) -> \(outDim) beyond the summation bound (\(worst) of it)")
                // Far inside the worst case in practice: rounding errors mostly cancel.
                XCTAssertLessThan(worst, 0.25, "\(build.name): \(rows) x \(inDim) -> \(outDim): \(worst) of the bound")
            }
        }
    }

    func testRowBytesIndependentOfBatchAndThreads() {
        for build in builds() {
            srdpr_kernels_force_baseline(build.forceBaseline)
            let operands = Operands(rows: 301, inDim: 384, outDim: 200, seed: 11)
            let whole = operands.product()
            for threads in [1, 2, 3] {
                XCTAssertEqual(operands.product(threads: threads).map(\.bitPattern), whole.map(\.bitPattern),
                               "\(build.name): \(threads) threads change the bytes")
                for (first, count) in [(0, 1), (5, 1), (300, 1), (1, 7), (37, 200), (13, 288)] {
                    let part = operands.product(first: first, count: count, threads: threads)
                    let same = whole[(first * operands.outDim)..<((first + count) * operands.outDim)]
                    XCTAssertEqual(part.map(\.bitPattern), same.map(\.bitPattern),
                                   "\(build.name): rows \(first)..<\(first + count) alone on \(threads) threads differ from the whole call")
                }
            }
        }
    }

    /// The encoder packs its Linear weights from the parameters as they are: a forward after an
    /// optimizer-like write equals a fresh encoder's forward over the written parameters, in the
    /// training mode (packed at every use) and after a forward-only pass that kept them
    /// (parametersFixed, cleared before the write).
    func testForwardAfterAParameterUpdateUsesTheUpdate() throws {
        let config = BertConfig(vocabSize: 60, hiddenSize: 48, numLayers: 2, numHeads: 3, intermediateSize: 80, maxPositions: 32)
        let encoder = BertEncoder(config: config)
        encoder.threads = 1
        var random = SplitMix64(seed: 0xFACE)
        for i in 0..<encoder.parameters.count { encoder.parameters.pointer[i] = Float(Int(random.next() % 2001) - 1000) / 4000 }
        let batch = try TokenBatch(sequences: [[1, 5, 9, 13, 2], [1, 7, 2], [1, 30, 31, 32, 33, 34, 2]])
        func fresh() throws -> [Float] {
            let other = BertEncoder(config: config)
            other.threads = 1
            other.pooling = encoder.pooling
            other.parameters.pointer.update(from: encoder.parameters.pointer, count: encoder.parameters.count)
            return try other.forward(batch, keepActivations: false)
        }
        // Every parameter moves, as after an AdamW step.
        func update() {
            for i in 0..<encoder.parameters.count { encoder.parameters.pointer[i] += Float(Int(random.next() % 201) - 100) / 20000 }
        }
        for pooling in [Pooling.cls, .mean] {
            encoder.pooling = pooling
            let before = try encoder.forward(batch)
            XCTAssertEqual(before.map(\.bitPattern), try fresh().map(\.bitPattern))
            update()
            let after = try encoder.forward(batch)
            XCTAssertNotEqual(after, before)
            XCTAssertEqual(after.map(\.bitPattern), try fresh().map(\.bitPattern), "\(pooling): the training forward read stale weights")
            encoder.parametersFixed = true
            let kept = try encoder.forward(batch, keepActivations: false)
            XCTAssertEqual(kept.map(\.bitPattern), try encoder.forward(batch, keepActivations: false).map(\.bitPattern))
            encoder.parametersFixed = false
            update()
            XCTAssertEqual(try encoder.forward(batch, keepActivations: false).map(\.bitPattern), try fresh().map(\.bitPattern),
                           "\(pooling): the weights kept while the parameters were fixed outlived the fixing")
        }
    }
}
