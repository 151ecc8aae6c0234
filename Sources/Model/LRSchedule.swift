/// Linear warmup then linear decay to zero, as transformers' `get_linear_schedule_with_warmup`:
/// the learning rate of optimizer step k (0-based) is base · k / warmup while k < warmup, then
/// base · max(0, (total − k) / (total − warmup)). One scheduler step per optimizer update.
public struct LinearWarmupSchedule: Codable, Equatable, Sendable {
    public var baseLearningRate: Double
    public var warmupSteps: Int
    public var totalUpdates: Int

    public init(baseLearningRate: Double, warmupSteps: Int, totalUpdates: Int) {
        self.baseLearningRate = baseLearningRate
        self.warmupSteps = warmupSteps
        self.totalUpdates = totalUpdates
    }

    /// The factor on the base learning rate at optimizer step `step` (0-based).
    public func multiplier(atStep step: Int) -> Double {
        if step < warmupSteps {
            return Double(step) / Double(max(1, warmupSteps))
        }
        return max(0, Double(totalUpdates - step) / Double(max(1, totalUpdates - warmupSteps)))
    }

    /// The learning rate used by optimizer step `step` (0-based).
    public func learningRate(atStep step: Int) -> Double {
        baseLearningRate * multiplier(atStep: step)
    }
}
