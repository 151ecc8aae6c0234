import CKernels
import Foundation
@testable import Model
import XCTest

/// CKernels' fused attention (srdpr_attention_forward / _backward) against a plain double-precision
/// reference written from the definitions: random shapes with odd lengths and head sizes that are
/// not multiples of the register tile, with and without masked keys (a fully masked sequence too),
/// with and without dropout, in every kernel build the CPU runs (baseline, AVX2, AVX-512). The dropout masks must be Attention's:
/// the reference draws them with Attention.dropProbabilities.
final class AttentionKernelTests: XCTestCase {
    override func tearDown() { KernelBuild.reset() }

    struct Generator {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int32(truncatingIfNeeded: state >> 32)) / Float(Int32.max)
        }
    }

    struct Case {
        var length: Int, headDim: Int, heads: Int, head: Int
        var mask: [Int32]?
        var dropout: Float
    }

    /// Context, probabilities and the gradients of one (sequence, head) by the definitions, in double.
    func reference(_ c: Case, q: [Float], k: [Float], v: [Float], dCtx: [Float], rowKey: UInt64)
        -> (context: [Double], probabilities: [Double], dQ: [Double], dK: [Double], dV: [Double]) {
        let L = c.length, hd = c.headDim, stride = c.heads * c.headDim, base = c.head * c.headDim
        func at(_ x: [Float], _ row: Int, _ d: Int) -> Double { Double(x[row * stride + base + d]) }
        let scale = 1 / Double(hd).squareRoot()
        var P = [Double](repeating: 0, count: L * L)
        let real = (0..<L).map { (c.mask?[$0] ?? 1) != 0 }
        for i in 0..<L {
            if !real.contains(true) {   // no real key: uniform weights
                for j in 0..<L { P[i * L + j] = 1 / Double(L) }
                continue
            }
            var scores = [Double](repeating: -.infinity, count: L)
            for j in 0..<L where real[j] {
                scores[j] = scale * (0..<hd).reduce(0.0) { $0 + at(q, i, $1) * at(k, j, $1) }
            }
            let top = scores.max()!
            let e = scores.map { $0 == -.infinity ? 0 : exp($0 - top) }
            let sum = e.reduce(0, +)
            for j in 0..<L { P[i * L + j] = e[j] / sum }
        }
        // Dropout multipliers (0 or 1/(1-p)) as Attention draws them, from a matrix of ones.
        var multiplier = [Float](repeating: 1, count: L * L)
        if c.dropout > 0 {
            multiplier.withUnsafeMutableBufferPointer {
                Attention.dropProbabilities($0.baseAddress!, length: L, head: c.head, rowKey: rowKey, p: c.dropout)
            }
        }
        let D = (0..<(L * L)).map { P[$0] * Double(multiplier[$0]) }
        var context = [Double](repeating: 0, count: L * hd), dV = context, dQ = context, dK = context
        for i in 0..<L {
            for d in 0..<hd { context[i * hd + d] = (0..<L).reduce(0.0) { $0 + D[i * L + $1] * at(v, $1, d) } }
        }
        for j in 0..<L {
            for d in 0..<hd { dV[j * hd + d] = (0..<L).reduce(0.0) { $0 + D[$1 * L + j] * at(dCtx, $1, d) } }
        }
        var dS = [Double](repeating: 0, count: L * L)
        for i in 0..<L {
            var dP = [Double](repeating: 0, count: L)
            for j in 0..<L {
                dP[j] = Double(multiplier[i * L + j]) * (0..<hd).reduce(0.0) { $0 + at(dCtx, i, $1) * at(v, j, $1) }
            }
            let dot = (0..<L).reduce(0.0) { $0 + P[i * L + $1] * dP[$1] }
            for j in 0..<L { dS[i * L + j] = P[i * L + j] * (dP[j] - dot) * scale }
        }
        for i in 0..<L {
            for d in 0..<hd {
                dQ[i * hd + d] = (0..<L).reduce(0.0) { $0 + dS[i * L + $1] * at(k, $1, d) }
                dK[i * hd + d] = (0..<L).reduce(0.0) { $0 + dS[$1 * L + i] * at(q, $1, d) }
            }
        }
        return (context, P, dQ, dK, dV)
    }

    /// Checks one case against the reference and returns the kernels' outputs (context,
    /// probabilities, dQ, dK, dV) for comparisons between builds.
    @discardableResult
    func check(_ c: Case, seed: UInt64, build: String) -> [[Float]] {
        let L = c.length, hd = c.headDim, stride = c.heads * c.headDim, base = c.head * c.headDim
        var generator = Generator(state: seed)
        let q = (0..<(L * stride)).map { _ in 2 * generator.next() }
        let k = (0..<(L * stride)).map { _ in 2 * generator.next() }
        let v = (0..<(L * stride)).map { _ in generator.next() }
        let dCtx = (0..<(L * stride)).map { _ in generator.next() }
        let rowKey = DropoutContext.rowKey(seed, row: 3)
        let expected = reference(c, q: q, k: k, v: v, dCtx: dCtx, rowKey: rowKey)
        let scale = 1 / Float(hd).squareRoot()
        // Buffers with stable addresses; outputs start as NaN in the other heads' columns too: the
        // kernel must write only its own head.
        var owned: [UnsafeMutableBufferPointer<Float>] = []
        defer { owned.forEach { $0.deallocate() } }
        func buffer(_ values: [Float]) -> UnsafeMutablePointer<Float> {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(values.count, 1))
            _ = b.initialize(from: values)
            owned.append(b)
            return b.baseAddress!
        }
        let nan = [Float](repeating: .nan, count: L * stride)
        let qp = buffer(q) + base, kp = buffer(k) + base, vp = buffer(v) + base, dCtxp = buffer(dCtx) + base
        let contextp = buffer(nan), inferencep = buffer(nan), dQp = buffer(nan), dKp = buffer(nan), dVp = buffer(nan)
        let probabilitiesp = buffer([Float](repeating: .nan, count: L * L))
        let scratch = buffer([Float](repeating: .nan, count: srdpr_attention_scratch(L, hd)))
        let maskBuffer = c.mask.map { values -> UnsafeMutableBufferPointer<Int32> in
            let b = UnsafeMutableBufferPointer<Int32>.allocate(capacity: values.count)
            _ = b.initialize(from: values)
            return b
        }
        defer { maskBuffer?.deallocate() }
        let mask = maskBuffer.map { UnsafePointer($0.baseAddress!) }
        let dropout: Int32 = c.dropout > 0 ? 1 : 0
        srdpr_attention_forward(contextp + base, probabilitiesp, qp, kp, vp, L, hd, stride, stride, scale, mask, dropout, rowKey,
                                c.dropout, c.head, scratch)
        // The inference form (no probabilities kept) gives the same context.
        srdpr_attention_forward(inferencep + base, nil, qp, kp, vp, L, hd, stride, stride, scale, mask, dropout, rowKey,
                                c.dropout, c.head, scratch)
        srdpr_attention_backward(dQp + base, dKp + base, dVp + base, dCtxp, probabilitiesp, qp, kp, vp,
                                 L, hd, stride, stride, scale, dropout, rowKey, c.dropout, c.head, scratch)
        func array(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> [Float] { Array(UnsafeBufferPointer(start: p, count: n)) }
        let context = array(contextp, L * stride), inferenceContext = array(inferencep, L * stride)
        let dQ = array(dQp, L * stride), dK = array(dKp, L * stride), dV = array(dVp, L * stride)
        let probabilities = array(probabilitiesp, L * L)
        let label = "\(build) length \(L) headDim \(hd) head \(c.head)/\(c.heads) mask \(c.mask != nil) dropout \(c.dropout)"
        func compare(_ name: String, _ actual: [Float], _ wanted: [Double], strided: Bool, tolerance: Double) {
            let width = strided ? hd : L
            var worst = 0.0
            for i in 0..<L {
                for d in 0..<width {
                    let got = Double(strided ? actual[i * stride + base + d] : actual[i * L + d])
                    let error = abs(got - wanted[i * width + d]) / (1 + abs(wanted[i * width + d]))
                    if !(error <= worst) { worst = error.isNaN ? .infinity : error }
                }
            }
            XCTAssertLessThanOrEqual(worst, tolerance, "\(name): \(label)")
            if strided {   // the other heads' columns are untouched
                for i in 0..<L {
                    for column in 0..<stride where column < base || column >= base + hd {
                        XCTAssertTrue(actual[i * stride + column].isNaN, "\(name) wrote outside its head: \(label)")
                    }
                }
            }
        }
        compare("probabilities", probabilities, expected.probabilities, strided: false, tolerance: 1e-5)
        compare("context", context, expected.context, strided: true, tolerance: 1e-5)
        compare("inference context", inferenceContext, expected.context, strided: true, tolerance: 1e-5)
        compare("dQ", dQ, expected.dQ, strided: true, tolerance: 3e-5)
        compare("dK", dK, expected.dK, strided: true, tolerance: 3e-5)
        compare("dV", dV, expected.dV, strided: true, tolerance: 3e-5)
        return [context, probabilities, dQ, dK, dV]
    }

    /// The cases of testFusedAttentionMatchesTheDefinitions: every length and head size with each
    /// kind of mask and dropout.
    func allCases() -> [Case] {
        var generator = Generator(state: 42)
        var cases: [Case] = []
        for length in [1, 3, 8, 17, 33, 70] {
            for headDim in [3, 16, 32, 40, 64] {
                let heads = 3, head = (length + headDim) % heads
                // Mask: padding keys at the end (the padded layout), and a sequence with no real key.
                let padded = (0..<length).map { $0 < max(1, length * 2 / 3) ? Int32(1) : 0 }
                let holes = (0..<length).map { _ in generator.next() > -0.4 ? Int32(1) : 0 }
                for (mask, dropout) in [(nil, Float(0)), (nil, 0.1), (padded, 0.1), (holes, 0), (holes, 0.25)] as [([Int32]?, Float)] {
                    cases.append(Case(length: length, headDim: headDim, heads: heads, head: head, mask: mask, dropout: dropout))
                }
            }
        }
        cases.append(Case(length: 9, headDim: 32, heads: 2, head: 1, mask: [Int32](repeating: 0, count: 9), dropout: 0.1))
        return cases
    }

    func testFusedAttentionMatchesTheDefinitions() {
        let cases = allCases()
        for build in KernelBuild.available(reportingTo: "AttentionKernelTests") {
            build.force()
            for (n, c) in cases.enumerated() { check(c, seed: UInt64(n + 1), build: build.rawValue) }
        }
    }

    /// The AVX-512 and AVX2 clones agree closely: the products are the same fused multiply-add chains
    /// (the same bits), the dropout masks are the same, and only the softmax's row sums and its
    /// backward's dot products add 16 lanes instead of 8 (a few ulp), so every output stays within
    /// 1e-6 of the other clone's, relative to 1 + |value|.
    func testAVX512AndAVX2ClonesAgree() {
        guard KernelBuild.hasAVX512 else {
            print("AttentionKernelTests: SKIPPED the AVX-512 vs AVX2 comparison: this CPU has no AVX-512")
            return
        }
        defer { KernelBuild.reset() }
        let names = ["context", "probabilities", "dQ", "dK", "dV"]
        var worst = [Double](repeating: 0, count: names.count)
        for (n, c) in allCases().enumerated() {
            KernelBuild.avx2.force()
            let avx2 = check(c, seed: UInt64(n + 1), build: "avx2")
            KernelBuild.avx512.force()
            let avx512 = check(c, seed: UInt64(n + 1), build: "avx512")
            for (i, (a, b)) in zip(avx512, avx2).enumerated() {
                for (x, y) in zip(a, b) where !(x.isNaN && y.isNaN) {   // NaN: columns of other heads, untouched
                    let difference = abs(Double(x) - Double(y)) / (1 + abs(Double(y)))
                    if !(difference <= worst[i]) { worst[i] = difference.isNaN ? .infinity : difference }
                }
            }
        }
        print("AttentionKernelTests: AVX-512 vs AVX2, max |difference| / (1 + |value|): "
              + zip(names, worst).map { "\($0) \($1)" }.joined(separator: ", "))
        for (name, value) in zip(names, worst) { XCTAssertLessThanOrEqual(value, 1e-6, "\(name): AVX-512 vs AVX2") }
    }

    /// The fused and the sgemm implementations of the whole Attention layer agree (forward and
    /// backward, dropout on, several sequences and heads split over two threads), with Q, K, V as
    /// three matrices and as one [tokens, 3 x hidden] matrix (the encoder's layout), at lengths
    /// that span several forward blocks and end in partial register tiles; and the encoder's mix
    /// (fused forward, sgemm backward) gives the same gradients. (Before AttentionWorkload sized its
    /// buffers by the packed token rows, the gaps between sequences, the last sequence overran
    /// each buffer into the next one, and length 151 failed here intermittently at 2 threads.)
    func testFusedAndSgemmImplementationsAgree() throws {
        for (headDim, length) in [(16, 37), (32, 37), (32, 151), (64, 130)] {
            for oneMatrix in [false, true] {
                let work = try AttentionWorkload(sequences: 3, length: length, heads: 4, headDim: headDim, threads: 2, dropout: 0.1,
                                                 qkvInOneMatrix: oneMatrix)
                let label = "headDim \(headDim) length \(length) qkvInOneMatrix \(oneMatrix)"
                work.trainingForwardBackward(.sgemm)
                let sgemm = work.outputs()
                for (name, backward) in [("fused", AttentionImplementation.fused), ("fused forward + sgemm backward", .sgemm)] {
                    work.trainingForwardBackward(.fused, backward: backward)
                    let fused = work.outputs()
                    for (output, a, b) in [("context", sgemm.context, fused.context), ("dQ", sgemm.dQuery, fused.dQuery),
                                           ("dK", sgemm.dKey, fused.dKey), ("dV", sgemm.dValue, fused.dValue)] {
                        let worst = zip(a, b).map { abs($0 - $1) / (1 + abs($0)) }.max()!
                        XCTAssertLessThanOrEqual(worst, 1e-5, "\(name): \(output), \(label)")
                    }
                }
                work.inferenceForward(.fused)
                let inference = work.outputs().context
                work.inferenceForward(.sgemm)
                let worst = zip(inference, work.outputs().context).map { abs($0 - $1) / (1 + abs($0)) }.max()!
                XCTAssertLessThanOrEqual(worst, 1e-5, "inference context, \(label)")
                // The same inputs give the same bits on every call (no state carried between calls),
                // and at one thread as at two: each (sequence, head) is one thread's whole call. (Not
                // so for sgemm: at one thread OpenBLAS runs with the process's thread count, which
                // may move its last bits.)
                work.inferenceForward(.fused)
                XCTAssertEqual(work.outputs().context, inference, "fused inference is repeatable, \(label)")
                let oneThread = try AttentionWorkload(sequences: 3, length: length, heads: 4, headDim: headDim, threads: 1,
                                                      dropout: 0.1, qkvInOneMatrix: oneMatrix)
                work.trainingForwardBackward(.fused)
                oneThread.trainingForwardBackward(.fused)
                let (two, one) = (work.outputs(), oneThread.outputs())
                XCTAssertTrue(two.context == one.context && two.dQuery == one.dQuery && two.dKey == one.dKey
                              && two.dValue == one.dValue, "fused: 2 threads give the 1-thread bits, \(label)")
            }
        }
    }
}
