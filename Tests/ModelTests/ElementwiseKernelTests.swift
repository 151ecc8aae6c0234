import CKernels
import Data
import Foundation
@testable import Model
import XCTest

/// The vectorised kernels of CKernels against libm and double-precision references, in every build
/// this CPU runs: AVX-512, AVX2+FMA (forced on an AVX-512 CPU) and baseline (forced), with lengths
/// that are not multiples of 8 or 16 so the tails run too.
final class ElementwiseKernelTests: XCTestCase {
    override func tearDown() { KernelBuild.reset() }

    /// Runs `body` once per kernel build this CPU can run, naming it for failure messages.
    func forEachBuild(_ body: (String) throws -> Void) rethrows {
        defer { KernelBuild.reset() }
        for build in KernelBuild.available(reportingTo: "ElementwiseKernelTests") {
            build.force()
            try body(build.rawValue)
        }
    }

    /// Runs `body` in the AVX-512 and the AVX2 build and returns both results (nil, said loudly, on
    /// a CPU without AVX-512).
    func avx512AndAVX2<T>(_ what: String, _ body: () -> T) -> (avx512: T, avx2: T)? {
        guard KernelBuild.hasAVX512 else {
            print("ElementwiseKernelTests: SKIPPED \(what): this CPU has no AVX-512, so there is no AVX-512 clone to compare with AVX2")
            return nil
        }
        defer { KernelBuild.reset() }
        KernelBuild.avx2.force()
        let avx2 = body()
        KernelBuild.avx512.force()
        return (body(), avx2)
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

    /// The vectorised AdamW step gives the scalar formula's floats exactly (no fused multiply-add),
    /// also when it first scales the gradients (clipping) and stores them scaled.
    func testAdamWKernelIsTheScalarFormulaExactly() {
        let count = 1_003
        var generator = SplitMix64(seed: 3)
        let p0 = (0..<count).map { _ in Float(generator.nextUnitInterval() - 0.5) }
        let g0 = (0..<count).map { _ in Float(generator.nextUnitInterval() - 0.5) * 1e-2 }
        let m0 = (0..<count).map { _ in Float(generator.nextUnitInterval() - 0.5) * 1e-3 }
        let v0 = (0..<count).map { _ in Float(generator.nextUnitInterval()) * 1e-5 }
        let (decay, b1, b2, ob2, step, bc2, eps): (Float, Float, Float, Float, Float, Float, Float) =
            (0.9999, 0.1, 0.999, 0.001, 2e-5 / 0.19, 0.0447, 1e-8)
        forEachBuild { build in
            for decays: Int32 in [0, 1] {
                for scale: Float in [1, 0.3125731] {
                    var p = p0, m = m0, v = v0, gradients = g0
                    srdpr_adamw(&p, &gradients, &m, &v, count, scale, decay, decays, b1, b2, ob2, step, bc2, eps)
                    for i in 0..<count {
                        let g = scale != 1 ? g0[i] * scale : g0[i]
                        let pd = decays != 0 ? p0[i] * decay : p0[i]
                        let mi = m0[i] + b1 * (g - m0[i])
                        let vi = v0[i] * b2 + ob2 * (g * g)
                        let denominator = vi.squareRoot() / bc2 + eps
                        XCTAssertEqual(gradients[i].bitPattern, g.bitPattern, "\(build) scale \(scale): gradient \(i)")
                        XCTAssertEqual(m[i], mi, build)
                        XCTAssertEqual(v[i], vi, build)
                        XCTAssertEqual(p[i], pd + (-step) * (mi / denominator), "\(build) scale \(scale): parameter \(i)")
                    }
                }
            }
        }
    }

    /// What the AVX-512 clone computes per element gives the AVX2 clone's bits: erf, GELU (value,
    /// derivative, backward), dropout masks (exact resume and the packed / padded parity depend on
    /// them), AdamW, add, multiply (also with the column sums) and LayerNorm's parameter gradients.
    func testAVX512GivesTheAVX2BitsElementByElement() {
        var generator = SplitMix64(seed: 11)
        let count = 10_007   // neither a multiple of 8 nor of 16: both tails run
        let x = (0..<count).map { _ in Float(generator.nextUnitInterval() * 24 - 12) }
        let y = (0..<count).map { _ in Float(generator.nextUnitInterval() * 2 - 1) }
        func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }
        guard let gelu = avx512AndAVX2("the element-by-element bits", { () -> [[UInt32]] in
            var erfOut = [Float](repeating: 0, count: count), sum = erfOut, product = x
            srdpr_erf(&erfOut, x, count)
            let (forward, value, derivative, backward) = runGELUKernels(x, dOut: y)
            srdpr_add(&sum, x, y, count)
            srdpr_multiply(&product, y, count)
            let rows = 7, dim = 1_429   // 7 x 1429 = count - 4
            var scaled = Array(x[0..<(rows * dim)]), columnSums = [Float](repeating: 0.5, count: dim)
            srdpr_multiply_sum_rows(&scaled, Array(y[0..<(rows * dim)]), &columnSums, rows, dim)
            let mean = (0..<rows).map { Float($0) * 0.1 }, rstd = (0..<rows).map { 1 + Float($0) * 0.05 }
            var dGamma = [Float](repeating: 0, count: dim), dBeta = dGamma
            srdpr_layernorm_backward_parameters(&dGamma, &dBeta, Array(y[0..<(rows * dim)]), Array(x[0..<(rows * dim)]), mean, rstd, rows, dim)
            var p = x, m = y.map { $0 * 1e-3 }, v = y.map { $0 * $0 * 1e-5 }
            var g = y.map { $0 * 1e-2 }
            srdpr_adamw(&p, &g, &m, &v, count, 0.75, 0.9999, 1, 0.1, 0.999, 0.001, 1e-4, 0.0447, 1e-8)
            return [erfOut, forward, value, derivative, backward, sum, product, scaled, columnSums, dGamma, dBeta, p, m, v, g].map(bits)
        }) else { return }
        let names = ["erf", "GELU forward", "GELU forward+derivative value", "GELU derivative", "GELU backward", "add", "multiply",
                     "multiply_sum_rows products", "multiply_sum_rows column sums", "LayerNorm dGamma", "LayerNorm dBeta",
                     "AdamW parameters", "AdamW m", "AdamW v", "AdamW scaled gradients"]
        for (name, (a, b)) in zip(names, zip(gelu.avx512, gelu.avx2)) {
            XCTAssertEqual(a, b, "\(name): the AVX-512 clone must give the AVX2 clone's bits")
        }
        // Dropout masks at every alignment of start and count around the 16-position blocks.
        var mismatches = 0
        for trial in 0..<400 {
            let n = Int(generator.next() % 300), start = Int(generator.next() % 10_000)
            let p: Float = [0.1, 0.5, 0.0, 0.9][trial % 4], key = generator.next()
            let values = (0..<n).map { Float($0) + 1 }
            guard let dropped = avx512AndAVX2("dropout masks", { () -> [Float] in
                var row = values
                srdpr_dropout_row(&row, n, key, p, start)
                return row
            }) else { return }
            if bits(dropped.avx512) != bits(dropped.avx2) {
                mismatches += 1
                if mismatches <= 3 { XCTFail("dropout: AVX-512 and AVX2 masks differ at count \(n) start \(start) p \(p)") }
            }
        }
        XCTAssertEqual(mismatches, 0, "dropout rows whose masks differ between the AVX-512 and AVX2 clones")
    }

