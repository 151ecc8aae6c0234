import CKernels
import Data
import Foundation
@testable import Model
import XCTest

/// The vectorised kernels of CKernels against libm and double-precision references, in both the
/// AVX2+FMA build and the baseline build (forced), with lengths that are not multiples of 8 so the
/// tails run too.
final class ElementwiseKernelTests: XCTestCase {
    override func tearDown() { srdpr_kernels_force_baseline(0) }

    /// Runs `body` once per kernel build this CPU can run, naming it for failure messages.
    func forEachBuild(_ body: (String) throws -> Void) rethrows {
        srdpr_kernels_force_baseline(1)
        try body("baseline")
        srdpr_kernels_force_baseline(0)
        if srdpr_kernels_use_avx2() != 0 { try body("avx2") } else {
            print("ElementwiseKernelTests: this CPU has no AVX2+FMA; only the baseline kernels were checked")
        }
    }

    /// Distance in units in the last place between two finite floats (across zero too).
    func ulps(_ a: Float, _ b: Float) -> Int64 {
        func ordered(_ x: Float) -> Int64 {
            let bits = Int64(Int32(bitPattern: x.bitPattern))
            return bits < 0 ? -(bits & 0x7fff_ffff) : bits
        }
        return abs(ordered(a) - ordered(b))
    }

    /// erf against glibc's erff and against erf in double rounded to float, over every 61st float
    /// in [0, 6] and its negative plus every float within 4096 ulp of the approximation's branch
    /// points (0.921875 and 3.925): at most 2 ulp from the correctly rounded value, at most 3 from
    /// erff (which is itself up to 1 ulp off).
    func testErfWithinTwoUlpOfTheRoundedValue() {
        var inputs: [Float] = []
        var bits: UInt32 = 0
        while bits < Float(6).bitPattern {
            let x = Float(bitPattern: bits)
            inputs.append(x)
            inputs.append(-x)
            bits += 61
        }
        for edge: Float in [0.921875, 3.925] {
            var x = edge
            for _ in 0..<4096 { x = x.nextDown }
            for _ in 0..<8192 { inputs.append(x); x = x.nextUp }
        }
        inputs += [0, -0, 1e-30, -1e-30, 10, -10, 1e30, -1e30, .infinity, -.infinity]
        forEachBuild { build in
            var out = [Float](repeating: 0, count: inputs.count)
            srdpr_erf(&out, inputs, inputs.count)
            var worstLibm: Int64 = 0, worstRounded: Int64 = 0, worstAt: Float = 0
            for (x, y) in zip(inputs, out) {
                let libm = ulps(y, erff(x)), rounded = ulps(y, Float(erf(Double(x))))
                if libm > worstLibm { worstLibm = libm; worstAt = x }
                worstRounded = max(worstRounded, rounded)
            }
            XCTAssertLessThanOrEqual(worstLibm, 3, "\(build): erf is \(worstLibm) ulp from erff at \(worstAt)")
            XCTAssertLessThanOrEqual(worstRounded, 2, "\(build): erf is \(worstRounded) ulp from the rounded double erf")
            print("ElementwiseKernelTests: \(build) erf over \(inputs.count) inputs: max \(worstLibm) ulp from erff, \(worstRounded) ulp from the correctly rounded erf")
            var nan = [Float](repeating: 0, count: 1)
            srdpr_erf(&nan, [Float.nan], 1)
            XCTAssertTrue(nan[0].isNaN, "\(build): erf(NaN) must be NaN")
        }
    }

    /// The three GELU kernels on `x`: forward, forward-with-derivative (value and derivative) and
    /// backward of `dOut`.
    func runGELUKernels(_ x: [Float], dOut: [Float]) -> (forward: [Float], value: [Float], derivative: [Float], backward: [Float]) {
        var y = [Float](repeating: 0, count: x.count), y2 = y, derivative = y, dIn = y
        srdpr_gelu_forward(&y, x, x.count)
        srdpr_gelu_forward_derivative(&y2, &derivative, x, x.count)
        srdpr_gelu_backward(&dIn, dOut, x, x.count)
        return (y, y2, derivative, dIn)
    }

