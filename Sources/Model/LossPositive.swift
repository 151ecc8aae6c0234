import CBLAS
import Data
import Foundation

/// The pos (and hard) pipeline's loss (SPEC §5): every question i is scored against its own
/// positive p_i and against C negatives shared by the whole batch,
/// s_i = [q_i·p_i, q_i·n_1, …, q_i·n_C]; entries whose `duplicateMask` is 0 (a negative from the
/// question's own sample) are masked; loss = mean_i −log_softmax(s_i)[0].
public enum PositiveLoss {
    /// Gradients w.r.t. the three embedding inputs, each the shape of its input.
    public struct Gradients {
        public var q: UnsafeMutableBufferPointer<Float>
        public var p: UnsafeMutableBufferPointer<Float>
        public var n: UnsafeMutableBufferPointer<Float>

        public init(q: UnsafeMutableBufferPointer<Float>, p: UnsafeMutableBufferPointer<Float>,
                    n: UnsafeMutableBufferPointer<Float>) {
            self.q = q
            self.p = p
            self.n = n
        }
    }

    /// Computes the loss and, when `gradients` is given, overwrites them with
    /// gradScale · d(loss)/d(input).
    /// - Parameters:
    ///   - q: questions [rows, dim]; p: positives [rows, dim]; n: negatives [negatives, dim].
    ///   - duplicateMask: [rows, 1 + negatives], nonzero = keep; nil keeps all.
    ///   - scoreScale: factor on the scores before the softmax (`sim_scale`; 1 = the original).
    ///   - gradScale: factor on every gradient (e.g. world_size / loss_scale / accumulation steps).
    /// - Returns: the mean loss (unscaled).
    public static func forwardBackward(
        q: UnsafeBufferPointer<Float>, p: UnsafeBufferPointer<Float>, n: UnsafeBufferPointer<Float>,
        rows: Int, negatives: Int, dim: Int, duplicateMask: [Int]?,
        similarity: SimilarityFunction, scoreScale: Float = 1, gradScale: Float = 1, gradients: Gradients? = nil
    ) throws -> Float {
        let name = "pos"
        guard rows > 0, dim > 0, negatives >= 0 else {
            throw LossError.invalidShape(loss: name, reason: "rows \(rows), negatives \(negatives), dim \(dim)")
        }
        let cols = 1 + negatives
        try checkCount(name, "q", q.count, rows * dim)
        try checkCount(name, "p", p.count, rows * dim)
        try checkCount(name, "n", n.count, negatives * dim)
        if let duplicateMask { try checkCount(name, "duplicate_mask", duplicateMask.count, rows * cols) }
        if let gradients {
            try checkCount(name, "grad q", gradients.q.count, rows * dim)
            try checkCount(name, "grad p", gradients.p.count, rows * dim)
            try checkCount(name, "grad n", gradients.n.count, negatives * dim)
        }

        let qv = ScoredVectors(q, rows: rows, dim: dim, similarity: similarity)
        let pv = ScoredVectors(p, rows: rows, dim: dim, similarity: similarity)
        let nv = ScoredVectors(n, rows: negatives, dim: dim, similarity: similarity)
        var scores = [Float](repeating: 0, count: rows * cols)
        return qv.withScored(q) { Q in pv.withScored(p) { P in nv.withScored(n) { N in
            scores.withUnsafeMutableBufferPointer { S in
                // Column 0: each question with its own positive.
                for r in 0..<rows {
                    S[r * cols] = cblas_sdot(Int32(dim), Q.baseAddress! + r * dim, 1, P.baseAddress! + r * dim, 1)
                }
                // Columns 1...C: Q · Nᵀ written into the strided block.
                if negatives > 0 {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(negatives), Int32(dim),
                                1, Q.baseAddress, Int32(dim), N.baseAddress, Int32(dim),
                                0, S.baseAddress! + 1, Int32(cols))
                }
                let loss = ScoreCrossEntropy.forwardBackward(
                    scores: S, rows: rows, cols: cols, mask: duplicateMask, target: { _ in 0 },
                    scale: scoreScale, gradScale: gradScale, computeGradient: gradients != nil)
                guard let g = gradients else { return loss }

                // dQ = dS[:,0] ⊙ P + dS[:,1:] · N ;  dP = dS[:,0] ⊙ Q ;  dN = dS[:,1:]ᵀ · Q
                if negatives > 0 {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(dim), Int32(negatives),
                                1, S.baseAddress! + 1, Int32(cols), N.baseAddress, Int32(dim),
                                0, g.q.baseAddress, Int32(dim))
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(negatives), Int32(dim), Int32(rows),
                                1, S.baseAddress! + 1, Int32(cols), Q.baseAddress, Int32(dim),
                                0, g.n.baseAddress, Int32(dim))
                } else {
                    g.q.update(repeating: 0)
                }
                for r in 0..<rows {
                    let d0 = S[r * cols]
                    for k in 0..<dim {
                        g.q[r * dim + k] += d0 * P[r * dim + k]
                        g.p[r * dim + k] = d0 * Q[r * dim + k]
                    }
                }
                qv.backward(g.q)
                pv.backward(g.p)
                nv.backward(g.n)
                return loss
            }
        } } }
    }

    /// Array convenience: returns the loss and gradScale · gradients (q, p, n).
    public static func forwardBackward(
        q: [Float], p: [Float], n: [Float], rows: Int, negatives: Int, dim: Int, duplicateMask: [Int]?,
        similarity: SimilarityFunction, scoreScale: Float = 1, gradScale: Float = 1
    ) throws -> (loss: Float, gq: [Float], gp: [Float], gn: [Float]) {
        var gq = [Float](repeating: 0, count: q.count)
        var gp = [Float](repeating: 0, count: p.count)
        var gn = [Float](repeating: 0, count: n.count)
        let loss = try q.withUnsafeBufferPointer { Q in try p.withUnsafeBufferPointer { P in
            try n.withUnsafeBufferPointer { N in
                try gq.withUnsafeMutableBufferPointer { GQ in try gp.withUnsafeMutableBufferPointer { GP in
                    try gn.withUnsafeMutableBufferPointer { GN in
                        try forwardBackward(q: Q, p: P, n: N, rows: rows, negatives: negatives, dim: dim,
                                            duplicateMask: duplicateMask, similarity: similarity, scoreScale: scoreScale,
                                            gradScale: gradScale, gradients: Gradients(q: GQ, p: GP, n: GN))
                    }
                } }
            }
        } }
        return (loss, gq, gp, gn)
    }
}
