import JobContracts

/// Errors of a training step; each names the step and says what to do.
public enum WorkerError: TrainingFailure, Equatable {
    case nonFiniteLoss(step: Int, pipeline: String, loss: Float)
    case nonFiniteGradient(step: Int, pipeline: String, norm: Float)
    case malformedBatch(pipeline: String, reason: String)
    case malformedPayload(rank: Int, bytes: Int, expected: Int)

    public var description: String {
        switch self {
        case let .nonFiniteLoss(step, pipeline, loss):
            return "step \(step + 1) (\(pipeline) pipeline): the loss is \(loss); training stopped before this update, "
                + "the weights are those of the previous step. Lower learning_rate, raise loss_scale or check the data"
        case let .nonFiniteGradient(step, pipeline, norm):
            return "step \(step + 1) (\(pipeline) pipeline): the gradient norm is \(norm); training stopped before this update. "
                + "Lower learning_rate or set max_grad_norm"
        case let .malformedBatch(pipeline, reason):
            return "\(pipeline) batch: \(reason)"
        case let .malformedPayload(rank, bytes, expected):
            return "all-gather: rank \(rank) sent \(bytes) bytes of embeddings, expected \(expected)"
        }
    }
}
