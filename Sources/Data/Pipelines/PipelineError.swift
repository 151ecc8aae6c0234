/// Errors of building or running a data pipeline; each names the pipeline, dataset and sample involved.
public enum PipelineError: Error, CustomStringConvertible, Equatable {
    case emptyDataset(dataset: String)
    case noQuestions(pipeline: String, sampleID: Int)
    case noPositiveContexts(pipeline: String, sampleID: Int)
    case noHardNegatives(pipeline: String, sampleID: Int)
    case noNegativeCandidates(pipeline: String, sampleID: Int)
    case invalidSetting(parameter: String, value: String, reason: String)
    case invalidState(pipeline: String, reason: String)
    case invalidPlan(pipeline: String, reason: String)

    public var description: String {
        switch self {
        case .emptyDataset(let dataset):
            return "dataset \(dataset) has no samples; a pipeline needs at least one"
        case .noQuestions(let p, let id):
            return "\(p) pipeline: sample \(id) has an empty `questions` list; every sample needs at least one question"
        case .noPositiveContexts(let p, let id):
            return "\(p) pipeline: sample \(id) has an empty `positive_contexts` list; every sample needs at least one positive context"
        case .noHardNegatives(let p, let id):
            return "\(p) pipeline: sample \(id) has no `hardneg_contexts`; the hard pipeline takes its 'positive' from the sample's own hard negatives, so its dataset (bytedataset.hard.hardneg) must contain only samples with hard negatives"
        case .noNegativeCandidates(let p, let id):
            return "\(p) pipeline: sample \(id) has neither positive nor hard-negative contexts to draw a negative from"
        case .invalidSetting(let parameter, let value, let reason):
            return "\(parameter)=\(value): \(reason)"
        case .invalidState(let p, let reason):
            return "\(p) pipeline: cannot restore state: \(reason)"
        case .invalidPlan(let p, let reason):
            return "\(p) batch plan: \(reason)"
        }
    }
}
