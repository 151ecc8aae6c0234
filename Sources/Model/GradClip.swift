import Dispatch
import Foundation

/// Global-norm gradient clipping with `torch.nn.utils.clip_grad_norm_` semantics: the L2 norm over
/// all gradients together; when max_norm / (norm + 1e-6) < 1 every gradient is multiplied by it.
public enum GradClip {
    /// Elements whose squares are summed in Float before the sum moves to Double.
    static let blockSize = 256
    /// Blocks per unit of parallel work (1 MB of gradients).
    static let blocksPerPiece = 1_024

    /// The L2 norm of the gradients in `ranges` of `gradients` (all of it when nil), accumulated in
    /// Double so that the result does not depend on how the buffer is split. With `threads` > 1 the
    /// blocks' Float partial sums are computed side by side and then added in order, one by one:
    /// the same bits as one thread.
    public static func globalNorm(_ gradients: UnsafeBufferPointer<Float>, ranges: [Range<Int>]? = nil, threads: Int = 1) -> Float {
        var partials: [Float] = []
        return globalNorm(gradients, ranges: ranges, threads: threads, partials: &partials)
    }

    /// `globalNorm` with the blocks' partial sums in `partials`, grown when too short and kept by the
    /// caller from step to step (a MiniLM bi-encoder's gradients have 177k blocks: 0.7 MB each step).
    /// `zeros` (ascending, disjoint): elements known to be zero, such as the word-embedding rows no
    /// backward wrote. A block inside them is not read: its partial is the +0.0 its sum would give,
    /// and adding it changes no bit of the total, so the norm is the one of reading everything.
    static func globalNorm(_ gradients: UnsafeBufferPointer<Float>, ranges: [Range<Int>]?, threads: Int,
                           partials: inout [Float], zeros: [Range<Int>] = []) -> Float {
        let ranges = ranges ?? [0..<gradients.count]
        // Float partial sums over short blocks vectorise; Double across blocks keeps precision.
        var pieces: [(range: Range<Int>, firstBlock: Int)] = [], blocks = 0
        for range in ranges {
            for start in stride(from: range.lowerBound, to: range.upperBound, by: blockSize * blocksPerPiece) {
                let piece = start..<min(start + blockSize * blocksPerPiece, range.upperBound)
                pieces.append((piece, blocks))
                blocks += (piece.count + blockSize - 1) / blockSize
            }
        }
        // Every block's partial is written below before it is read: old values need no clearing.
        if partials.count < blocks { partials = [Float](repeating: 0, count: blocks) }
        partials.withUnsafeMutableBufferPointer { partials in
            let partials = partials
            let sum = { (piece: (range: Range<Int>, firstBlock: Int)) in
                var block = piece.firstBlock
                // The first zero range that ends after the piece starts (then walked forward with the blocks).
                var z = Self.firstRange(in: zeros, endingAfter: piece.range.lowerBound)
                for start in stride(from: piece.range.lowerBound, to: piece.range.upperBound, by: blockSize) {
                    let end = min(start + blockSize, piece.range.upperBound)
                    while z < zeros.count && zeros[z].upperBound <= start { z += 1 }
                    if z < zeros.count && zeros[z].lowerBound <= start && end <= zeros[z].upperBound {
                        partials[block] = 0
                    } else {
                        var partial: Float = 0
                        for i in start..<end { partial += gradients[i] * gradients[i] }
                        partials[block] = partial
                    }
                    block += 1
                }
            }
            if threads > 1 && pieces.count > 1 {
                DispatchQueue.concurrentPerform(iterations: pieces.count) { sum(pieces[$0]) }
            } else {
                pieces.forEach(sum)
            }
        }
        var total: Double = 0
        for partial in partials[..<blocks] { total += Double(partial) }
        return Float(total.squareRoot())
    }

    /// The index of the first of `ranges` (ascending, disjoint) whose upper bound is above `element`.
    static func firstRange(in ranges: [Range<Int>], endingAfter element: Int) -> Int {
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].upperBound <= element { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// The factor `clip` multiplies the gradients by at global norm `norm`: max_norm / (norm + 1e-6)
    /// when that is below 1, else 1 (also when `maxNorm` ≤ 0 or the norm is not finite).
    public static func coefficient(norm: Float, maxNorm: Float) -> Float {
        guard maxNorm > 0, norm.isFinite else { return 1 }
        return min(maxNorm / (norm + 1e-6), 1)
    }

    /// Clips the gradients in `ranges` (all when nil) to a global L2 norm of `maxNorm` and returns
    /// the norm before clipping. A non-finite norm leaves the gradients unchanged (the caller is
    /// expected to stop on it, naming the step); `maxNorm` ≤ 0 only measures. (A training step
    /// clips inside AdamW's pass instead: `AdamW.update(…, scalingGradientsBy:)`.)
    @discardableResult
    public static func clip(_ gradients: UnsafeMutableBufferPointer<Float>, maxNorm: Float,
                            ranges: [Range<Int>]? = nil) -> Float {
        let norm = globalNorm(UnsafeBufferPointer(gradients), ranges: ranges)
        let coefficient = coefficient(norm: norm, maxNorm: maxNorm)
        if coefficient < 1 {
            for range in ranges ?? [0..<gradients.count] { scale(gradients, range, by: coefficient) }
        }
        return norm
    }

    /// gradients[range] *= factor.
    static func scale(_ gradients: UnsafeMutableBufferPointer<Float>, _ range: Range<Int>, by factor: Float) {
        for i in range { gradients[i] *= factor }
    }
}
