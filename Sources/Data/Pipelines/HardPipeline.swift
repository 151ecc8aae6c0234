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
    private let encoder: SampleEncoder
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
    public init(hardnegDataset: any SampleSource, randnegDataset: (any SampleSource)?, tokenizer: BertTokenizer,
                forwardBatchSize: Int, contrastiveSize: Int, maxLength: Int, shuffleSeed: Int,
                sampleFromHardneg: Int? = nil) throws {
        try checkPositive("pipeline.hard.forward_batch_size", forwardBatchSize)
        try checkNonNegative("pipeline.hard.contrastive_size", contrastiveSize)
        try checkPositive("max_length", maxLength, minimum: 2)
        self.hardnegDataset = hardnegDataset
        self.randnegDataset = randnegDataset
        self.forwardBatchSize = forwardBatchSize
        self.contrastiveSize = contrastiveSize
        encoder = SampleEncoder(tokenizer: tokenizer, maxLength: maxLength, pipeline: .hard)
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

    public func nextBatch() throws -> Batch {
        let (forward, fromWindow) = window.take(forward: forwardBatchSize, contrastive: sampleFromHardneg, from: &generator)
        let local = forward + fromWindow
        try pool.read(local, from: hardnegDataset)
        var itemCount = local.count
        var seed = generator.shuffleSeed + generator.epoch + generator.iteration
        if var randneg = randnegGenerator, let randnegDataset {
            let drawn = (0..<(contrastiveSize - sampleFromHardneg)).map { _ in randneg.next() }
            randnegGenerator = randneg
            try pool.read(drawn, from: randnegDataset, offset: itemCount)
            itemCount += drawn.count
            seed += randneg.shuffleSeed + randneg.epoch + randneg.iteration
        }
        let items = pool.prefix(itemCount)
        var rng = PythonRandom(seed: seed)
        let encoder = self.encoder
        return try collateWindowBatch(kind: .hard, items: items, forwardCount: forwardBatchSize, encoder: encoder, rng: &rng) { sample, rng in
            let hardnegs = encoder.shuffledHardnegs(sample, &rng)
            guard let first = hardnegs.first else {
                throw PipelineError.noHardNegatives(pipeline: "hard", sampleID: sample.sampleID)
            }
            return encoder.encodePassage(sample.hardneg(first))
        }
    }
}
