import Foundation

/// Everything that can go wrong while loading, saving or running a model, with a message that
/// names the file, tensor or parameter involved.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case missingFile(String)
    case invalidConfig(file: String, reason: String)
    case unsupportedArchitecture(file: String, modelType: String)
    case malformedWeights(file: String, offset: Int, reason: String)
    case missingTensor(file: String, name: String)
    case shapeMismatch(file: String, name: String, expected: [Int], found: [Int])
    case unsupportedDType(file: String, name: String, dtype: String)
    case sequenceTooLong(length: Int, maxPositions: Int)
    case invalidInput(String)
    case ioError(file: String, reason: String)

    public var description: String {
        switch self {
        case .missingFile(let path):
            return "missing file \(path)"
        case .invalidConfig(let file, let reason):
            return "\(file): invalid config: \(reason)"
        case .unsupportedArchitecture(let file, let type):
            return "\(file): model_type \"\(type)\" is not supported (only \"bert\", encoder_model_type hf_bert)"
        case .malformedWeights(let file, let offset, let reason):
            return "\(file): malformed weight file at byte \(offset): \(reason)"
        case .missingTensor(let file, let name):
            return "\(file): tensor \(name) is missing"
        case .shapeMismatch(let file, let name, let expected, let found):
            return "\(file): tensor \(name) has shape \(found), expected \(expected)"
        case .unsupportedDType(let file, let name, let dtype):
            return "\(file): tensor \(name) has dtype \(dtype); only F32, F16, BF16 and F64 can be loaded"
        case .sequenceTooLong(let length, let maxPositions):
            return "sequence length \(length) exceeds max_position_embeddings \(maxPositions) of the model; "
                + "lower --max-length / max_length"
        case .invalidInput(let message):
            return message
        case .ioError(let file, let reason):
            return "\(file): \(reason)"
        }
    }
}

extension ModelError: LocalizedError {
    public var errorDescription: String? { description }
}
