import CKernels
import Foundation

/// Errors restoring optimizer state.
public enum AdamWError: Error, CustomStringConvertible, Equatable {
    case stateSizeMismatch(what: String, count: Int, expected: Int)
    case invalidStep(Int)

    public var description: String {
        switch self {
        case let .stateSizeMismatch(what, count, expected):
            return "AdamW state '\(what)' has \(count) values but the model has \(expected) parameters: the checkpoint belongs to a different model"
        case let .invalidStep(step):
            return "AdamW state has step \(step); it must be ≥ 0"
        }
    }
}

/// A set of parameter ranges sharing one weight decay (PyTorch's param_groups).
public struct ParameterGroup: Equatable, Sendable {
    /// Element ranges in the flat parameter buffer (adjacent slots merged).
    public var ranges: [Range<Int>]
    public var weightDecay: Double

    public init(ranges: [Range<Int>], weightDecay: Double) {
        self.ranges = ranges
        self.weightDecay = weightDecay
    }

    public var count: Int { ranges.reduce(0) { $0 + $1.count } }

    /// The two groups of the original trainer (SPEC §5): `weightDecay` for every parameter except
    /// names containing one of `noDecay` (`bias`, `LayerNorm.weight`), which get 0. Slots for which
    /// `isFrozen` is true (e.g. the context encoder with fix_ctx_encoder) are in neither group.
    public static func standardGroups(layout: ParameterLayout, weightDecay: Double,
                                      noDecay: [String] = ["bias", "LayerNorm.weight"],
                                      isFrozen: (TensorSlot) -> Bool = { _ in false }) -> [ParameterGroup] {
        var decay: [Range<Int>] = [], noDecayRanges: [Range<Int>] = []
        func append(_ range: Range<Int>, to list: inout [Range<Int>]) {
            if let last = list.last, last.upperBound == range.lowerBound {
                list[list.count - 1] = last.lowerBound..<range.upperBound
            } else {
                list.append(range)
            }
        }
        for slot in layout.slots where !isFrozen(slot) {
            if noDecay.contains(where: { slot.name.contains($0) }) {
                append(slot.range, to: &noDecayRanges)
            } else {
                append(slot.range, to: &decay)
            }
        }
        return [ParameterGroup(ranges: decay, weightDecay: weightDecay),
                ParameterGroup(ranges: noDecayRanges, weightDecay: 0)]
    }
}

/// AdamW over one flat parameter buffer, with `torch.optim.AdamW` semantics exactly (single-tensor
/// path): decoupled decay p ← p·(1 − lr·wd); m ← m + (1−β1)(g − m); v ← β2·v + (1−β2)·g²;
/// p ← p − lr/(1−β1ᵗ) · m / (√v / √(1−β2ᵗ) + eps). The bias corrections are computed in Double
/// and used as Float, as PyTorch does with its Python-float step. Moments share the parameters'
/// layout, so a checkpoint stores them as two buffers beside the weights.
public final class AdamW {
    public var beta1: Double
    public var beta2: Double
    public var eps: Double
    public let groups: [ParameterGroup]
    /// Number of updates done so far (PyTorch's `state['step']`, identical for every parameter).
    public private(set) var step: Int = 0
    /// First moments, same size and layout as the parameters (zero outside the groups).
    public private(set) var m: [Float]
    /// Second moments.
    public private(set) var v: [Float]

    /// - Parameters:
    ///   - parameterCount: size of the flat parameter buffer (`ParameterLayout.totalCount`).
    ///   - groups: which ranges are updated and with which weight decay.
    public init(parameterCount: Int, groups: [ParameterGroup], betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8) {
        self.groups = groups
        self.beta1 = betas.0
        self.beta2 = betas.1
        self.eps = eps
        m = [Float](repeating: 0, count: parameterCount)
        v = [Float](repeating: 0, count: parameterCount)
    }

    /// One optimizer step with learning rate `learningRate` (the scheduler's value for this step).
    public func update(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>,
                       learningRate: Double) {
        update(parameters: parameters, gradients: UnsafeMutableBufferPointer(mutating: gradients), learningRate: learningRate,
               scalingGradientsBy: 1)
    }