    /// GELU, its derivative and its backward against double precision on [-12, 12].
    func testGELUForwardAndBackwardMatchDoublePrecision() {
        let count = 20_003
        let x = (0..<count).map { Float(-12 + 24 * Double($0) / Double(count - 1)) }
        let dOut = (0..<count).map { Float(sin(Double($0))) }
        forEachBuild { build in
            let (y, y2, derivative, dIn) = runGELUKernels(x, dOut: dOut)
            for i in 0..<count {
                let v = Double(x[i])
                let cdf = 0.5 * (1 + erf(v / 2.0.squareRoot()))
                let exact = v * cdf, exactDerivative = cdf + v * exp(-v * v / 2) / (2 * Double.pi).squareRoot()
                XCTAssertEqual(Double(y[i]), exact, accuracy: 4e-7 * max(1, abs(exact)), "\(build): GELU(\(v))")
                XCTAssertEqual(y2[i], y[i], "\(build): forward and forwardWithDerivative differ at \(v)")
                XCTAssertEqual(Double(derivative[i]), exactDerivative, accuracy: 4e-7, "\(build): GELU'(\(v))")
                XCTAssertEqual(Double(dIn[i]), Double(dOut[i]) * exactDerivative, accuracy: 4e-7, "\(build): backward at \(v)")
            }
        }
    }

    /// GELU over a dense sweep of floats against x Φ(x) in double (Φ from erfc, so the reference has
    /// no 1 + erf cancellation): every 997th float in [0, 12] and its negative, every float within
    /// 1024 ulp of the CDF's tail point (3.925 √2) and of the density's clamp (13), both signs, and the
    /// special values. Bounds, both builds: x ≥ 0 within 2 ulp of the correctly rounded GELU; x in
    /// (-3.925 √2, 0) within 64 ulp of its (small) value; everywhere within 1e-7 · max(1, |x|)
    /// absolute; the derivative within 2e-7 absolute; backward = dOut · derivative bit for bit.
    func testGELUOverADenseSweepAgainstDoublePrecision() {
        var inputs: [Float] = []
        var bits: UInt32 = 0
        while bits < Float(12).bitPattern {
            let x = Float(bitPattern: bits)
            inputs += [x, -x]
            bits += 997
        }
        for edge: Float in [5.5507884, 13] {
            var x = edge
            for _ in 0..<1024 { x = x.nextDown }
            for _ in 0..<2048 { inputs += [x, -x]; x = x.nextUp }
        }
        let count = inputs.count
        let dOut = (0..<count).map { Float(sin(Double($0))) }
        forEachBuild { build in
            let (y, y2, derivative, dIn) = runGELUKernels(inputs, dOut: dOut)
            var worstPositive: Int64 = 0, worstNegative: Int64 = 0, worstAbsolute = 0.0, worstDerivative = 0.0
            var failures = 0
            for i in 0..<count {
                let x = Double(inputs[i])
                let cdf = 0.5 * erfc(-x / 2.0.squareRoot())
                let exact = x * cdf, exactDerivative = cdf + x * exp(-x * x / 2) / (2 * Double.pi).squareRoot()
                let distance = ulps(y[i], Float(exact))
                if x >= 0 { worstPositive = max(worstPositive, distance) } else if x > -5.5507884 { worstNegative = max(worstNegative, distance) }
                let absolute = abs(Double(y[i]) - exact) / max(1, abs(x))
                worstAbsolute = max(worstAbsolute, absolute)
                worstDerivative = max(worstDerivative, abs(Double(derivative[i]) - exactDerivative))
                if y2[i].bitPattern != y[i].bitPattern || dIn[i].bitPattern != (dOut[i] * derivative[i]).bitPattern {
                    failures += 1
                    if failures <= 5 { XCTFail("\(build): at \(x) forward \(y[i]) vs \(y2[i]), backward \(dIn[i]) vs dOut · derivative \(dOut[i] * derivative[i])") }
                }
            }
            print("ElementwiseKernelTests: \(build) GELU over \(count) inputs: max \(worstPositive) ulp for x >= 0, \(worstNegative) ulp for -5.55 < x < 0, max |error| / max(1, |x|) \(worstAbsolute), derivative max |error| \(worstDerivative)")
            XCTAssertLessThanOrEqual(worstPositive, 2, "\(build): GELU on x >= 0")
            XCTAssertLessThanOrEqual(worstNegative, 64, "\(build): GELU on -5.55 < x < 0")
            XCTAssertLessThanOrEqual(worstAbsolute, 1e-7, "\(build): GELU absolute error")
            XCTAssertLessThanOrEqual(worstDerivative, 2e-7, "\(build): GELU' absolute error")

            let special: [Float] = [0, -Float.zero, .infinity, -.infinity, .nan, 1e30, -1e30, 1e-30, -1e-30]
            var out = [Float](repeating: 0, count: special.count), out2 = out, slope = out
            srdpr_gelu_forward(&out, special, special.count)
            srdpr_gelu_forward_derivative(&out2, &slope, special, special.count)
            XCTAssertEqual(out[0].bitPattern, Float(0).bitPattern, "\(build): GELU(+0) = +0")
            XCTAssertEqual(out[1].bitPattern, Float(-0.0).bitPattern, "\(build): GELU(-0) = -0")
            XCTAssertEqual(out[2], .infinity, "\(build): GELU(+inf)")
            XCTAssertTrue(out[3].isNaN, "\(build): GELU(-inf) = -inf · 0 = NaN, as x · 0.5 (1 + erf) gives (and PyTorch)")
            XCTAssertTrue(out[4].isNaN && slope[4].isNaN, "\(build): NaN stays NaN")
            XCTAssertEqual(out[5], 1e30, "\(build): GELU(1e30)")
            XCTAssertEqual(out[6], 0, "\(build): GELU(-1e30)")
            XCTAssertEqual(out[7], 5e-31, "\(build): GELU(1e-30)")
            XCTAssertEqual(out[8], -5e-31, "\(build): GELU(-1e-30)")
            XCTAssertEqual(slope[0], 0.5, "\(build): GELU'(0)")
            XCTAssertEqual(slope[1], 0.5, "\(build): GELU'(-0)")
            XCTAssertEqual(slope[2], 1, "\(build): GELU'(+inf)")
            XCTAssertEqual(slope[3], 0, accuracy: 1e-30, "\(build): GELU'(-inf)")
            XCTAssertEqual(slope[5], 1, "\(build): GELU'(1e30)")
            XCTAssertEqual(slope[6], 0, accuracy: 1e-30, "\(build): GELU'(-1e30)")
            for i in special.indices where !special[i].isNaN && !(special[i] == -.infinity) {
                XCTAssertEqual(out2[i].bitPattern, out[i].bitPattern, "\(build): forward and forwardWithDerivative at \(special[i])")
            }
        }
    }

