import Collectives
import Data

/// What one optimizer update needs to know besides the batches (SPEC §5, §6), taken from the
/// training configuration.
public struct StepSettings: Sendable {
    public var similarity: SimilarityFunction
    /// Factor on the similarity scores before every loss's softmax (`sim_scale`).
    public var scoreScale: Float
    /// Gradients are divided by it before the update (`loss_scale`).
    public var lossScale: Float
    /// Global-norm clipping threshold (`max_grad_norm`); ≤ 0 disables clipping.
    public var maxGradNorm: Float
    /// Grad cache chunk sizes (`q_chunk_size`, `ctx_chunk_size`), nil without grad cache.
    public var questionChunkSize: Int?
    public var contextChunkSize: Int?
    /// How the gradient all-reduce sends its payloads (`allreduce_dtype`).
    public var gradientWireType: AllReduceWireType

    public init(similarity: SimilarityFunction = .dotProduct, scoreScale: Float = 1, lossScale: Float = 8, maxGradNorm: Float = 1,
                questionChunkSize: Int? = nil, contextChunkSize: Int? = nil, gradientWireType: AllReduceWireType = .fp32) {
        self.similarity = similarity
        self.scoreScale = scoreScale
        self.lossScale = lossScale
        self.maxGradNorm = maxGradNorm
        self.questionChunkSize = questionChunkSize
        self.contextChunkSize = contextChunkSize
        self.gradientWireType = gradientWireType
    }
}

extension AllReduceWireType {
    /// The wire type of a configuration's `allreduce_dtype`.
    public init(_ dtype: AllReduceDtype) {
        switch dtype {
        case .fp32: self = .fp32
        case .bf16: self = .bf16
        }
    }
}
