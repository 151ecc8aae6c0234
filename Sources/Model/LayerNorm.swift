import Foundation

/// LayerNorm over the last dimension with learned gain and shift; saves mean and 1/std per row
/// for the backward pass (llm.c's layernorm_forward / layernorm_backward).
enum LayerNorm {
    static func forward(_ out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>?,
                        rstd: UnsafeMutablePointer<Float>?, _ input: UnsafePointer<Float>,
                        gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, rows: Int, dim: Int, eps: Float) {
        Parallel.rows(rows, work: dim * 4) { range in
            for r in range {
                let x = input + r * dim, y = out + r * dim
                var m: Float = 0
                for i in 0..<dim { m += x[i] }
                m /= Float(dim)
                var v: Float = 0
                for i in 0..<dim { let d = x[i] - m; v += d * d }
                v /= Float(dim)
                let s = 1 / (v + eps).squareRoot()
                for i in 0..<dim { y[i] = (x[i] - m) * s * gamma[i] + beta[i] }
                mean?[r] = m
                rstd?[r] = s
            }
        }
    }

    /// Writes dInput; accumulates dGamma, dBeta (serially: they are shared by every row).
    static func backward(dInput: UnsafeMutablePointer<Float>, dGamma: UnsafeMutablePointer<Float>,
                         dBeta: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, input: UnsafePointer<Float>,
                         gamma: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                         rows: Int, dim: Int) {
        Parallel.rows(rows, work: dim * 6) { range in
            for r in range {
                let x = input + r * dim, dy = dOut + r * dim, dx = dInput + r * dim
                let m = mean[r], s = rstd[r]
                var sumD: Float = 0, sumDX: Float = 0
                for i in 0..<dim {
                    let xhat = (x[i] - m) * s
                    let d = gamma[i] * dy[i]
                    sumD += d
                    sumDX += d * xhat
                }
                sumD /= Float(dim)
                sumDX /= Float(dim)
                for i in 0..<dim {
                    let xhat = (x[i] - m) * s
                    dx[i] = (gamma[i] * dy[i] - sumD - xhat * sumDX) * s
                }
            }
        }
        for r in 0..<rows {
            let x = input + r * dim, dy = dOut + r * dim
            let m = mean[r], s = rstd[r]
            for i in 0..<dim {
                dBeta[i] += dy[i]
                dGamma[i] += (x[i] - m) * s * dy[i]
            }
        }
    }
}