    /// Multiplies every gradient by `scale` (GradClip's coefficient: the bytes `GradClip.clip` leaves,
    /// also outside the groups), then does one optimizer step — each gradient scaled inside the
    /// update's kernel as it is read (and stored back), instead of in a pass of its own.
    public func update(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>,
                       learningRate: Double, scalingGradientsBy scale: Float) {
        precondition(parameters.count == m.count && gradients.count == m.count,
                     "AdamW: parameter/gradient buffers must have \(m.count) values")
        step += 1
        let t = Double(step)
        let stepSize = Float(learningRate / (1 - pow(beta1, t)))
        let biasCorrection2Sqrt = Float((1 - pow(beta2, t)).squareRoot())
        let oneMinusBeta1 = Float(1 - beta1), beta2 = Float(self.beta2), oneMinusBeta2 = Float(1 - self.beta2)
        let eps = Float(self.eps)
        // Element-wise and memory-bound: split the work into pieces that threads share; the
        // result does not depend on the split.
        var pieces: [(range: Range<Int>, decay: Double)] = []
        for group in groups {
            for range in group.ranges {
                var start = range.lowerBound
                while start < range.upperBound {
                    let end = min(start + Self.pieceSize, range.upperBound)
                    pieces.append((start..<end, group.weightDecay))
                    start = end
                }
            }
        }
        m.withUnsafeMutableBufferPointer { m in
            v.withUnsafeMutableBufferPointer { v in
                let (m, v) = (m, v)
                let update = { (piece: (range: Range<Int>, decay: Double)) in
                    let first = piece.range.lowerBound
                    srdpr_adamw(parameters.baseAddress! + first, gradients.baseAddress! + first, m.baseAddress! + first,
                                v.baseAddress! + first, piece.range.count, scale, Float(1 - learningRate * piece.decay),
                                piece.decay != 0 ? 1 : 0, oneMinusBeta1, beta2, oneMinusBeta2, stepSize,
                                biasCorrection2Sqrt, eps)
                }
                if pieces.count > 1 && threads > 1 {
                    DispatchQueue.concurrentPerform(iterations: pieces.count) { update(pieces[$0]) }
                } else {
                    pieces.forEach(update)
                }
            }
        }
        if scale != 1 {
            // The gradients outside the groups (a frozen encoder's) are scaled too, as clip would.
            var start = 0
            for range in groups.flatMap(\.ranges).sorted(by: { $0.lowerBound < $1.lowerBound }) + [m.count..<m.count] {
                if start < range.lowerBound { GradClip.scale(gradients, start..<range.lowerBound, by: scale) }
                start = max(start, range.upperBound)
            }
        }
    }

    /// A training step's end: clips the gradients to a global norm of `maxNorm` (`GradClip.clip`'s
    /// semantics and bytes; ≤ 0 = no clipping) and applies one update. The norm is summed on
    /// `threads` threads and the clipping is done piece by piece inside the update's pass, so no pass
    /// over the whole model runs on one core while the others wait. Returns the norm before clipping;
    /// a non-finite norm changes nothing (the caller stops on it). `zeroGradients` (ascending): ranges
    /// the caller knows hold only zeros (`BiEncoder.unwrittenGradientRanges`), which the norm skips.
    @discardableResult
    public func clipAndUpdate(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>,
                              maxNorm: Float, learningRate: Double, zeroGradients: [Range<Int>] = []) -> Float {
        let norm = GradClip.globalNorm(UnsafeBufferPointer(gradients), ranges: nil, threads: threads, partials: &normPartials,
                                       zeros: zeroGradients)
        guard norm.isFinite else { return norm }
        update(parameters: parameters, gradients: gradients, learningRate: learningRate,
               scalingGradientsBy: GradClip.coefficient(norm: norm, maxNorm: maxNorm))
        return norm
    }

    /// `clipAndUpdate`'s scratch for the norm's partial sums, kept from step to step.
    private var normPartials: [Float] = []

    /// Elements per unit of parallel work (1 MB of each buffer).
    static let pieceSize = 1 << 18

    /// Threads used by `update` (1 = run on the caller's thread).
    public var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    /// Replaces the state with one saved from a checkpoint (same parameter count).
    public func restore(step: Int, m: [Float], v: [Float]) throws {
        guard step >= 0 else { throw AdamWError.invalidStep(step) }
        guard m.count == self.m.count else {
            throw AdamWError.stateSizeMismatch(what: "m", count: m.count, expected: self.m.count)
        }
        guard v.count == self.v.count else {
            throw AdamWError.stateSizeMismatch(what: "v", count: v.count, expected: self.v.count)
        }
        self.step = step
        self.m = m
        self.v = v
    }
}
