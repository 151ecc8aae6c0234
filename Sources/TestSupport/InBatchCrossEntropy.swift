import Foundation

/// In-batch softmax cross-entropy over Q·Cᵀ (target: context i for question i), averaged over the
/// questions, and its gradients w.r.t. Q and C: a non-linear loss for tests of encoder gradients,
/// written plainly (no shared kernel) so it checks the encoders, not itself.
public func inBatchCrossEntropy(_ q: [Float], _ c: [Float], rows: Int, ctxRows: Int, dim: Int) -> (loss: Float, dq: [Float], dc: [Float]) {
    var dq = [Float](repeating: 0, count: q.count), dc = [Float](repeating: 0, count: c.count)
    var total: Float = 0
    for i in 0..<rows {
        var s = (0..<ctxRows).map { j in (0..<dim).reduce(Float(0)) { $0 + q[i * dim + $1] * c[j * dim + $1] } }
        let m = s.max()!
        let z = s.reduce(Float(0)) { $0 + expf($1 - m) }
        total += -(s[i] - m - logf(z))
        s = s.map { expf($0 - m) / z }
        s[i] -= 1
        for j in 0..<ctxRows {
            let g = s[j] / Float(rows)
            for k in 0..<dim {
                dq[i * dim + k] += g * c[j * dim + k]
                dc[j * dim + k] += g * q[i * dim + k]
            }
        }
    }
    return (total / Float(rows), dq, dc)
}
