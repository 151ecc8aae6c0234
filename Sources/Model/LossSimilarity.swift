import Foundation

/// How a question vector and a context vector are scored (`sim_func` in the config).
public enum SimilarityFunction: String, Codable, Sendable, CaseIterable {
    /// q · c.
    case dotProduct = "dot_product"
    /// q̂ · ĉ with x̂ = x / max(‖x‖, 1e-12): true cosine similarity, as `F.normalize` then a dot
    /// product. (The original's `normalize` divided a vector by its normalised self; SPEC §5.)
    case cosine
}

/// Errors of the loss functions: inconsistent sizes of the embeddings and masks of a batch.
public enum LossError: Error, CustomStringConvertible, Equatable {
    case sizeMismatch(loss: String, argument: String, count: Int, expected: Int)
    case invalidShape(loss: String, reason: String)

    public var description: String {
        switch self {
        case let .sizeMismatch(loss, argument, count, expected):
            return "\(loss) loss: '\(argument)' has \(count) values, expected \(expected)"
        case let .invalidShape(loss, reason):
            return "\(loss) loss: \(reason)"
        }
    }
}

/// Row-wise L2 normalisation of a [rows, dim] matrix, forward and backward, as
/// `torch.nn.functional.normalize(x, dim=-1)` (eps 1e-12 on the norm).
enum RowNormalize {
    static let eps: Float = 1e-12

    /// Writes x̂ into `out` and each row's clamped norm into `norms`.
    static func forward(_ x: UnsafeBufferPointer<Float>, rows: Int, dim: Int,
                        out: UnsafeMutableBufferPointer<Float>, norms: UnsafeMutableBufferPointer<Float>) {
        for r in 0..<rows {
            var sum: Float = 0
            for k in 0..<dim { let v = x[r * dim + k]; sum += v * v }
            let norm = max(sum.squareRoot(), eps)
            norms[r] = norm
            for k in 0..<dim { out[r * dim + k] = x[r * dim + k] / norm }
        }
    }

    /// Turns the gradient w.r.t. x̂ (in `grad`, in place) into the gradient w.r.t. x:
    /// dx = (g − x̂ (x̂·g)) / ‖x‖ where the norm was not clamped, g / eps where it was.
    static func backward(normalized: UnsafeBufferPointer<Float>, norms: UnsafeBufferPointer<Float>,
                         rows: Int, dim: Int, grad: UnsafeMutableBufferPointer<Float>) {
        for r in 0..<rows {
            let norm = norms[r]
            if norm <= eps {
                for k in 0..<dim { grad[r * dim + k] /= norm }
                continue
            }
            var dot: Float = 0
            for k in 0..<dim { dot += normalized[r * dim + k] * grad[r * dim + k] }
            for k in 0..<dim {
                grad[r * dim + k] = (grad[r * dim + k] - normalized[r * dim + k] * dot) / norm
            }
        }
    }
}

/// The vectors a loss actually scores: the inputs themselves for dot product, or their
/// normalised copies (with the norms kept for the backward pass) for cosine.
struct ScoredVectors {
    let rows: Int
    let dim: Int
    let similarity: SimilarityFunction
    private(set) var normalized: [Float] = []
    private(set) var norms: [Float] = []

    init(_ x: UnsafeBufferPointer<Float>, rows: Int, dim: Int, similarity: SimilarityFunction) {
        self.rows = rows
        self.dim = dim
        self.similarity = similarity
        if similarity == .cosine {
            normalized = [Float](repeating: 0, count: rows * dim)
            norms = [Float](repeating: 0, count: rows)
            normalized.withUnsafeMutableBufferPointer { out in
                norms.withUnsafeMutableBufferPointer { n in
                    RowNormalize.forward(x, rows: rows, dim: dim, out: out, norms: n)
                }
            }
        }
    }

    /// Calls `body` with the vectors to score: `original` for dot product, the normalised ones for cosine.
    func withScored<R>(_ original: UnsafeBufferPointer<Float>, _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        if similarity == .cosine {
            return try normalized.withUnsafeBufferPointer { try body($0) }
        }
        return try body(original)
    }

    /// Converts a gradient w.r.t. the scored vectors into one w.r.t. the inputs (no-op for dot product).
    func backward(_ grad: UnsafeMutableBufferPointer<Float>) {
        guard similarity == .cosine else { return }
        normalized.withUnsafeBufferPointer { x in
            norms.withUnsafeBufferPointer { n in
                RowNormalize.backward(normalized: x, norms: n, rows: rows, dim: dim, grad: grad)
            }
        }
    }
}

func checkCount(_ loss: String, _ argument: String, _ count: Int, _ expected: Int) throws {
    guard count == expected else {
        throw LossError.sizeMismatch(loss: loss, argument: argument, count: count, expected: expected)
    }
}
