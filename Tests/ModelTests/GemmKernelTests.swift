import CKernels
import Data
import Foundation
@testable import Model
import TestSupport
import XCTest

/// `srdpr_gemm_rows`, the Linear layers' forward kernel, in every clone this CPU runs (AVX-512,
/// AVX2 + FMA and the baseline SSE2 one): within the fp32 summation bound of the exact product, bit for bit the plain
/// scalar chain (bias, then + input[k] * weight[k] for k in order) at odd shapes, and a row's
/// bytes independent of the batch it is in and of the thread count. Then the packed weights
/// follow the parameters: a forward after a parameter update uses the updated values.
final class GemmKernelTests: XCTestCase {
    override func tearDown() { KernelBuild.reset() }

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

    /// One clone of the kernel: `select()` makes the process run it.
    struct Build {
        /// The clone; `fused`: whether its chains use fused multiply-adds (the scalar reference's form).
        var clone: KernelBuild, fused: Bool
        var name: String { clone.rawValue }

        func select() {
            clone.force()
            XCTAssertEqual(String(cString: srdpr_kernels_clone()), name)
        }
    }

    static let avx512 = Build(clone: .avx512, fused: true)
    static let avx2 = Build(clone: .avx2, fused: true)
    static let baseline = Build(clone: .baseline, fused: false)

    static func cpuHas(_ build: Build) -> Bool {
        switch build.clone {
        case .avx512: return KernelBuild.hasAVX512
        case .avx2: return KernelBuild.hasAVX2
        case .baseline: return true
        }
    }

    func builds() -> [Build] {
        let list = [Self.avx512, Self.avx2, Self.baseline].filter(Self.cpuHas)
        for missing in [Self.avx512, Self.avx2] where !list.contains(where: { $0.name == missing.name }) {
            print("GemmKernelTests: SKIPPING the \(missing.name) clone: this CPU does not support it (tested: \(list.map(\.name)))")
        }
        return list
    }

    func testBitForBitTheScalarChainAtOddShapes() {
        for build in builds() {
            build.select()
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
            // Every row count 1...25 at one odd shape (partial register tiles of every size, up to
            // two AVX-512 tiles and one row more).
            for rows in 1...25 {
                let operands = Operands(rows: rows, inDim: 37, outDim: 23, seed: UInt64(100 + rows))
                XCTAssertEqual(operands.product().map(\.bitPattern), operands.scalarChain(fused: build.fused).map(\.bitPattern),
                               "\(build.name): \(rows) rows x 37 -> 23")
            }
            XCTAssertEqual(checked, 74)
            // Wider than one column block (AVX2 16 panels = 256 columns, AVX-512 32 = 512), deeper
            // than one depth block; an odd panel count (the AVX-512 tile's single-panel end).
            // (200, 600, 290): several row blocks, the last one partial, each continuing its chains over
            // three depth blocks.
            for (rows, inDim, outDim) in [(7, 300, 290), (13, 300, 530), (25, 257, 561), (200, 600, 290)] {
                let wide = Operands(rows: rows, inDim: inDim, outDim: outDim, seed: 99)
                XCTAssertEqual(wide.product().map(\.bitPattern), wide.scalarChain(fused: build.fused).map(\.bitPattern),
                               "\(build.name): \(rows) rows x \(inDim) -> \(outDim)")
            }
        }
    }

    /// The AVX-512 clone gives the AVX2 clone's bytes (the same FMA chains): every row count around
    /// its 12-row tile, depths and widths off the 16-column panels, across its depth (256), column
    /// (32 panels) and row (384) blocks, on 1 and 2 threads. Skipped, loudly, on a CPU without AVX-512.
    func testAVX512CloneEqualsTheAVX2Clone() throws {
        guard Self.cpuHas(Self.avx512) else {
            print("GemmKernelTests: SKIPPING testAVX512CloneEqualsTheAVX2Clone: this CPU has no AVX-512F, so the AVX-512 clone never runs here")
            throw XCTSkip("this CPU has no AVX-512F")
        }
        var shapes = (1...26).map { rows in (rows, 37 + rows, [23, 1, 16, 33, 48, 7][rows % 6]) }
        // ... and across its row block (384 rows) on one thread.
        shapes += [(12, 256, 512), (24, 257, 513), (30, 600, 1100), (5, 1536, 384), (49, 384, 1152), (397, 260, 530)]
        for (rows, inDim, outDim) in shapes {
            let operands = Operands(rows: rows, inDim: inDim, outDim: outDim, seed: UInt64(rows * 1000 + inDim))
            for threads in [1, 2] {
                Self.avx512.select()
                let wide = operands.product(threads: threads)
                Self.avx2.select()
                let narrow = operands.product(threads: 1)
                let differing = zip(wide, narrow).filter { $0.bitPattern != $1.bitPattern }.count
                XCTAssertEqual(differing, 0, "\(rows) x \(inDim) -> \(outDim), \(threads) thread(s): \(differing) outputs of the AVX-512 clone differ from the AVX2 clone's")
            }
        }
    }

