import Foundation

/// Masked softmax cross-entropy over the rows of a score matrix, the common end of all three
/// losses: the scores are multiplied by `scale` (`sim_scale`), masked entries are set to -1e9
/// (as `masked_fill`), loss = mean over rows of −log_softmax(row)[target], and the gradient
/// w.r.t. the unscaled scores replaces the scores in place.
enum ScoreCrossEntropy {
    static let maskedScore: Float = -1e9

    /// - Parameters:
    ///   - scores: [rows, cols] row-major; on return, if `computeGradient`, holds
    ///     gradScale · d(loss)/d(scores) (zero at masked entries, as `masked_fill`'s backward).
    ///   - mask: [rows, cols], nonzero = keep; nil keeps everything.
    ///   - target: the target column of each row.
    ///   - scale: factor on every score before the softmax (1 = the original's losses).
    /// - Returns: the mean loss.
    static func forwardBackward(scores: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int,
                                mask: [Int]?, target: (Int) -> Int, scale: Float = 1,
                                gradScale: Float, computeGradient: Bool) -> Float {
        var total: Double = 0
        // d(scale · s)/ds = scale: folded into the factor every gradient entry gets.
        let rowGradScale = gradScale * scale / Float(rows)
        for r in 0..<rows {
            let row = UnsafeMutableBufferPointer(rebasing: scores[(r * cols)..<((r + 1) * cols)])
            if scale != 1 { for c in 0..<cols { row[c] *= scale } }
            if let mask {
                for c in 0..<cols where mask[r * cols + c] == 0 { row[c] = maskedScore }
            }
            var maxScore = -Float.infinity
            for c in 0..<cols { maxScore = max(maxScore, row[c]) }
            var sumExp: Double = 0
            for c in 0..<cols { sumExp += Double(expf(row[c] - maxScore)) }
            let logSumExp = Double(maxScore) + log(sumExp)
            let t = target(r)
            total += logSumExp - Double(row[t])
            guard computeGradient else { continue }
            for c in 0..<cols {
                if let mask, mask[r * cols + c] == 0 {
                    row[c] = 0
                    continue
                }
                let probability = Float(exp(Double(row[c]) - logSumExp))
                row[c] = rowGradScale * (probability - (c == t ? 1 : 0))
            }
        }
        return Float(total / Double(rows))
    }
}
