import Foundation

/// GELU in the exact erf form (`hidden_act: gelu`): x · Φ(x) = 0.5 x (1 + erf(x / √2)).
enum GELU {
    static func forward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, count: Int) {
        let rows = max(1, count / 4096)
        Parallel.rows(rows, work: 4096 * 8) { range in
            let lo = range.lowerBound * count / rows, hi = range.upperBound * count / rows
            for i in lo..<hi {
                let x = input[i]
                out[i] = 0.5 * x * (1 + erff(x * 0.70710678118654752))
            }
        }
    }

    /// dInput = dOut · (Φ(x) + x φ(x)), in place allowed (dInput may be dOut).
    static func backward(_ dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                         input: UnsafePointer<Float>, count: Int) {
        let rows = max(1, count / 4096)
        Parallel.rows(rows, work: 4096 * 10) { range in
            let lo = range.lowerBound * count / rows, hi = range.upperBound * count / rows
            for i in lo..<hi {
                let x = input[i]
                let cdf = 0.5 * (1 + erff(x * 0.70710678118654752))
                let pdf = expf(-0.5 * x * x) * 0.39894228040143268
                dInput[i] = dOut[i] * (cdf + x * pdf)
            }
        }
    }

    /// One pass for backward: out = GELU(x) (needed for the next layer's weight gradient) and
    /// derivative = GELU'(x), sharing the erf.
    static func forwardWithDerivative(_ out: UnsafeMutablePointer<Float>, derivative: UnsafeMutablePointer<Float>,
                                      _ input: UnsafePointer<Float>, count: Int) {
        let rows = max(1, count / 4096)
        Parallel.rows(rows, work: 4096 * 10) { range in
            let lo = range.lowerBound * count / rows, hi = range.upperBound * count / rows
            for i in lo..<hi {
                let x = input[i]
                let cdf = 0.5 * (1 + erff(x * 0.70710678118654752))
                out[i] = x * cdf
                derivative[i] = cdf + x * expf(-0.5 * x * x) * 0.39894228040143268
            }
        }
    }

    /// dInput = dOut · derivative, elementwise (in place allowed).
    static func multiply(_ dInput: UnsafeMutablePointer<Float>, _ derivative: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { dInput[i] *= derivative[i] }
    }
}
