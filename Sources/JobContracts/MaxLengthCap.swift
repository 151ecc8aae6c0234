import Data
import Model

extension TrainingConfig {
    /// The configuration with max_length at most the model's position embeddings, and the warning
    /// to print when it was lowered. Applied once, where the job is set up, so that the planner
    /// and every rank tokenize to the same length.
    public func cappingMaxLength(to model: BertConfig) -> (config: TrainingConfig, warning: String?) {
        guard maxLength > model.maxPositions else { return (self, nil) }
        var capped = self
        capped.maxLength = model.maxPositions
        return (capped, "warning: max_length=\(maxLength) exceeds the model's max_position_embeddings \(model.maxPositions); using \(model.maxPositions)")
    }
}