    /// Softmax's exp over scores far apart: e^(x - m) below fp32's normal range is exactly 0 (also
    /// for -inf scores), the rest within 3e-6 relative of double precision.
    func testSoftmaxOverWidelySpreadScores() {
        let length = 37
        let row = (0..<length).map { j -> Float in j == 5 ? -.infinity : Float(-Double(j) * 4.1 + 3) }
        forEachBuild { build in
            var p = row
            srdpr_softmax_rows(&p, 1, length, nil)
            let e = row.map { $0 == -.infinity ? 0 : exp(Double($0) - 3) }
            let sum = e.reduce(0, +)
            for j in 0..<length {
                let expected = e[j] / sum
                if expected < 1e-38 {
                    XCTAssertEqual(p[j], 0, "\(build): key \(j) (e^(x - m) below the normal range) must be exactly 0")
                } else {
                    XCTAssertEqual(Double(p[j]), expected, accuracy: 3e-6 * expected, "\(build): key \(j)")
                }
            }
        }
    }

    /// Softmax with padding keys (exactly 0), an all-padding row (uniform), scores from -100 to 100,
    /// and its backward, against double precision.
    func testSoftmaxAndBackwardMatchDoublePrecision() {
        for length in [1, 7, 8, 29, 64] {
            var generator = SplitMix64(seed: UInt64(length))
            let rows = 5
            let scores = (0..<(rows * length)).map { _ in Float(generator.nextUnitInterval() * 200 - 100) / 10 }
            let mask = (0..<length).map { Int32($0 % 3 == 2 ? 0 : 1) }
            let grad = (0..<(rows * length)).map { _ in Float(generator.nextUnitInterval() * 2 - 1) }
            forEachBuild { build in
                for useMask in [false, true] {
                    var p = scores
                    mask.withUnsafeBufferPointer { m in srdpr_softmax_rows(&p, rows, length, useMask ? m.baseAddress : nil) }
                    var g = grad
                    srdpr_softmax_backward_rows(&g, p, rows, length, 0.125)
                    for r in 0..<rows {
                        let row = (0..<length).map { Double(scores[r * length + $0]) }
                        let keep = (0..<length).map { !useMask || mask[$0] != 0 }
                        let m = zip(row, keep).filter { $0.1 }.map { $0.0 }.max() ?? 0
                        let e = (0..<length).map { keep[$0] ? exp(row[$0] - m) : 0 }
                        let sum = e.reduce(0, +)
                        let expected = e.map { $0 / sum }
                        let dot = (0..<length).reduce(0.0) { $0 + Double(p[r * length + $1]) * Double(grad[r * length + $1]) }
                        for j in 0..<length {
                            let got = p[r * length + j]
                            if !keep[j] { XCTAssertEqual(got, 0, "\(build): padding key \(j) of length \(length)") }
                            XCTAssertEqual(Double(got), expected[j], accuracy: 3e-6 * expected[j] + 1e-9, "\(build): length \(length) row \(r) key \(j)")
                            let expectedGrad = Double(got) * (Double(grad[r * length + j]) - dot) * 0.125
                            XCTAssertEqual(Double(g[r * length + j]), expectedGrad, accuracy: 1e-6, "\(build): softmax backward \(j)")
                        }
                    }
                }
                var uniform = scores
                let padding = [Int32](repeating: 0, count: length)
                srdpr_softmax_rows(&uniform, rows, length, padding)
                XCTAssertEqual(uniform, [Float](repeating: 1 / Float(length), count: rows * length), "\(build): all-padding rows")
            }
        }
    }

