import CKernels

/// GELU in the exact erf form (`hidden_act: gelu`): x · Φ(x) = 0.5 x (1 + erf(x / √2)), with the
/// vectorised normal CDF of CKernels (within 2 ulp of the correctly rounded GELU for x ≥ 0;
/// ElementwiseKernelTests).
enum GELU {
    /// Splits `count` elements over threads in blocks of 8 lanes.
    private static func split(_ count: Int, work: Int, _ body: (Int, Int) -> Void) {
        let blocks = (count + 4095) / 4096
        Parallel.rows(blocks, work: 4096 * work) { range in
            let lo = range.lowerBound * 4096, hi = min(range.upperBound * 4096, count)
            body(lo, hi - lo)
        }
    }

    static func forward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, count: Int) {
        split(count, work: 4) { start, n in srdpr_gelu_forward(out + start, input + start, n) }
    }

    /// dInput = dOut · (Φ(x) + x φ(x)), in place allowed (dInput may be dOut).
    static func backward(_ dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                         input: UnsafePointer<Float>, count: Int) {
        split(count, work: 6) { start, n in srdpr_gelu_backward(dInput + start, dOut + start, input + start, n) }
    }

    /// One pass for backward: out = GELU(x) (needed for the next layer's weight gradient) and
    /// derivative = GELU'(x), sharing the erf.
    static func forwardWithDerivative(_ out: UnsafeMutablePointer<Float>, derivative: UnsafeMutablePointer<Float>,
                                      _ input: UnsafePointer<Float>, count: Int) {
        split(count, work: 6) { start, n in srdpr_gelu_forward_derivative(out + start, derivative + start, input + start, n) }
    }

    /// dInput = dOut · derivative, elementwise (in place allowed).
    static func multiply(_ dInput: UnsafeMutablePointer<Float>, _ derivative: UnsafePointer<Float>, count: Int) {
        srdpr_multiply(dInput, derivative, count)
    }

    /// `multiply` over [rows, width] that also adds the rows of dInput to `columnSums` (the
    /// gradient of the bias of the Linear before the GELU) in the same pass, rows in order as
    /// `Linear.backward` adds them.
    static func multiply(_ dInput: UnsafeMutablePointer<Float>, _ derivative: UnsafePointer<Float>, rows: Int, width: Int,
                         summingRowsInto columnSums: UnsafeMutablePointer<Float>) {
        srdpr_multiply_sum_rows(dInput, derivative, columnSums, rows, width)
    }
}