    /// The reductions (softmax sums, its backward's dot products, LayerNorm's mean and variance and
    /// its backward's sums) add 16 lanes instead of 8, so the clones may differ in the last bits:
    /// here by at most a few ulp of the result (the bounds below, well under the references' tolerances).
    func testAVX512AndAVX2ReductionsAgreeToTheLastBits() {
        var generator = SplitMix64(seed: 13)
        for length in [7, 29, 64, 131, 256] {
            let rows = 5
            let scores = (0..<(rows * length)).map { _ in Float(generator.nextUnitInterval() * 20 - 10) }
            let grad = (0..<(rows * length)).map { _ in Float(generator.nextUnitInterval() * 2 - 1) }
            let mask = (0..<length).map { Int32($0 % 5 == 4 ? 0 : 1) }
            guard let softmax = avx512AndAVX2("reduction agreement", { () -> ([Float], [Float]) in
                var p = scores
                mask.withUnsafeBufferPointer { srdpr_softmax_rows(&p, rows, length, $0.baseAddress) }
                var g = grad
                srdpr_softmax_backward_rows(&g, p, rows, length, 0.125)
                return (p, g)
            }) else { return }
            let probabilityUlps = zip(softmax.avx512.0, softmax.avx2.0).map { ulps($0, $1) }.max()!
            let gradientError = zip(softmax.avx512.1, softmax.avx2.1).map { abs(Double($0) - Double($1)) }.max()!
            XCTAssertLessThanOrEqual(probabilityUlps, 4, "softmax length \(length): AVX-512 vs AVX2")
            XCTAssertLessThanOrEqual(gradientError, 1e-7, "softmax backward length \(length): AVX-512 vs AVX2")
            print("ElementwiseKernelTests: softmax length \(length), AVX-512 vs AVX2: probabilities max \(probabilityUlps) ulp, backward max |difference| \(gradientError)")
        }
        for dim in [13, 32, 384, 768, 1000] {
            let rows = 4
            let x = (0..<(rows * dim)).map { _ in Float(generator.nextUnitInterval() * 6 - 2.5) }
            let gamma = (0..<dim).map { _ in Float(generator.nextUnitInterval() + 0.5) }
            let beta = (0..<dim).map { _ in Float(generator.nextUnitInterval() * 0.4 - 0.2) }
            let dy = (0..<(rows * dim)).map { _ in Float(generator.nextUnitInterval() * 2 - 1) }
            guard let norm = avx512AndAVX2("reduction agreement", { () -> [[Float]] in
                var y = [Float](repeating: 0, count: rows * dim), mean = [Float](repeating: 0, count: rows), rstd = mean
                srdpr_layernorm_forward(&y, &mean, &rstd, x, gamma, beta, rows, dim, 1e-12)
                var dx = y
                srdpr_layernorm_backward_input(&dx, dy, x, gamma, mean, rstd, rows, dim)
                return [y, mean, rstd, dx]
            }) else { return }
            let worst = zip(norm.avx512, norm.avx2).map { zip($0, $1).map { abs(Double($0) - Double($1)) / max(1, abs(Double($1))) }.max()! }
            XCTAssertLessThanOrEqual(worst.max()!, 2e-6, "LayerNorm dim \(dim): AVX-512 vs AVX2 (y, mean, rstd, dx: \(worst))")
            print("ElementwiseKernelTests: LayerNorm dim \(dim), AVX-512 vs AVX2: max |difference| / max(1, |value|) y \(worst[0]), mean \(worst[1]), rstd \(worst[2]), dx \(worst[3])")
        }
    }
}