    /// The masks of the definition in Dropout.swift, written out scalar: one SplitMix64 hash of
    /// rowKey + index/4 per group of four positions, 16 bits per position.
    func referenceDropout(_ x: inout [Float], rowKey: UInt64, p: Float, start: Int) {
        let threshold = UInt64(Double(p) * 65_536.0)
        for i in x.indices {
            let index = start + i
            let bits = DropoutContext.mix(rowKey &+ UInt64(index >> 2))
            let u = (bits >> UInt64(16 * (index & 3))) & 0xffff
            x[i] = u >= threshold ? x[i] * (1 / (1 - p)) : 0
        }
    }

    func testDropoutMasksFollowTheDefinitionBitForBit() {
        var generator = SplitMix64(seed: 7)
        forEachBuild { build in
            for trial in 0..<200 {
                let count = Int(generator.next() % 300), start = Int(generator.next() % 10_000)
                let p: Float = [0.1, 0.5, 0.0, 0.9][trial % 4]
                let key = generator.next()
                let values = (0..<count).map { Float($0) + 1 }
                var expected = values, got = values
                referenceDropout(&expected, rowKey: key, p: p, start: start)
                got.withUnsafeMutableBufferPointer { DropoutContext.apply($0.baseAddress!, count: count, rowKey: key, p: p, start: start) }
                XCTAssertEqual(got, expected, "\(build): count \(count) start \(start) p \(p)")
            }
            var grad: [Float] = [1, 2, 3, 4, 5], kept: [Float] = [0, 1, 0, -2, 3]
            srdpr_dropout_backward_where_kept(&grad, kept, 5, 2)
            XCTAssertEqual(grad, [0, 4, 0, 8, 10], build)
            kept = []
        }
    }

