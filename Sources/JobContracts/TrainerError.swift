import Foundation

/// Errors that stop `srdpr train` before or during training; each names the parameter, file or step.
public enum TrainerError: Error, CustomStringConvertible, Equatable {
    case missingParameter(key: String, reason: String)
    case notWritable(key: String, path: String, reason: String)
    case missingDataset(key: String, path: String, reason: String)
    case pretrainedModel(path: String, reason: String)
    case incompatibleCheckpoint(path: String, reason: String)
    case stopped(reason: String, lastCheckpoint: String?)

    public var description: String {
        switch self {
        case let .missingParameter(key, reason): return "\(key) is required: \(reason)"
        case let .notWritable(key, path, reason): return "\(key)=\(path) is not writable: \(reason)"
        case let .missingDataset(key, path, reason): return "\(key)=\(path): \(reason)"
        case let .pretrainedModel(path, reason): return "pretrained_model_cfg=\(path): \(reason)"
        case let .incompatibleCheckpoint(path, reason): return "model_file=\(path) cannot be resumed: \(reason)"
        case let .stopped(reason, last):
            return "training stopped: \(reason). "
                + (last.map { "The last good checkpoint is \($0) (resume with model_file=\($0))." } ?? "No checkpoint was written.")
        }
    }
}
