/// Epoch and iteration of a `StatelessIndexGenerator`, as the original checkpoints them.
public struct IndexGeneratorState: Codable, Equatable, Sendable {
    public var epoch: Int
    public var iteration: Int

    public init(epoch: Int = 0, iteration: Int = 0) {
        self.epoch = epoch
        self.iteration = iteration
    }
}

/// The original's `StatelessIdxsGenerator(N, shuffle_seed)` (SPEC §3): draw `iteration` of the
/// permutation `Random(shuffleSeed + epoch).shuffle(range(N))`, then iteration += 1. The epoch
/// rolls over lazily, on the draw after iteration reached N, exactly like the Python generator, so
/// a state (e, N) is valid and distinct from (e + 1, 0) — it matters because states seed `random`.
///
/// The permutation of the current epoch is cached (the original rebuilt it on every draw). It is
/// the one memory cost that grows with the dataset: 4 bytes a sample (UInt32, as a ByteDataset
/// counts its samples in 4 bytes), refilled in place when the epoch changes.
public struct StatelessIndexGenerator: Sendable {
    public let count: Int
    public let shuffleSeed: Int
    public private(set) var state: IndexGeneratorState
    private var cachedEpoch: Int = -1
    private var permutation: [UInt32] = []

    /// - Throws: `PipelineError.emptyDataset` when `count` is 0 (the original would loop forever),
    ///   `.invalidSetting` when it is over `UInt32.max` (no ByteDataset holds that many).
    public init(count: Int, shuffleSeed: Int, state: IndexGeneratorState = .init(), datasetName: String = "dataset") throws {
        guard count > 0 else { throw PipelineError.emptyDataset(dataset: datasetName) }
        guard count <= Int(UInt32.max) else {
            throw PipelineError.invalidSetting(parameter: datasetName, value: "\(count) samples", reason: "at most \(UInt32.max) samples are supported")
        }
        self.count = count
        self.shuffleSeed = shuffleSeed
        self.state = state
    }

    public var epoch: Int { state.epoch }
    public var iteration: Int { state.iteration }

    /// Sets epoch and iteration (resume from a checkpoint).
    public mutating func restore(_ state: IndexGeneratorState) { self.state = state }

    /// The next dataset index.
    public mutating func next() -> Int {
        if state.iteration >= count {
            state.epoch += 1
            state.iteration = 0
        }
        let value = index(epoch: state.epoch, position: state.iteration)
        state.iteration += 1
        return value
    }

    /// The indices drawn just before the current state: the last `k` draws, in draw order.
    /// Used to refill a sliding window after a restore without moving the generator.
    public mutating func previous(_ k: Int) -> [Int] {
        let end = state.epoch * count + state.iteration
        return (max(0, end - k)..<end).map { p in index(epoch: p / count, position: p % count) }
    }

    /// Element `position` of epoch `epoch`'s permutation.
    public mutating func index(epoch: Int, position: Int) -> Int {
        if epoch != cachedEpoch {
            // In place: a second array of the dataset's size would double the peak at every new epoch.
            permutation.removeAll(keepingCapacity: true)
            permutation.append(contentsOf: 0..<UInt32(count))
            var rng = PythonRandom(seed: shuffleSeed + epoch)
            rng.shuffle(&permutation)
            cachedEpoch = epoch
        }
        return Int(permutation[position])
    }
}

extension StatelessIndexGenerator {
    /// The state of a pipeline that keeps no window (inbatch, poshard): the generator's position.
    var pipelineState: PipelineState { PipelineState(epoch: epoch, iteration: iteration) }

    /// Restores such a pipeline's position after checking `state` fits this dataset.
    mutating func restore(_ state: PipelineState, pipeline: PipelineKind) throws {
        try checkRestorable(state, pipeline: pipeline, count: count, maxWindow: 0, shiftBack: 0)
        restore(IndexGeneratorState(epoch: state.epoch, iteration: state.iteration))
    }
}
