import CBLAS
import Data
import Foundation

/// The poshard pipeline's loss (SPEC §5): every question i is scored against its own positive and
/// its own C hard negatives, s_i = [q_i·p_i, q_i·h_i1, …, q_i·h_iC]; entries whose `hardnegMask`
/// is 0 (padding for rows with fewer hard negatives) are masked; loss = mean_i −log_softmax(s_i)[0].
public enum PosHardLoss {
    /// Gradients w.r.t. the three embedding inputs, each the shape of its input.
    public struct Gradients {
        public var q: UnsafeMutableBufferPointer<Float>
        public var p: UnsafeMutableBufferPointer<Float>
        public var h: UnsafeMutableBufferPointer<Float>

        public init(q: UnsafeMutableBufferPointer<Float>, p: UnsafeMutableBufferPointer<Float>,
                    h: UnsafeMutableBufferPointer<Float>) {
            self.q = q
            self.p = p
            self.h = h
        }
    }

    /// Computes the loss and, when `gradients` is given, overwrites them with
    /// gradScale · d(loss)/d(input); the scores are multiplied by `scoreScale` (`sim_scale`) before the softmax.
    /// - Parameters:
    ///   - q: questions [rows, dim]; p: positives [rows, dim]; h: hard negatives [rows, hardNegatives, dim].
    ///   - hardnegMask: [rows, 1 + hardNegatives], nonzero = keep; nil keeps all.
    /// - Returns: the mean loss (unscaled).
    public static func forwardBackward(
        q: UnsafeBufferPointer<Float>, p: UnsafeBufferPointer<Float>, h: UnsafeBufferPointer<Float>,
        rows: Int, hardNegatives: Int, dim: Int, hardnegMask: [Int]?,
        similarity: SimilarityFunction, scoreScale: Float = 1, gradScale: Float = 1, gradients: Gradients? = nil
    ) throws -> Float {
        let name = "poshard"
        guard rows > 0, dim > 0, hardNegatives >= 0 else {
            throw LossError.invalidShape(loss: name, reason: "rows \(rows), hard negatives \(hardNegatives), dim \(dim)")
        }
        let c = hardNegatives, cols = 1 + hardNegatives
        try checkCount(name, "q", q.count, rows * dim)
        try checkCount(name, "p", p.count, rows * dim)
        try checkCount(name, "h", h.count, rows * c * dim)
        if let hardnegMask { try checkCount(name, "hardneg_mask", hardnegMask.count, rows * cols) }
        if let gradients {
            try checkCount(name, "grad q", gradients.q.count, rows * dim)
            try checkCount(name, "grad p", gradients.p.count, rows * dim)
            try checkCount(name, "grad h", gradients.h.count, rows * c * dim)
        }

        let qv = ScoredVectors(q, rows: rows, dim: dim, similarity: similarity)
        let pv = ScoredVectors(p, rows: rows, dim: dim, similarity: similarity)
        let hv = ScoredVectors(h, rows: rows * c, dim: dim, similarity: similarity)
        var scores = [Float](repeating: 0, count: rows * cols)
        return qv.withScored(q) { Q in pv.withScored(p) { P in hv.withScored(h) { H in
            scores.withUnsafeMutableBufferPointer { S in
                // Each row is its own small matrix-vector product: [p_i; H_i] · q_i.
                for r in 0..<rows {
                    let qRow = Q.baseAddress! + r * dim
                    S[r * cols] = cblas_sdot(Int32(dim), qRow, 1, P.baseAddress! + r * dim, 1)
                    if c > 0 {
                        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(c), Int32(dim), 1,
                                    H.baseAddress! + r * c * dim, Int32(dim), qRow, 1, 0, S.baseAddress! + r * cols + 1, 1)
                    }
                }
                let loss = ScoreCrossEntropy.forwardBackward(
                    scores: S, rows: rows, cols: cols, mask: hardnegMask, target: { _ in 0 },
                    scale: scoreScale, gradScale: gradScale, computeGradient: gradients != nil)
                guard let g = gradients else { return loss }

                // dq_i = dS_i0 p_i + H_iᵀ dS_i,1: ;  dp_i = dS_i0 q_i ;  dH_i = dS_i,1: ⊗ q_i
                for r in 0..<rows {
                    let qRow = Q.baseAddress! + r * dim
                    let dRow = S.baseAddress! + r * cols
                    let gq = g.q.baseAddress! + r * dim
                    if c > 0 {
                        cblas_sgemv(CblasRowMajor, CblasTrans, Int32(c), Int32(dim), 1,
                                    H.baseAddress! + r * c * dim, Int32(dim), dRow + 1, 1, 0, gq, 1)
                        let gh = g.h.baseAddress! + r * c * dim
                        for j in 0..<c {
                            let d = dRow[1 + j]
                            for k in 0..<dim { gh[j * dim + k] = d * qRow[k] }
                        }
                    } else {
                        gq.update(repeating: 0, count: dim)
                    }
                    let d0 = dRow[0]
                    for k in 0..<dim {
                        gq[k] += d0 * P[r * dim + k]
                        g.p[r * dim + k] = d0 * qRow[k]
                    }
                }
                qv.backward(g.q)
                pv.backward(g.p)
                hv.backward(g.h)
                return loss
            }
        } } }
    }

    /// Array convenience: returns the loss and gradScale · gradients (q, p, h).
    public static func forwardBackward(
        q: [Float], p: [Float], h: [Float], rows: Int, hardNegatives: Int, dim: Int, hardnegMask: [Int]?,
        similarity: SimilarityFunction, scoreScale: Float = 1, gradScale: Float = 1
    ) throws -> (loss: Float, gq: [Float], gp: [Float], gh: [Float]) {
        var gq = [Float](repeating: 0, count: q.count)
        var gp = [Float](repeating: 0, count: p.count)
        var gh = [Float](repeating: 0, count: h.count)
        let loss = try q.withUnsafeBufferPointer { Q in try p.withUnsafeBufferPointer { P in
            try h.withUnsafeBufferPointer { H in
                try gq.withUnsafeMutableBufferPointer { GQ in try gp.withUnsafeMutableBufferPointer { GP in
                    try gh.withUnsafeMutableBufferPointer { GH in
                        try forwardBackward(q: Q, p: P, h: H, rows: rows, hardNegatives: hardNegatives, dim: dim,
                                            hardnegMask: hardnegMask, similarity: similarity, scoreScale: scoreScale,
                                            gradScale: gradScale, gradients: Gradients(q: GQ, p: GP, h: GH))
                    }
                } }
            }
        } }
        return (loss, gq, gp, gh)
    }
}
