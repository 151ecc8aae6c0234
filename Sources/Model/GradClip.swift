import Foundation

/// Global-norm gradient clipping with `torch.nn.utils.clip_grad_norm_` semantics: the L2 norm over
/// all gradients together; when max_norm / (norm + 1e-6) < 1 every gradient is multiplied by it.
public enum GradClip {
    /// The L2 norm of the gradients in `ranges` of `gradients` (all of it when nil), accumulated in
    /// Double so that the result does not depend on how the buffer is split.
    public static func globalNorm(_ gradients: UnsafeBufferPointer<Float>, ranges: [Range<Int>]? = nil) -> Float {
        var sum: Double = 0
        for range in ranges ?? [0..<gradients.count] {
            // Float partial sums over short blocks vectorise; Double across blocks keeps precision.
            var start = range.lowerBound
            while start < range.upperBound {
                let end = min(start + 256, range.upperBound)
                var partial: Float = 0
                for i in start..<end { partial += gradients[i] * gradients[i] }
                sum += Double(partial)
                start = end
            }
        }
        return Float(sum.squareRoot())
    }

    /// Clips the gradients in `ranges` (all when nil) to a global L2 norm of `maxNorm` and returns
    /// the norm before clipping. A non-finite norm leaves the gradients unchanged (the caller is
    /// expected to stop on it, naming the step); `maxNorm` ≤ 0 only measures.
    @discardableResult
    public static func clip(_ gradients: UnsafeMutableBufferPointer<Float>, maxNorm: Float,
                            ranges: [Range<Int>]? = nil) -> Float {
        let norm = globalNorm(UnsafeBufferPointer(gradients), ranges: ranges)
        guard maxNorm > 0, norm.isFinite else { return norm }
        let coefficient = maxNorm / (norm + 1e-6)
        if coefficient < 1 {
            for range in ranges ?? [0..<gradients.count] {
                for i in range { gradients[i] *= coefficient }
            }
        }
        return norm
    }
}
