import Model

/// What one dev evaluation reports, from the process holding the weights (the single process or
/// rank 0) to the training loop, which writes the logs.
public struct DevSetReport: Codable, Equatable, Sendable {
    /// Updates done when it ran.
    public var step: Int
    public var scores: DevSetScores
    /// keep_best's effect, when set.
    public var best: BestCheckpointOutcome?

    public init(step: Int, scores: DevSetScores, best: BestCheckpointOutcome?) {
        self.step = step; self.scores = scores; self.best = best
    }
}

/// One evaluation's effect on the best checkpoint (`keep_best`), for the logs.
public struct BestCheckpointOutcome: Codable, Equatable, Sendable {
    public var metric: String
    /// The best value and its step after this evaluation.
    public var best: Double
    public var bestStep: Int
    /// True when this evaluation was the new best and its checkpoint was written.
    public var improved: Bool
    public var path: String
    /// Time spent writing (or linking) the best checkpoint.
    public var seconds: Double

    public init(metric: String, best: Double, bestStep: Int, improved: Bool, path: String, seconds: Double) {
        self.metric = metric; self.best = best; self.bestStep = bestStep
        self.improved = improved; self.path = path; self.seconds = seconds
    }
}
