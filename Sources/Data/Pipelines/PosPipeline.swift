/// The pos pipeline (SPEC §4): a sliding window over one index stream. Forward items give a
/// question and their first positive; the items left in the window are this step's negatives
/// (one context drawn from each one's positives + hard negatives) and the next step's forward items.
public final class PosPipeline: BatchPipeline {
    public let kind = PipelineKind.pos
    public let forwardBatchSize: Int
    public let contrastiveSize: Int
    private let dataset: any SampleSource
    private let encoder: SampleEncoder
    private var generator: StatelessIndexGenerator
    private var window = IndexWindow()
    private var pool = ViewPool()

    /// - Parameters:
    ///   - shuffleSeed: `seed + 234567891` in training (`PipelineSeeds.pos`).
    public init(dataset: any SampleSource, tokenizer: BertTokenizer, forwardBatchSize: Int, contrastiveSize: Int,
                maxLength: Int, shuffleSeed: Int, datasetName: String = "bytedataset.pos") throws {
        try checkPositive("pipeline.pos.forward_batch_size", forwardBatchSize)
        try checkNonNegative("pipeline.pos.contrastive_size", contrastiveSize)
        try checkPositive("max_length", maxLength, minimum: 2)
        self.dataset = dataset
        self.forwardBatchSize = forwardBatchSize
        self.contrastiveSize = contrastiveSize
        encoder = SampleEncoder(tokenizer: tokenizer, maxLength: maxLength, pipeline: .pos)
        generator = try StatelessIndexGenerator(count: dataset.count, shuffleSeed: shuffleSeed, datasetName: datasetName)
    }

    public var state: PipelineState {
        PipelineState(epoch: generator.epoch, iteration: generator.iteration, shiftBack: window.buffer.count)
    }

    public func restore(_ state: PipelineState) throws {
        let shiftBack = state.shiftBack ?? 0
        try checkRestorable(state, pipeline: kind, count: generator.count, maxWindow: contrastiveSize, shiftBack: shiftBack)
        generator.restore(IndexGeneratorState(epoch: state.epoch, iteration: state.iteration))
        window.buffer = generator.previous(shiftBack)
    }

    public func nextBatch() throws -> Batch {
        let (forward, negatives) = window.take(forward: forwardBatchSize, contrastive: contrastiveSize, from: &generator)
        let indices = forward + negatives
        try pool.read(indices, from: dataset)
        let items = pool.prefix(indices.count)
        var rng = PythonRandom(seed: generator.shuffleSeed + generator.epoch + generator.iteration)
        return try collateWindowBatch(kind: .pos, items: items, forwardCount: forwardBatchSize, encoder: encoder, rng: &rng) { sample, rng in
            try encoder.firstPositive(sample)
        }
    }
}

/// The shared collate of pos and hard: forward items (question + `positive(sample)`) then negatives,
/// contexts padded together, questions separately; `duplicate_mask` from the sample ids.
func collateWindowBatch(kind: PipelineKind, items: ArraySlice<SampleView>, forwardCount: Int, encoder: SampleEncoder,
                        rng: inout PythonRandom,
                        positive: (SampleView, inout PythonRandom) throws -> [Int32]) throws -> Batch {
    var questions: [[Int32]] = [], positives: [[Int32]] = [], negatives: [[Int32]] = []
    for (j, item) in zip(0..., items) {
        if j < forwardCount {
            questions.append(try encoder.randomQuestion(item, &rng))
            positives.append(try positive(item, &rng))
        } else {
            negatives.append(try encoder.randomNegative(item, &rng))
        }
    }
    let pad = encoder.tokenizer.padID
    let width = (positives + negatives).reduce(0) { max($0, $1.count) }
    var batch = Batch(pipeline: kind, questions: TokenMatrix(padding: questions, padID: pad), sampleIDs: items.map(\.sampleID))
    batch.positiveContexts = TokenMatrix(padding: positives, padID: pad, columns: width)
    batch.negativeContexts = TokenMatrix(padding: negatives, padID: pad, columns: width)
    let ids = batch.sampleIDs
    batch.duplicateMask = duplicateMask(forwardIDs: Array(ids[..<forwardCount]), negativeIDs: Array(ids[forwardCount...]))
    return batch
}

func checkPositive(_ parameter: String, _ value: Int, minimum: Int = 1) throws {
    guard value >= minimum else {
        throw PipelineError.invalidSetting(parameter: parameter, value: String(value), reason: "must be at least \(minimum)")
    }
}

func checkNonNegative(_ parameter: String, _ value: Int) throws {
    guard value >= 0 else {
        throw PipelineError.invalidSetting(parameter: parameter, value: String(value), reason: "must not be negative")
    }
}

func checkRestorable(_ state: PipelineState, pipeline: PipelineKind, count: Int, maxWindow: Int, shiftBack: Int) throws {
    guard state.epoch >= 0, state.iteration >= 0, state.iteration <= count else {
        throw PipelineError.invalidState(pipeline: pipeline.rawValue,
            reason: "epoch \(state.epoch), iteration \(state.iteration) is outside a dataset of \(count) samples")
    }
    guard shiftBack >= 0, shiftBack <= maxWindow, shiftBack <= state.epoch * count + state.iteration else {
        throw PipelineError.invalidState(pipeline: pipeline.rawValue,
            reason: "shift_back \(shiftBack) does not fit the window (contrastive size \(maxWindow)) or the indices drawn so far")
    }
}
