import Data
import Model

/// The loss table: which loss of SPEC §5 each pipeline trains with, over the gathered embeddings
/// of the whole batch (questions, then the context parts in score order). The one place a new
/// pipeline or loss is wired in.
enum PipelineLoss {
    /// The pipeline's loss over the global embeddings (SPEC §5).
    /// `parts` are the context embeddings in ``PipelineKind/contextPartNames`` order; the
    /// gradients w.r.t. `q` and every part are written to `dQ` and `dParts`.
    static func forwardBackward(_ batch: Batch, rows fb: Int, dim: Int, similarity sim: SimilarityFunction, scoreScale: Float, q: [Float],
                                parts: [[Float]], dQ: inout [Float], dParts: inout [[Float]], gradScale: Float) throws -> Float {
        switch batch.pipeline {
        case .pos, .hard:
            let mask = batch.duplicateMask.map { $0.map(Int.init) }
            var dP = dParts[0], dN = dParts[1]
            defer { dParts = [dP, dN] }
            return try q.withUnsafeBufferPointer { Q in try parts[0].withUnsafeBufferPointer { P in
                try parts[1].withUnsafeBufferPointer { N in try dQ.withUnsafeMutableBufferPointer { DQ in
                    try dP.withUnsafeMutableBufferPointer { DP in try dN.withUnsafeMutableBufferPointer { DN in
                        try PositiveLoss.forwardBackward(q: Q, p: P, n: N, rows: fb, negatives: parts[1].count / dim, dim: dim,
                                                         duplicateMask: mask, similarity: sim, scoreScale: scoreScale, gradScale: gradScale,
                                                         gradients: .init(q: DQ, p: DP, n: DN))
                    } }
                } }
            } }
        case .poshard:
            let mask = batch.hardnegMask.map { $0.map(Int.init) }
            var dP = dParts[0], dH = dParts[1]
            defer { dParts = [dP, dH] }
            return try q.withUnsafeBufferPointer { Q in try parts[0].withUnsafeBufferPointer { P in
                try parts[1].withUnsafeBufferPointer { H in try dQ.withUnsafeMutableBufferPointer { DQ in
                    try dP.withUnsafeMutableBufferPointer { DP in try dH.withUnsafeMutableBufferPointer { DH in
                        try PosHardLoss.forwardBackward(q: Q, p: P, h: H, rows: fb, hardNegatives: batch.hardnegsPerSample, dim: dim,
                                                        hardnegMask: mask, similarity: sim, scoreScale: scoreScale, gradScale: gradScale,
                                                        gradients: .init(q: DQ, p: DP, h: DH))
                    } }
                } }
            } }
        case .inbatch:
            let mask = batch.inbatchMask.map { $0.map { $0 ? 1 : 0 } }
            var dC = dParts[0]
            defer { dParts = [dC] }
            return try q.withUnsafeBufferPointer { Q in try parts[0].withUnsafeBufferPointer { C in
                try dQ.withUnsafeMutableBufferPointer { DQ in try dC.withUnsafeMutableBufferPointer { DC in
                    try InBatchLoss.forwardBackward(q: Q, c: C, rows: fb, contexts: parts[0].count / dim, dim: dim, mask: mask,
                                                    similarity: sim, scoreScale: scoreScale, gradScale: gradScale, gradients: .init(q: DQ, c: DC))
                } }
            } }
        }
    }
}