    /// LayerNorm forward and backward (input, gamma, beta gradients) against double precision, at a
    /// width with a tail (13) and a vector multiple (32).
    func testLayerNormMatchesDoublePrecision() {
        for dim in [13, 32] {
            let rows = 6
            var generator = SplitMix64(seed: UInt64(dim))
            func draw(_ n: Int, _ scale: Double, _ offset: Double = 0) -> [Float] {
                var values: [Float] = []
                for _ in 0..<n {
                    let unit: Double = generator.nextUnitInterval() * 2 - 1
                    values.append(Float(offset + scale * unit))
                }
                return values
            }
            let x = draw(rows * dim, 3, 0.5), gamma = draw(dim, 0.5, 1), beta = draw(dim, 0.2), dy = draw(rows * dim, 1)
            forEachBuild { build in
                var y = [Float](repeating: 0, count: rows * dim), mean = [Float](repeating: 0, count: rows), rstd = mean
                srdpr_layernorm_forward(&y, &mean, &rstd, x, gamma, beta, rows, dim, 1e-12)
                var dx = [Float](repeating: 0, count: rows * dim)
                var dGamma = [Float](repeating: 0, count: dim), dBeta = dGamma
                srdpr_layernorm_backward_input(&dx, dy, x, gamma, mean, rstd, rows, dim)
                srdpr_layernorm_backward_parameters(&dGamma, &dBeta, dy, x, mean, rstd, rows, dim)
                var expectedGamma = [Double](repeating: 0, count: dim), expectedBeta = expectedGamma
                for r in 0..<rows {
                    let row = (0..<dim).map { Double(x[r * dim + $0]) }
                    let m = row.reduce(0, +) / Double(dim)
                    let variance = row.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(dim)
                    let s = 1 / (variance + 1e-12).squareRoot()
                    let xhat = row.map { ($0 - m) * s }
                    let d = (0..<dim).map { Double(gamma[$0]) * Double(dy[r * dim + $0]) }
                    let meanD = d.reduce(0, +) / Double(dim)
                    let meanDX = zip(d, xhat).map { $0 * $1 }.reduce(0, +) / Double(dim)
                    for i in 0..<dim {
                        XCTAssertEqual(Double(y[r * dim + i]), xhat[i] * Double(gamma[i]) + Double(beta[i]), accuracy: 2e-6, "\(build) dim \(dim): y")
                        XCTAssertEqual(Double(dx[r * dim + i]), (d[i] - meanD - xhat[i] * meanDX) * s, accuracy: 2e-6, "\(build) dim \(dim): dx")
                        expectedGamma[i] += xhat[i] * Double(dy[r * dim + i])
                        expectedBeta[i] += Double(dy[r * dim + i])
                    }
                    XCTAssertEqual(Double(mean[r]), m, accuracy: 1e-6)
                    XCTAssertEqual(Double(rstd[r]), s, accuracy: 1e-6 * s)
                }
                for i in 0..<dim {
                    XCTAssertEqual(Double(dGamma[i]), expectedGamma[i], accuracy: 1e-5, "\(build) dim \(dim): dGamma")
                    XCTAssertEqual(Double(dBeta[i]), expectedBeta[i], accuracy: 1e-5, "\(build) dim \(dim): dBeta")
                }
            }
        }
    }

    /// The vectorised AdamW step gives the scalar formula's floats exactly (no fused multiply-add).
    func testAdamWKernelIsTheScalarFormulaExactly() {
        let count = 1_003
        var generator = SplitMix64(seed: 3)
        let p0 = (0..<count).map { _ in Float(generator.nextUnitInterval() - 0.5) }
        let g = (0..<count).map { _ in Float(generator.nextUnitInterval() - 0.5) * 1e-2 }
        let m0 = (0..<count).map { _ in Float(generator.nextUnitInterval() - 0.5) * 1e-3 }
        let v0 = (0..<count).map { _ in Float(generator.nextUnitInterval()) * 1e-5 }
        let (decay, b1, b2, ob2, step, bc2, eps): (Float, Float, Float, Float, Float, Float, Float) =
            (0.9999, 0.1, 0.999, 0.001, 2e-5 / 0.19, 0.0447, 1e-8)
        forEachBuild { build in
            for decays: Int32 in [0, 1] {
                var p = p0, m = m0, v = v0
                srdpr_adamw(&p, g, &m, &v, count, decay, decays, b1, b2, ob2, step, bc2, eps)
                for i in 0..<count {
                    let pd = decays != 0 ? p0[i] * decay : p0[i]
                    let mi = m0[i] + b1 * (g[i] - m0[i])
                    let vi = v0[i] * b2 + ob2 * (g[i] * g[i])
                    let denominator = vi.squareRoot() / bc2 + eps
                    XCTAssertEqual(m[i], mi, build)
                    XCTAssertEqual(v[i], vi, build)
                    XCTAssertEqual(p[i], pd + (-step) * (mi / denominator), "\(build): parameter \(i)")
                }
            }
        }
    }
}
