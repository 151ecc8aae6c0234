import Data
import Foundation

/// How questions are cleaned before tokenisation.
public enum QuestionNormalization: String, Codable, Sendable {
    /// The original DPR's: strip white space, drop one trailing `?`, strip again.
    case dpr
    /// Questions are tokenised as given.
    case none
}

/// What srdpr needs besides the weights to encode and score as the run trained: `srdpr export`
/// writes it as `srdpr_settings.json` in the export root and in each encoder directory, and every
/// command that loads a model reads it back.
public struct EncoderSettings: Codable, Equatable, Sendable {
    public static let fileName = "srdpr_settings.json"

    /// Which encoder a directory holds (nil in an export root).
    public enum Role: String, Codable, Sendable {
        case question, context
    }

    public var simFunc: SimilarityFunction
    public var simScale: Double
    public var maxLength: Int
    public var pooling: Pooling
    public var doLowerCase: Bool
    public var questionNormalization: QuestionNormalization
    public var projectionDim: Int
    public var role: Role?

    public init(simFunc: SimilarityFunction, simScale: Double, maxLength: Int, pooling: Pooling, doLowerCase: Bool,
                questionNormalization: QuestionNormalization, projectionDim: Int, role: Role? = nil) {
        self.simFunc = simFunc
        self.simScale = simScale
        self.maxLength = maxLength
        self.pooling = pooling
        self.doLowerCase = doLowerCase
        self.questionNormalization = questionNormalization
        self.projectionDim = projectionDim
        self.role = role
    }

    /// The settings of a training run.
    public init(training config: TrainingConfig, role: Role? = nil) {
        self.init(simFunc: SimilarityFunction(rawValue: config.simFunc.rawValue) ?? .dotProduct, simScale: config.simScale,
                  maxLength: config.maxLength, pooling: config.pooling, doLowerCase: config.doLowerCase,
                  questionNormalization: .dpr, projectionDim: config.projectionDim, role: role)
    }

    enum CodingKeys: String, CodingKey {
        case simFunc = "sim_func", simScale = "sim_scale", maxLength = "max_length", pooling
        case doLowerCase = "do_lower_case", questionNormalization = "question_normalization"
        case projectionDim = "projection_dim", role = "encoder"
    }

    /// The settings file of `directory`, nil when it has none.
    public static func read(directory: URL) throws -> EncoderSettings? {
        let url = directory.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do {
            let settings = try JSONDecoder().decode(EncoderSettings.self, from: Foundation.Data(contentsOf: url))
            guard settings.maxLength >= 2 else { throw ModelError.invalidConfig(file: url.path, reason: "max_length must be at least 2") }
            guard settings.simScale > 0, settings.simScale.isFinite else {
                throw ModelError.invalidConfig(file: url.path, reason: "sim_scale must be a positive number")
            }
            return settings
        } catch let error as ModelError {
            throw error
        } catch {
            throw ModelError.invalidConfig(file: url.path, reason: "not the settings srdpr export writes: \(error)")
        }
    }

    public func write(directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let url = directory.appendingPathComponent(Self.fileName)
        do { try encoder.encode(self).write(to: url) } catch {
            throw ModelError.ioError(file: url.path, reason: error.localizedDescription)
        }
    }
}
