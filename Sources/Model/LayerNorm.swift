import CKernels

/// LayerNorm over the last dimension with learned gain and shift; saves mean and 1/std per row
/// for the backward pass (llm.c's layernorm_forward / layernorm_backward), vectorised in CKernels.
enum LayerNorm {
    static func forward(_ out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>?,
                        rstd: UnsafeMutablePointer<Float>?, _ input: UnsafePointer<Float>,
                        gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, rows: Int, dim: Int, eps: Float) {
        Parallel.rows(rows, work: dim) { range in
            let r = range.lowerBound
            srdpr_layernorm_forward(out + r * dim, mean.map { $0 + r }, rstd.map { $0 + r }, input + r * dim,
                                    gamma, beta, range.count, dim, eps)
        }
    }

    /// The residual block's end in one pass: out = LayerNorm(input + residual), with the sum written
    /// to `sum` when given (backward reads it) and otherwise never stored. The same bits as
    /// `srdpr_add` then `forward`, without a pass over the activations in between.
    static func forward(_ out: UnsafeMutablePointer<Float>, sum: UnsafeMutablePointer<Float>?, mean: UnsafeMutablePointer<Float>?,
                        rstd: UnsafeMutablePointer<Float>?, _ input: UnsafePointer<Float>, residual: UnsafePointer<Float>,
                        gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, rows: Int, dim: Int, eps: Float) {
        Parallel.rows(rows, work: dim) { range in
            let r = range.lowerBound
            srdpr_residual_layernorm_forward(out + r * dim, sum.map { $0 + r * dim }, mean.map { $0 + r }, rstd.map { $0 + r },
                                             input + r * dim, residual + r * dim, gamma, beta, range.count, dim, eps)
        }
    }

    /// Writes dInput; accumulates dGamma, dBeta (rows in order: they are shared by every row).
    static func backward(dInput: UnsafeMutablePointer<Float>, dGamma: UnsafeMutablePointer<Float>,
                         dBeta: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, input: UnsafePointer<Float>,
                         gamma: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                         rows: Int, dim: Int) {
        Parallel.rows(rows, work: dim) { range in
            let r = range.lowerBound
            srdpr_layernorm_backward_input(dInput + r * dim, dOut + r * dim, input + r * dim, gamma, mean + r, rstd + r,
                                           range.count, dim)
        }
        srdpr_layernorm_backward_parameters(dGamma, dBeta, dOut, input, mean, rstd, rows, dim)
    }
}