    /// srdpr_gemm_rows_gelu (Linear.forwardGELU) gives the bytes of srdpr_gemm_rows followed by the
    /// GELU pass (srdpr_gelu_forward_derivative, or srdpr_gelu_forward without a derivative) in
    /// every clone: odd shapes, partial tiles and panels, across the depth (256), column and row
    /// (384) blocks, MiniLM's intermediate shape, on 1 and 2 threads.
    func testGELUEpilogueEqualsTheProductThenTheGELUPass() {
        for build in builds() {
            build.select()
            for (rows, inDim, outDim) in [(1, 5, 7), (13, 37, 23), (25, 257, 561), (30, 384, 1536), (397, 260, 530)] {
                let operands = Operands(rows: rows, inDim: inDim, outDim: outDim, seed: UInt64(rows * 1000 + inDim))
                let product = operands.product(), count = product.count
                var value = [Float](repeating: .nan, count: count), derivative = value, valueOnly = value
                srdpr_gelu_forward_derivative(&value, &derivative, product, count)
                srdpr_gelu_forward(&valueOnly, product, count)
                // Linear.forwardGELU reads the weight and bias from a parameter buffer.
                let parameters = operands.weight + operands.bias
                for threads in [1, 2] {
                    let before = BLASThreads.current
                    BLASThreads.set(threads)
                    defer { BLASThreads.set(before) }
                    var gotValue = [Float](repeating: .nan, count: count), gotDerivative = gotValue, gotValueOnly = gotValue
                    let weights = PackedLinearWeights()
                    parameters.withUnsafeBufferPointer { P in
                        operands.input.withUnsafeBufferPointer { x in
                            Linear.forwardGELU(&gotValue, derivative: &gotDerivative, x.baseAddress!, weights: weights,
                                               parameters: P.baseAddress!, weight: 0, bias: outDim * inDim, rows: rows, inDim: inDim, outDim: outDim)
                            Linear.forwardGELU(&gotValueOnly, derivative: nil, x.baseAddress!, weights: weights,
                                               parameters: P.baseAddress!, weight: 0, bias: outDim * inDim, rows: rows, inDim: inDim, outDim: outDim)
                        }
                    }
                    let label = "\(build.name): \(rows) x \(inDim) -> \(outDim), \(threads) thread(s)"
                    XCTAssertEqual(gotValue.map(\.bitPattern), value.map(\.bitPattern), "\(label): GELU values")
                    XCTAssertEqual(gotDerivative.map(\.bitPattern), derivative.map(\.bitPattern), "\(label): GELU derivatives")
                    XCTAssertEqual(gotValueOnly.map(\.bitPattern), valueOnly.map(\.bitPattern), "\(label): GELU values without the derivative")
                }
                // (Both signs and GELU's tails are covered: the deep products spread over about ±10.)
                if inDim >= 256 { XCTAssertLessThan(product.min()!, -3, "\(rows) x \(inDim) -> \(outDim)")
                XCTAssertGreaterThan(product.max()!, 3, "\(rows) x \(inDim) -> \(outDim)") }
            }
        }
    }

    /// |got - exact| <= gamma(n) * (|bias| + sum |a w|), gamma(n) = n u / (1 - n u), u = 2^-24:
    /// the bound of any fp32 summation of n terms (rounded products add at most one more term).
    func testWithinTheSummationBoundOfTheExactProduct() {
        for build in builds() {
            build.select()
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
            build.select()
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
