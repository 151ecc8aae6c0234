import Data

/// What index building and search need from a trained bi-encoder (implemented over the Model
/// module's bi-encoder; tests use small deterministic encoders).
public protocol PassageEncoder {
    /// Embedding size.
    var dimension: Int { get }
    /// Names the model (its path) in messages.
    var modelName: String { get }
    /// Identifies the weights exactly, so an index built with other weights is refused.
    var fingerprint: String { get }
    /// SimilarityFunction the model was trained with (`sim_func`).
    var similarity: SimilarityFunction { get }
    /// Row-major [passages.count x dimension] context-encoder embeddings.
    func encodePassages(_ passages: [Passage]) throws -> [Float]
    /// Row-major [questions.count x dimension] question-encoder embeddings.
    func encodeQuestions(_ questions: [String]) throws -> [Float]
}
