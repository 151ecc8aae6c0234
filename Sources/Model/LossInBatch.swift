import CBLAS
import Data
import Foundation

/// The inbatch pipeline's loss (SPEC §5): S = Q · Cᵀ over all contexts of the batch (every
/// positive, then the hard negatives), entries whose `mask` is 0 are masked, and row i is a
/// cross-entropy with target column i (its own positive).
public enum InBatchLoss {
    /// Gradients w.r.t. the two embedding inputs, each the shape of its input.
    public struct Gradients {
        public var q: UnsafeMutableBufferPointer<Float>
        public var c: UnsafeMutableBufferPointer<Float>

        public init(q: UnsafeMutableBufferPointer<Float>, c: UnsafeMutableBufferPointer<Float>) {
            self.q = q
            self.c = c
        }
    }

    /// Computes the loss and, when `gradients` is given, overwrites them with
    /// gradScale · d(loss)/d(input); the scores are multiplied by `scoreScale` (`sim_scale`) before the softmax.
    /// - Parameters:
    ///   - q: questions [rows, dim]; c: contexts [contexts, dim] with contexts ≥ rows.
    ///   - mask: [rows, contexts], nonzero = keep; nil keeps all.
    /// - Returns: the mean loss (unscaled).
    public static func forwardBackward(
        q: UnsafeBufferPointer<Float>, c: UnsafeBufferPointer<Float>,
        rows: Int, contexts: Int, dim: Int, mask: [Int]?,
        similarity: SimilarityFunction, scoreScale: Float = 1, gradScale: Float = 1, gradients: Gradients? = nil
    ) throws -> Float {
        let name = "inbatch"
        guard rows > 0, dim > 0, contexts >= rows else {
            throw LossError.invalidShape(
                loss: name, reason: "rows \(rows), contexts \(contexts), dim \(dim): every question needs its positive among the contexts")
        }
        try checkCount(name, "q", q.count, rows * dim)
        try checkCount(name, "c", c.count, contexts * dim)
        if let mask { try checkCount(name, "mask", mask.count, rows * contexts) }
        if let gradients {
            try checkCount(name, "grad q", gradients.q.count, rows * dim)
            try checkCount(name, "grad c", gradients.c.count, contexts * dim)
        }

        let qv = ScoredVectors(q, rows: rows, dim: dim, similarity: similarity)
        let cv = ScoredVectors(c, rows: contexts, dim: dim, similarity: similarity)
        var scores = [Float](repeating: 0, count: rows * contexts)
        return qv.withScored(q) { Q in cv.withScored(c) { C in
            scores.withUnsafeMutableBufferPointer { S in
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(contexts), Int32(dim),
                            1, Q.baseAddress, Int32(dim), C.baseAddress, Int32(dim), 0, S.baseAddress, Int32(contexts))
                let loss = ScoreCrossEntropy.forwardBackward(
                    scores: S, rows: rows, cols: contexts, mask: mask, target: { $0 },
                    scale: scoreScale, gradScale: gradScale, computeGradient: gradients != nil)
                guard let g = gradients else { return loss }
                // dQ = dS · C ;  dC = dSᵀ · Q
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(dim), Int32(contexts),
                            1, S.baseAddress, Int32(contexts), C.baseAddress, Int32(dim), 0, g.q.baseAddress, Int32(dim))
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(contexts), Int32(dim), Int32(rows),
                            1, S.baseAddress, Int32(contexts), Q.baseAddress, Int32(dim), 0, g.c.baseAddress, Int32(dim))
                qv.backward(g.q)
                cv.backward(g.c)
                return loss
            }
        } }
    }

    /// Array convenience: returns the loss and gradScale · gradients (q, c).
    public static func forwardBackward(
        q: [Float], c: [Float], rows: Int, contexts: Int, dim: Int, mask: [Int]?,
        similarity: SimilarityFunction, scoreScale: Float = 1, gradScale: Float = 1
    ) throws -> (loss: Float, gq: [Float], gc: [Float]) {
        var gq = [Float](repeating: 0, count: q.count)
        var gc = [Float](repeating: 0, count: c.count)
        let loss = try q.withUnsafeBufferPointer { Q in try c.withUnsafeBufferPointer { C in
            try gq.withUnsafeMutableBufferPointer { GQ in try gc.withUnsafeMutableBufferPointer { GC in
                try forwardBackward(q: Q, c: C, rows: rows, contexts: contexts, dim: dim, mask: mask,
                                    similarity: similarity, scoreScale: scoreScale, gradScale: gradScale,
                                    gradients: Gradients(q: GQ, c: GC))
            } }
        } }
        return (loss, gq, gc)
    }
}
