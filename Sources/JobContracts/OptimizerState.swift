/// AdamW's scalar state as stored in a checkpoint.
public struct OptimizerState: Codable, Equatable, Sendable {
    public init(step: Int, betas: [Double], eps: Double) { self.step = step; self.betas = betas; self.eps = eps }

    public var step: Int
    public var betas: [Double]
    public var eps: Double
}
