/// The hard pipeline (SPEC §4): like pos, but a forward item's "positive" is one of its OWN hard
/// negatives and the negatives are random negatives. With `use_randneg`, `sampleFromHardneg`
/// negatives come from the hardneg window and the rest from the randneg dataset's own index
/// stream (same seed); `random` is then seeded with the sum of both generators' seed + epoch + iteration.
/// It teaches hard-negative > random-negative, the third stratum of stratified ranking.
public final class HardPipeline: BatchPipeline {
    public let kind = PipelineKind.hard
    public let forwardBatchSize: Int
    public let contrastiveSize: Int
    /// Negatives taken from the hardneg window; the other `contrastiveSize - sampleFromHardneg` are randneg items.
    public let sampleFromHardneg: Int
    private let hardnegDataset: any SampleSource
    private let randnegDataset: (any SampleSource)?
    public let materializer: BatchMaterializer?
    private let choices: SampleChoices
    private var generator: StatelessIndexGenerator
    private var randnegGenerator: StatelessIndexGenerator?
    private var window = IndexWindow()
    private var pool = ViewPool()

    /// `int(contrastive_size * |hardneg| / (|hardneg| + |randneg|))`, the original's split.
    public static func sampleFromHardneg(contrastiveSize: Int, hardnegCount: Int, randnegCount: Int) -> Int {
        let total = hardnegCount + randnegCount
        return total == 0 ? 0 : contrastiveSize * hardnegCount / total
    }

    /// - Parameters:
    ///   - randnegDataset: the random-negative dataset (`use_randneg=true`), or nil to draw all negatives from the window.
    ///   - shuffleSeed: `seed + 456789123` (`PipelineSeeds.hard`), used by both generators.
    public init(hardnegDataset: any SampleSource, randnegDataset: (any SampleSource)?, tokenizer: BertTokenizer?,
                forwardBatchSize: Int, contrastiveSize: Int, maxLength: Int, shuffleSeed: Int,
                sampleFromHardneg: Int? = nil) throws {
        try checkPositive("pipeline.hard.forward_batch_size", forwardBatchSize)
        try checkNonNegative("pipeline.hard.contrastive_size", contrastiveSize)
        try checkPositive("max_length", maxLength, minimum: 2)
        self.hardnegDataset = hardnegDataset
        self.randnegDataset = randnegDataset
        self.forwardBatchSize = forwardBatchSize
        self.contrastiveSize = contrastiveSize
        materializer = tokenizer.map { BatchMaterializer(tokenizer: $0, maxLength: maxLength) }
        choices = SampleChoices(pipeline: .hard, maxLength: maxLength)
        generator = try StatelessIndexGenerator(count: hardnegDataset.count, shuffleSeed: shuffleSeed,
                                                datasetName: "bytedataset.hard.hardneg")
        if let randnegDataset {
            randnegGenerator = try StatelessIndexGenerator(count: randnegDataset.count, shuffleSeed: shuffleSeed,
                                                           datasetName: "bytedataset.hard.randneg")
            let split = sampleFromHardneg ?? Self.sampleFromHardneg(
                contrastiveSize: contrastiveSize, hardnegCount: hardnegDataset.count, randnegCount: randnegDataset.count)
            guard split >= 0, split <= contrastiveSize else {
                throw PipelineError.invalidSetting(parameter: "pipeline.hard.sample_from_hardneg", value: String(split),
                                                   reason: "must be between 0 and contrastive_size (\(contrastiveSize))")
            }
            self.sampleFromHardneg = split
        } else {
            self.sampleFromHardneg = contrastiveSize
        }
    }

    public var sources: [any SampleSource] { [hardnegDataset] + (randnegDataset.map { [$0] } ?? []) }
    public var sourceNames: [String] { ["bytedataset.hard.hardneg", "bytedataset.hard.randneg"] }

    public var state: PipelineState {
        PipelineState(epoch: generator.epoch, iteration: generator.iteration, shiftBack: window.buffer.count,
                      randneg: randnegGenerator.map { $0.state })
    }

    public func restore(_ state: PipelineState) throws {
        let shiftBack = state.shiftBack ?? 0
        try checkRestorable(state, pipeline: kind, count: generator.count, maxWindow: sampleFromHardneg, shiftBack: shiftBack)
        if var randneg = randnegGenerator {
            guard let r = state.randneg, r.epoch >= 0, r.iteration >= 0, r.iteration <= randneg.count else {
                throw PipelineError.invalidState(pipeline: kind.rawValue, reason: "the randneg generator state is missing or out of range")
            }
            randneg.restore(r)
            randnegGenerator = randneg
        } else if state.randneg != nil {
            throw PipelineError.invalidState(pipeline: kind.rawValue,
                reason: "the state has a randneg generator (saved with pipeline.hard.use_randneg=true) but this pipeline has none")
        }
        generator.restore(IndexGeneratorState(epoch: state.epoch, iteration: state.iteration))
        window.buffer = generator.previous(shiftBack)
    }

    public func nextPlan() throws -> BatchPlan {
        let (forward, fromWindow) = window.take(forward: forwardBatchSize, contrastive: sampleFromHardneg, from: &generator)
        var indices = (forward + fromWindow).map { (source: 0, sample: $0) }
        try pool.read(indices.map(\.sample), from: hardnegDataset)
        var seed = generator.shuffleSeed + generator.epoch + generator.iteration
        if var randneg = randnegGenerator, let randnegDataset {
            let drawn = (0..<(contrastiveSize - sampleFromHardneg)).map { _ in randneg.next() }
            randnegGenerator = randneg
            try pool.read(drawn, from: randnegDataset, offset: indices.count)
            indices += drawn.map { (source: 1, sample: $0) }
            seed += randneg.shuffleSeed + randneg.epoch + randneg.iteration
        }
        var rng = PythonRandom(seed: seed)
        let choices = self.choices
        return try planWindowBatch(kind: .hard, items: pool.prefix(indices.count), indices: indices, forwardCount: forwardBatchSize,
                                   choices: choices, rng: &rng) { sample, index, rng in
            // The "positive" is one of the sample's own hard negatives.
            guard let first = choices.shuffledHardnegs(sample, &rng).first else {
                throw PipelineError.noHardNegatives(pipeline: "hard", sampleID: sample.sampleID)
            }
            return choices.ref(sample, source: index.source, index: index.sample, part: .hardneg, item: first)
        }
    }
}
