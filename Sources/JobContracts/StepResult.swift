/// The outcome of one optimizer update.
public struct StepResult: Sendable {
    /// Mean loss over the accumulated batches (unscaled; the same on every rank).
    public var loss: Float
    /// Global gradient norm before clipping.
    public var gradientNorm: Float
    /// Learning rate used for this update.
    public var learningRate: Double
    /// Real (unpadded) tokens encoded by this rank.
    public var tokens: Int

    public init(loss: Float, gradientNorm: Float, learningRate: Double, tokens: Int) {
        self.loss = loss; self.gradientNorm = gradientNorm; self.learningRate = learningRate; self.tokens = tokens
    }
}
